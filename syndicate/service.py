"""What the running service does at each moment; `scheduler` only decides when. Every
function takes `now` (or a clock), so each decision is tested at exact instants.

Several processes may share one database: `once` makes a scheduled job run in one of them
for each fire time, and lets another take it over when that one dies before finishing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

from syndicate.build import BuildReport, build
from syndicate.config import IMMEDIATE, Config
from syndicate.digest import outbox, schedule
from syndicate.ingest import Report as IngestReport
from syndicate.ingest import ingest
from syndicate.store import Store, locks
from syndicate.store import digests as store_digests
from syndicate.store import jobs as store_jobs
from syndicate.store import releases as store_releases
from syndicate.store.digests import Digest, State

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # interval jobs fire at EPOCH + k × interval
KEEP_JOB_RUNS = timedelta(days=7)


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
    list one alert per release that became public since the last look. The workers send
    them."""
    if config.lists[slug].schedule == IMMEDIATE:
        created = outbox.create_alerts(config, store, slug, now)
    else:
        period = due_period(config, slug, now)
        if period is None:
            return []
        created = [outbox.create(config, store, slug, period, now)]
    return [c.digest for c in created if c.digest is not None]


def waiting(config: Config, store: Store) -> tuple[list[Digest], list[Digest]]:
    """Digests with deliveries still to send: of configured lists, and of lists no longer
    configured (left alone, for the caller to report)."""
    with store.connect() as conn:
        found = store_digests.waiting(conn, [State.PENDING, State.SENDING, State.DEFERRED])
    configured = [d for d in found if d.list_slug in config.lists]
    return configured, [d for d in found if d.list_slug not in config.lists]


def read_sources(config: Config, store: Store, now: datetime) -> IngestReport:
    report = ingest(config, store, now)
    (log.warning if report.rejected else log.info)("ingest: %s", report.summary())
    return report


def rebuild(config: Config, store: Store, now: datetime) -> BuildReport:
    """Rebuild the site (which also pings WebSub hubs)."""
    built = build(config, store, now)
    log.info("build: %s", built.summary())
    for warning in built.warnings:
        log.warning("%s", warning)
    return built


def next_lift(store: Store, now: datetime) -> datetime | None:
    """The next embargo lift (or scheduled publication): rebuild then, to the second."""
    with store.connect() as conn:
        return store_releases.next_public_from(conn, now)


def poll_slot(now: datetime, every: float) -> datetime:
    """The fire time of the interval job (every `every` seconds) that fires at `now`: the
    same instant in every process, whenever each of them started."""
    step = timedelta(seconds=every)
    return EPOCH + ((now - EPOCH) // step) * step


def prune_jobs(store: Store, now: datetime) -> None:
    with store.begin() as conn:
        store_jobs.prune(conn, now - KEEP_JOB_RUNS)


Claim = Literal["mine", "done", "busy"]


def claim_job(store: Store, worker_id: str, job: str, fire_time: datetime, now: datetime) -> Claim:
    """Whether worker `worker_id` is to run `job` for `fire_time` ("mine"): nobody has, or
    its holder died before finishing. "done": it ran; "busy": a live holder is running it."""
    with store.begin() as conn:
        if store_jobs.start(conn, job, fire_time, worker_id, now):
            return "mine"
        run = store_jobs.get(conn, job, fire_time)
    if run is None:  # pruned meanwhile: long done
        return "done"
    if run.finished_at is not None:
        return "done"
    if run.worker == worker_id:  # this process runs it right now
        return "busy"
    with locks.gone(store, run.worker) as dead:
        if dead:
            with store.begin() as conn:
                if store_jobs.take_over(conn, job, fire_time, run.worker, worker_id, now):
                    log.warning(
                        "%s at %s: %s died running it; taking over", job, fire_time, run.worker
                    )
                    return "mine"
    return "busy"


async def once(
    store: Store,
    worker_id: str,
    job: str,
    fire_time: datetime,
    work: Callable[[], Awaitable[None]],
    *,
    clock: Clock,
    stopping: Callable[[], bool] = lambda: False,
    check_every: float = 1.0,
) -> bool:
    """Run `work` as `job` for `fire_time` unless another process does: True if this one
    ran it. The caller must hold worker `worker_id`'s lock (locks.present). While a live
    holder runs it, this waits (checking every `check_every` seconds) and takes it over if
    the holder dies before finishing; it returns when the job has run, or on `stopping()`.
    A job whose work raised counts as run (its next fire time tries again)."""
    while True:
        if stopping():
            return False
        claim = await asyncio.to_thread(claim_job, store, worker_id, job, fire_time, clock())
        if claim == "done":
            return False
        if claim == "mine":
            break
        await asyncio.sleep(check_every)
    try:
        await work()
    finally:
        await asyncio.to_thread(_finish, store, worker_id, job, fire_time, clock())
    return True


def _finish(store: Store, worker_id: str, job: str, fire_time: datetime, now: datetime) -> None:
    with store.begin() as conn:
        store_jobs.finish(conn, job, fire_time, worker_id, now)
