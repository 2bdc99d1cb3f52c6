"""Digests and their deliveries (the outbox). A digest row is unique per (list, key), so two
schedulers can never both create it; a delivery moves pending → sending → sent | failed |
deferred, and after a crash only `sending` rows are ambiguous.

Any number of workers drain the outbox together: `claim` hands each a batch of pending rows
no other worker gets (FOR UPDATE SKIP LOCKED on PostgreSQL; on SQLite one UPDATE … RETURNING,
writers being serialised), marked `sending` with the worker's id. `sending` rows of a worker
that died are found by `claimers` and put back by `release`."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from syndicate.model import Subscriber
from syndicate.store.schema import (
    UTCDateTime,
    deliveries,
    digest_releases,
    digests,
    list_state,
    sent_releases,
)

_BATCH = 500


class State(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DEFERRED = "deferred"
    SKIPPED = "skipped"  # the address was suppressed (unsubscribed, bounced) before sending


@dataclass(frozen=True, slots=True)
class Digest:
    id: int
    list_slug: str
    key: str
    period: datetime
    since: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    digest_id: int
    address: str
    name: str
    topics: tuple[str, ...]
    state: State
    attempts: int
    reply: str | None
    worker: str | None = None  # who claimed it last


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a claimed delivery, to be recorded."""

    delivery_id: int
    state: State
    reply: str
    attempts: int
    at: datetime


def _digest(row: Any) -> Digest:
    return Digest(row.id, row.list_slug, row.key, row.period, row.since, row.created_at)


def insert_ignoring_conflict(conn: Connection, table: sa.Table, row: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on either backend; True when this call inserted the row.
    RETURNING tells, where rowcount does not (PostgreSQL reports -1 for such inserts)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**row).on_conflict_do_nothing()
    return conn.execute(statement.returning(*table.primary_key.columns)).first() is not None


def find(conn: Connection, list_slug: str, key: str) -> Digest | None:
    row = conn.execute(
        sa.select(digests).where(digests.c.list_slug == list_slug, digests.c.key == key)
    ).first()
    return _digest(row) if row else None


def get(conn: Connection, digest_id: int) -> Digest | None:
    row = conn.execute(sa.select(digests).where(digests.c.id == digest_id)).first()
    return _digest(row) if row else None


def watermark(conn: Connection, list_slug: str) -> datetime | None:
    """Releases public up to this instant are already in this list's digests."""
    value: datetime | None = conn.execute(
        sa.select(list_state.c.watermark).where(list_state.c.list_slug == list_slug)
    ).scalar_one_or_none()
    return value


def advance_watermark(conn: Connection, list_slug: str, until: datetime) -> None:
    """Move the watermark forward (never back), in one statement each: two processes
    advancing it at once cannot move it back."""
    if insert_ignoring_conflict(conn, list_state, {"list_slug": list_slug, "watermark": until}):
        return
    conn.execute(
        list_state.update()
        .where(list_state.c.list_slug == list_slug, list_state.c.watermark < until)
        .values(watermark=until)
    )


def sent_hashes(conn: Connection, list_slug: str) -> dict[str, str]:
    """release id → content hash, as last sent to this list."""
    query = sa.select(sent_releases.c.release_id, sent_releases.c.content_hash).where(
        sent_releases.c.list_slug == list_slug
    )
    return {row.release_id: row.content_hash for row in conn.execute(query)}


def create(
    conn: Connection,
    *,
    list_slug: str,
    key: str,
    period: datetime,
    since: datetime,
    new: Sequence[str],
    corrected: Sequence[str],
    hashes: dict[str, str],
    recipients: Iterable[Subscriber],
    now: datetime,
) -> Digest | None:
    """The digest, its releases, one pending delivery per recipient, the sent-release
    hashes and the watermark, all in the caller's transaction. None if it already existed."""
    row = {"list_slug": list_slug, "key": key, "period": period, "since": since, "created_at": now}
    if not insert_ignoring_conflict(conn, digests, row):
        return None
    digest = find(conn, list_slug, key)
    assert digest is not None
    members = [{"digest_id": digest.id, "release_id": rid, "corrected": False} for rid in new]
    members += [{"digest_id": digest.id, "release_id": rid, "corrected": True} for rid in corrected]
    if members:
        conn.execute(digest_releases.insert(), members)
    batch: list[dict[str, Any]] = []
    for subscriber in recipients:
        batch.append(
            {
                "digest_id": digest.id,
                "address": subscriber.address,
                "name": subscriber.name,
                "topics": list(subscriber.topics),
                "state": State.PENDING.value,
                "attempts": 0,
                "updated_at": now,
            }
        )
        if len(batch) >= _BATCH:
            conn.execute(deliveries.insert(), batch)
            batch.clear()
    if batch:
        conn.execute(deliveries.insert(), batch)
    for rid in [*new, *corrected]:
        values = {"content_hash": hashes[rid], "digest_id": digest.id}
        updated = conn.execute(
            sent_releases.update()
            .where(sent_releases.c.list_slug == list_slug, sent_releases.c.release_id == rid)
            .values(**values)
        )
        if not updated.rowcount:
            conn.execute(
                sent_releases.insert().values(list_slug=list_slug, release_id=rid, **values)
            )
    advance_watermark(conn, list_slug, period)
    return digest


def members(conn: Connection, digest_id: int) -> tuple[list[str], list[str]]:
    """(new release ids, corrected release ids) of a digest."""
    rows = conn.execute(
        sa.select(digest_releases.c.release_id, digest_releases.c.corrected)
        .where(digest_releases.c.digest_id == digest_id)
        .order_by(digest_releases.c.release_id)
    ).all()
    return (
        [r.release_id for r in rows if not r.corrected],
        [r.release_id for r in rows if r.corrected],
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        row.id,
        row.digest_id,
        row.address,
        row.name,
        tuple(row.topics),
        State(row.state),
        row.attempts,
        row.reply,
        row.worker,
    )


DigestIds = int | Collection[int] | None  # one digest, some, or (None) every digest


def _in_digests(query: Any, digest_ids: DigestIds, lists: Collection[str] | None) -> Any:
    if isinstance(digest_ids, int):
        query = query.where(deliveries.c.digest_id == digest_ids)
    elif digest_ids is not None:
        query = query.where(deliveries.c.digest_id.in_(list(digest_ids)))
    if lists is not None:
        of_lists = sa.select(digests.c.id).where(digests.c.list_slug.in_(list(lists)))
        query = query.where(deliveries.c.digest_id.in_(of_lists))
    return query


def claim(
    conn: Connection,
    digest_ids: DigestIds,
    limit: int,
    now: datetime,
    *,
    worker: str | None = None,
    lists: Collection[str] | None = None,
) -> list[Delivery]:
    """Mark up to `limit` pending deliveries `sending`, claimed by `worker`, and return them:
    the oldest digest's first, in id order; only of `digest_ids` and of `lists` when given.
    Concurrent callers never get the same row. Commit soon: on PostgreSQL the rows stay
    locked until then, and on SQLite the database does."""
    pick = _in_digests(
        sa.select(deliveries.c.id).where(deliveries.c.state == State.PENDING.value),
        digest_ids,
        lists,
    )
    pick = pick.order_by(deliveries.c.digest_id, deliveries.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        # Rows another claimer has locked are skipped. `= ANY(ARRAY(…))` runs the subquery
        # once; as `IN (…)` PostgreSQL may run it again, and claim more than `limit` rows.
        pick = pick.with_for_update(skip_locked=True, of=deliveries)
        picked = deliveries.c.id == sa.any_(sa.func.array(pick.scalar_subquery()))
    else:  # one writer at a time: the UPDATE sees no concurrent claim
        picked = deliveries.c.id.in_(pick)
    rows = conn.execute(
        deliveries.update()
        .where(picked, deliveries.c.state == State.PENDING.value)
        .values(state=State.SENDING.value, worker=worker, claimed_at=now, updated_at=now)
        .returning(*deliveries.c)
    ).all()
    return sorted((_delivery(row) for row in rows), key=lambda d: (d.digest_id, d.id))


def has_pending(
    conn: Connection, digest_ids: DigestIds = None, lists: Collection[str] | None = None
) -> bool:
    """Whether `claim` would find anything now."""
    query = _in_digests(
        sa.select(deliveries.c.id).where(deliveries.c.state == State.PENDING.value),
        digest_ids,
        lists,
    )
    return conn.execute(query.limit(1)).first() is not None


def in_flight(conn: Connection, digest_ids: DigestIds, other_than: str) -> int:
    """Deliveries of these digests that some worker other than `other_than` is sending."""
    query = _in_digests(
        sa.select(sa.func.count()).where(
            deliveries.c.state == State.SENDING.value,
            sa.or_(deliveries.c.worker.is_(None), deliveries.c.worker != other_than),
        ),
        digest_ids,
        None,
    )
    return int(conn.execute(query).scalar_one())


# Built once: compiling the UPDATE cost more than running it, once per message sent. A
# delivery another worker has claimed since (after this one was taken for dead) is left to it.
_RECORD = (
    deliveries.update()
    .where(
        deliveries.c.id == sa.bindparam("delivery_id"),
        deliveries.c.worker == sa.bindparam("by"),
    )
    .values(
        state=sa.bindparam("new_state"),
        reply=sa.bindparam("reply"),
        attempts=deliveries.c.attempts + sa.bindparam("tries", type_=sa.Integer),
        updated_at=sa.bindparam("at", type_=UTCDateTime),
    )
)


def record(conn: Connection, outcomes: Sequence[Outcome], worker: str) -> None:
    """Record what became of deliveries `worker` claimed, in one statement (executemany)."""
    if not outcomes:
        return
    conn.execute(
        _RECORD,
        [
            {
                "delivery_id": o.delivery_id,
                "by": worker,
                "new_state": o.state.value,
                "reply": o.reply,
                "tries": o.attempts,
                "at": o.at,
            }
            for o in sorted(outcomes, key=lambda o: o.delivery_id)
        ],
    )


def requeue(
    conn: Connection,
    states: Sequence[State],
    now: datetime,
    digest_id: DigestIds = None,
    *,
    older_than: datetime | None = None,
) -> int:
    """Put deliveries in `states` back to pending: retry deferred or failed ones, on request
    (those last changed before `older_than` only, when given). Never `sending` ones: they may
    be a live worker's; see `release`."""
    query = _in_digests(
        deliveries.update().where(deliveries.c.state.in_([s.value for s in states])),
        digest_id,
        None,
    )
    if older_than is not None:
        query = query.where(deliveries.c.updated_at < older_than)
    return int(conn.execute(query.values(state=State.PENDING.value, updated_at=now)).rowcount)


def claimers(conn: Connection) -> set[str]:
    """The workers with deliveries `sending` (alive, or dead if their lock is free)."""
    query = (
        sa.select(deliveries.c.worker)
        .where(deliveries.c.state == State.SENDING.value, deliveries.c.worker.isnot(None))
        .distinct()
    )
    return set(conn.execute(query).scalars())


def release(conn: Connection, worker: str, now: datetime) -> int:
    """Put `worker`'s `sending` deliveries back to pending: claimed and never attempted when
    it stops, or in flight when it died (these are sent again: one copy may arrive twice)."""
    query = deliveries.update().where(
        deliveries.c.state == State.SENDING.value, deliveries.c.worker == worker
    )
    return int(conn.execute(query.values(state=State.PENDING.value, updated_at=now)).rowcount)


def unclaimed_sending(conn: Connection) -> list[int]:
    """Digests with `sending` rows that no worker id claims: left by a sender from before
    migration 0004, which held the lock `digest-{id}` instead."""
    query = (
        sa.select(deliveries.c.digest_id)
        .where(deliveries.c.state == State.SENDING.value, deliveries.c.worker.is_(None))
        .distinct()
    )
    return list(conn.execute(query).scalars())


def release_unclaimed(conn: Connection, digest_id: int, now: datetime) -> int:
    query = deliveries.update().where(
        deliveries.c.digest_id == digest_id,
        deliveries.c.state == State.SENDING.value,
        deliveries.c.worker.is_(None),
    )
    return int(conn.execute(query.values(state=State.PENDING.value, updated_at=now)).rowcount)


def waiting(conn: Connection, states: Sequence[State]) -> list[Digest]:
    """Digests with deliveries in any of `states`, oldest first."""
    query = (
        sa.select(digests)
        .where(
            digests.c.id.in_(
                sa.select(deliveries.c.digest_id).where(
                    deliveries.c.state.in_([s.value for s in states])
                )
            )
        )
        .order_by(digests.c.period, digests.c.id)
    )
    return [_digest(row) for row in conn.execute(query)]


def status(conn: Connection, list_slug: str | None = None) -> list[tuple[Digest, dict[str, int]]]:
    """Every digest (of one list, or all), newest first, with its delivery counts per state."""
    query = sa.select(digests).order_by(digests.c.period.desc(), digests.c.id.desc())
    if list_slug is not None:
        query = query.where(digests.c.list_slug == list_slug)
    found = [_digest(row) for row in conn.execute(query)]
    counts: dict[int, dict[str, int]] = {d.id: {s.value: 0 for s in State} for d in found}
    tally = sa.select(deliveries.c.digest_id, deliveries.c.state, sa.func.count()).group_by(
        deliveries.c.digest_id, deliveries.c.state
    )
    for digest_id, state, number in conn.execute(tally):
        if digest_id in counts:
            counts[digest_id][state] = number
    return [(d, counts[d.id]) for d in found]


def counts(conn: Connection, digest_id: int) -> dict[str, int]:
    """One digest's delivery counts per state (every state, zeros included)."""
    tally = dict.fromkeys((s.value for s in State), 0)
    query = (
        sa.select(deliveries.c.state, sa.func.count())
        .where(deliveries.c.digest_id == digest_id)
        .group_by(deliveries.c.state)
    )
    for state, number in conn.execute(query):
        tally[state] = number
    return tally
