"""Create a list's digest for a period, exactly once: decide the content (compile), then
store the digest, its recipients and the new watermark in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from syndicate.config import IMMEDIATE, Config
from syndicate.digest import compile as compiler
from syndicate.digest import schedule
from syndicate.model import Subscriber
from syndicate.store import Store
from syndicate.store import digests as store_digests
from syndicate.store import releases as store_releases
from syndicate.store import suppressions as store_suppressions
from syndicate.store.digests import Digest
from syndicate.subscriptions import recipients


@dataclass(frozen=True, slots=True)
class Created:
    """`digest` is None when there was nothing to send (and `send_empty` is off)."""

    digest: Digest | None
    new: bool
    plan: compiler.Plan


def current_plan(
    config: Config, store: Store, slug: str, since: datetime, until: datetime
) -> compiler.Plan:
    """What a digest of (since, until] would contain for list `slug`, given what it was sent."""
    mailing_list = config.lists[slug]
    order = list(config.topics)
    with store.connect() as conn:
        became_public = store_releases.public_between(conn, since, until, order=order)
        sent = store_digests.sent_hashes(conn, slug)
        current = [r for r in store_releases.by_ids(conn, list(sent), order) if r.is_public(until)]
    hashes = {r.id: r.content_hash() for r in [*became_public, *current]}
    return compiler.plan(mailing_list, became_public, sent, current, hashes)


def window_start(config: Config, store: Store, slug: str, period: datetime) -> datetime:
    """Where a list's next digest starts: its watermark, or, for a list's first digest, one
    schedule interval back (an `immediate` list starts at `period`: no history as news)."""
    with store.connect() as conn:
        mark = store_digests.watermark(conn, slug)
    if mark is not None:
        return mark
    mailing_list = config.lists[slug]
    if mailing_list.schedule == IMMEDIATE:
        return period
    return schedule.previous_fire(config, mailing_list, period)


def create(
    config: Config,
    store: Store,
    slug: str,
    period: datetime,
    now: datetime,
    *,
    since: datetime | None = None,
) -> Created:
    """The digest of list `slug` for `period` (a fire time), created if it does not exist.
    Two processes racing here create one digest: the row is unique on (list, key)."""
    key = period.astimezone(UTC).isoformat()  # one key per instant, whatever its zone
    with store.connect() as conn:  # the service asks at every poll: answer before compiling
        existing = store_digests.find(conn, slug, key)
    if existing is not None:
        return Created(existing, False, compiler.Plan((), ()))
    start = since or window_start(config, store, slug, period)
    plan = current_plan(config, store, slug, start, period)
    return _store(config, store, slug, key, period, start, plan, now)


def create_alerts(config: Config, store: Store, slug: str, now: datetime) -> list[Created]:
    """For an `immediate` list: one digest per release that became public since the last
    look. An alert older than `misfire_grace` is not sent late as breaking news: it is
    skipped (and reported), and the watermark moves past it."""
    mailing_list = config.lists[slug]
    start = window_start(config, store, slug, now)
    plan = current_plan(config, store, slug, start, now)
    results = []
    for release in plan.new:
        late = (now - release.public_from).total_seconds() > mailing_list.misfire_grace
        single = compiler.Plan((), ()) if late else compiler.Plan((release,), ())
        results.append(
            _store(
                config,
                store,
                slug,
                release.id,
                release.public_from,
                start,
                single,
                now,
                force_empty=late,
            )
        )
    with store.begin() as conn:
        store_digests.advance_watermark(conn, slug, now)
    return results


def _store(
    config: Config,
    store: Store,
    slug: str,
    key: str,
    period: datetime,
    since: datetime,
    plan: compiler.Plan,
    now: datetime,
    *,
    force_empty: bool = False,
) -> Created:
    with store.connect() as conn:
        existing = store_digests.find(conn, slug, key)
    if existing is not None:
        return Created(existing, False, plan)
    if force_empty or (plan.empty and not config.lists[slug].send_empty):
        with store.begin() as conn:
            store_digests.advance_watermark(conn, slug, period)
        return Created(None, False, plan)
    mailing_list = config.lists[slug]
    wanted_topics: dict[tuple[str, ...], bool] = {}

    def wanted(person: Subscriber) -> bool:
        """Something in their topics (or the list sends empty ones); asked once per choice."""
        if person.topics not in wanted_topics:
            topics = compiler.selection(config, mailing_list, person.topics)
            wanted_topics[person.topics] = mailing_list.send_empty or any(
                compiler.for_recipient(config, mailing_list, plan, topics)
            )
        return wanted_topics[person.topics]

    hashes = {r.id: r.content_hash() for r in [*plan.new, *plan.corrected]}
    with store.begin() as conn:  # recipients stream from the list file into the outbox
        people = _unsuppressed(conn, slug, (p for p in recipients(conn, config, slug) if wanted(p)))
        digest = store_digests.create(
            conn,
            list_slug=slug,
            key=key,
            period=period,
            since=since,
            new=[r.id for r in plan.new],
            corrected=[r.id for r in plan.corrected],
            hashes=hashes,
            recipients=people,
            now=now,
        )
        if digest is None:  # another process created it between our read and our write
            return Created(store_digests.find(conn, slug, key), False, plan)
    return Created(digest, True, plan)


def _unsuppressed(
    conn: Connection, slug: str, people: Iterable[Subscriber], chunk: int = 1000
) -> Iterator[Subscriber]:
    """`people` without the suppressed, looked up a chunk at a time."""
    batch: list[Subscriber] = []
    for person in people:
        batch.append(person)
        if len(batch) >= chunk:
            yield from _keep(conn, slug, batch)
            batch = []
    yield from _keep(conn, slug, batch)


def _keep(conn: Connection, slug: str, batch: list[Subscriber]) -> Iterator[Subscriber]:
    blocked = store_suppressions.among(conn, slug, (p.address for p in batch))
    return (p for p in batch if store_suppressions.key(p.address) not in blocked)
