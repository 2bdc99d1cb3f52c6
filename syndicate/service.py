"""What the running service does at each moment; `scheduler` only decides when. Every
function takes `now` (or a clock), so each decision is tested at exact instants."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from syndicate.build import BuildReport, build
from syndicate.config import IMMEDIATE, Config
from syndicate.digest import outbox, schedule
from syndicate.digest.send import BusyError, Report, deliver
from syndicate.ingest import Report as IngestReport
from syndicate.ingest import ingest
from syndicate.mailer import Mailer
from syndicate.store import Store
from syndicate.store import digests as store_digests
from syndicate.store.digests import Digest, State

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
Mailers = Callable[[], Mailer]


def due_period(config: Config, slug: str, now: datetime) -> datetime | None:
    """The period a scheduled list should send now: its latest fire time, unless that is
    older than `misfire_grace` (then its releases fold into the next digest)."""
    mailing_list = config.lists[slug]
    fire = schedule.latest_fire(config, mailing_list, now)
    if fire is None or (now - fire).total_seconds() > mailing_list.misfire_grace:
        return None
    return fire


def due_digests(config: Config, store: Store, slug: str, now: datetime) -> list[Digest]:
    """Create what list `slug` owes now: the current period's digest, or for an `immediate`
    list one alert per release that became public since the last look."""
    if config.lists[slug].schedule == IMMEDIATE:
        created = outbox.create_alerts(config, store, slug, now)
    else:
        period = due_period(config, slug, now)
        if period is None:
            return []
        created = [outbox.create(config, store, slug, period, now)]
    return [c.digest for c in created if c.digest is not None]


async def send(
    config: Config,
    store: Store,
    digests: list[Digest],
    clock: Clock,
    mailers: Mailers,
    stopping: Callable[[], bool] = lambda: False,
) -> list[Report]:
    """Deliver each digest, until `stopping()`; one another process is sending is left to it."""
    reports = []
    for digest in digests:
        if stopping():
            break
        try:
            report = await deliver(config, store, digest, clock=clock, mailer=mailers())
        except BusyError as exc:
            log.info("%s", exc)
            continue
        log.info("%s %s: %s", digest.list_slug, digest.key, report.summary())
        reports.append(report)
    return reports


def waiting(config: Config, store: Store) -> list[Digest]:
    """Digests of configured lists with deliveries still to send (resume after a restart)."""
    with store.connect() as conn:
        found = store_digests.waiting(conn, [State.PENDING, State.SENDING, State.DEFERRED])
    return [d for d in found if d.list_slug in config.lists]


def refresh(config: Config, store: Store, now: datetime) -> tuple[IngestReport, BuildReport]:
    """Read the sources, then rebuild the site (which also pings WebSub hubs)."""
    report = ingest(config, store, now)
    (log.warning if report.rejected else log.info)("ingest: %s", report.summary())
    built = build(config, store, now)
    log.info("build: %s", built.summary())
    for warning in built.warnings:
        log.warning("%s", warning)
    return report, built
