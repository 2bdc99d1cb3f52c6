"""Digests and their deliveries (the outbox). A digest row is unique per (list, key), so two
schedulers can never both create it; a delivery moves pending → sending → sent | failed |
deferred, and after a crash only `sending` rows are ambiguous.

Any number of workers drain the outbox together: `claim` hands each a batch of pending rows
no other worker gets (FOR UPDATE SKIP LOCKED on PostgreSQL; on SQLite one UPDATE … RETURNING,
writers being serialised), marked `sending` with the worker's id. `sending` rows of a worker
that died are found by `claimers` and put back by `release`."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine

from syndicate.model import Subscriber
from syndicate.store.db import translate_errors
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
    _insert_deliveries(conn, digest.id, recipients, now)
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


def _insert_deliveries(
    conn: Connection, digest_id: int, recipients: Iterable[Subscriber], now: datetime
) -> None:
    """One pending delivery per recipient, _BATCH rows per executemany. With SQLite, plain
    tuples go to the driver, each distinct topic choice encoded once: SQLAlchemy's work on
    every parameter of every row took longer than SQLite's insert."""
    if conn.dialect.paramstyle != "qmark":
        rows: list[dict[str, Any]] = []
        for subscriber in recipients:
            rows.append(
                {
                    "digest_id": digest_id,
                    "address": subscriber.address,
                    "name": subscriber.name,
                    "topics": list(subscriber.topics),
                    "state": State.PENDING.value,
                    "attempts": 0,
                    "updated_at": now,
                }
            )
            if len(rows) >= _BATCH:
                conn.execute(deliveries.insert(), rows)
                rows = []
        if rows:
            conn.execute(deliveries.insert(), rows)
        return
    dialect = conn.dialect
    encode: Callable[[Any], Any] = deliveries.c.topics.type.bind_processor(dialect) or (
        lambda value: value
    )
    stamp, pending = _updated_at(dialect)(now), State.PENDING.value
    encoded: dict[tuple[str, ...], Any] = {}
    batch: list[tuple[Any, ...]] = []
    for subscriber in recipients:
        topics = subscriber.topics
        if topics not in encoded:
            encoded[topics] = encode(list(topics))
        batch.append(
            (digest_id, subscriber.address, subscriber.name, encoded[topics], pending, 0, stamp)
        )
        if len(batch) >= _BATCH:
            conn.exec_driver_sql(_INSERT_SQL, batch)
            batch = []
    if batch:
        conn.exec_driver_sql(_INSERT_SQL, batch)


_INSERT_SQL = (
    "INSERT INTO deliveries (digest_id, address, name, topics, state, attempts, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


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
        picked = sa.and_(
            deliveries.c.id == sa.any_(sa.func.array(pick.scalar_subquery())),
            deliveries.c.state == State.PENDING.value,
        )
    else:
        # One writer at a time: the UPDATE sees no concurrent claim, and the rows picked are
        # pending. (Saying so again would make SQLite walk every pending row of the index
        # for each claim, instead of looking the picked ones up by id.)
        picked = deliveries.c.id.in_(pick)
    rows = sorted(
        conn.execute(
            deliveries.update()
            .where(picked)
            .values(state=State.SENDING.value, worker=worker, claimed_at=now, updated_at=now)
            .returning(*_CLAIMED)
        ).all(),
        key=lambda row: (row[1], row[0]),
    )
    sending = State.SENDING
    topics: dict[Any, tuple[str, ...]] = {}  # most recipients share a handful of choices
    claimed = []
    for row in rows:
        chosen = row[4]
        key = chosen if isinstance(chosen, str) else tuple(chosen)
        if key not in topics:
            topics[key] = tuple(json.loads(chosen) if isinstance(chosen, str) else chosen)
        claimed.append(
            Delivery(row[0], row[1], row[2], row[3], topics[key], sending, row[5], row[6], worker)
        )
    return claimed


# Returned by a claim: no timestamps, which cost more to read back than the rest of a row. The
# topics are read as the stored JSON text where the driver gives text (SQLite): most rows share
# a few distinct values, each parsed once per batch.
_CLAIMED = (
    deliveries.c.id,
    deliveries.c.digest_id,
    deliveries.c.address,
    deliveries.c.name,
    sa.type_coerce(deliveries.c.topics, sa.Text).label("topics"),
    deliveries.c.attempts,
    deliveries.c.reply,
)


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


class Outcome(NamedTuple):
    """What became of a claimed delivery, to be recorded."""

    delivery_id: int
    state: State
    reply: str
    attempts: int  # transactions started for it this time (added to the row's count)


# A delivery another worker has claimed since (after this one was taken for dead) is left to
# it, and one recorded already is left as it is: recording an outcome twice (a commit retried
# after its connection broke) changes nothing. Built once: compiling the UPDATE cost more
# than running it.
_RECORD = (
    deliveries.update()
    .where(
        deliveries.c.id == sa.bindparam("i"),
        deliveries.c.worker == sa.bindparam("by"),
        deliveries.c.state == State.SENDING.value,
    )
    .values(
        state=sa.bindparam("s"),
        reply=sa.bindparam("r"),
        attempts=deliveries.c.attempts + sa.bindparam("n", type_=sa.Integer),
        updated_at=sa.bindparam("at", type_=UTCDateTime),
    )
)


def record(conn: Connection, outcomes: Sequence[Outcome], worker: str, at: datetime) -> None:
    """Record what became of deliveries `worker` claimed, at `at`, in the caller's
    transaction (one executemany). A worker records through `Recording`, faster."""
    if outcomes:
        conn.execute(
            _RECORD,
            [
                {
                    "i": o.delivery_id,
                    "by": worker,
                    "s": o.state.value,
                    "r": o.reply,
                    "n": o.attempts,
                    "at": at,
                }
                for o in sorted(outcomes)
            ],
        )


# The same UPDATE as the driver takes it, for `Recording`: SQLAlchemy would make a cache key
# and process every parameter of every row, which costs more than the database's own work.
# SQLite: one UPDATE per outcome (executemany). PostgreSQL: one UPDATE of them all, from
# arrays (one statement text whatever the count, so the driver prepares it once). Each in a
# transaction committed only once the UPDATE is done: a worker killed before its COMMIT left
# records nothing (autocommit would let the server finish an UPDATE sent by a dead worker).
_RECORD_SQLITE = (
    "UPDATE deliveries SET state = ?, reply = ?, attempts = attempts + ?, updated_at = ? "
    "WHERE id = ? AND worker = ? AND state = 'sending'"
)
_RECORD_POSTGRESQL = (
    "UPDATE deliveries AS d SET state = o.state, reply = o.reply, attempts = d.attempts + o.n, "
    "updated_at = %s "
    "FROM unnest(%s::integer[], %s::text[], %s::text[], %s::integer[]) AS o(id, state, reply, n) "
    "WHERE d.id = o.id AND d.worker = %s AND d.state = 'sending'"
)


@functools.cache
def _updated_at(dialect: Dialect) -> Callable[[datetime], Any]:
    """How the dialect writes an `updated_at` value (naive UTC; text on SQLite)."""
    process = deliveries.c.updated_at.type.bind_processor(dialect)
    return process if process is not None else lambda value: value


class Recording:
    """Records a worker's outcomes, one commit at a time, over a database connection of its own
    held from one commit to the next: taking a connection from the pool and giving it back,
    and SQLAlchemy's work around each statement, cost more than the database's work, and a
    worker commits hundreds of times a second. Use it from one thread at a time; `close` it.

    Recording is idempotent (see `_RECORD`), so a commit whose connection turns out to be
    dead (PostgreSQL restarted since the last one) is made again on a new connection, as the
    pool's pre-ping would have; any other error is a StoreError, and the next commit starts
    on a new connection. Other databases than SQLite and PostgreSQL (psycopg) are recorded
    through SQLAlchemy, as `record` does."""

    def __init__(self, engine: Engine, worker: str) -> None:
        self.engine, self.worker = engine, worker
        dialect = engine.dialect
        self._kind = ""
        if dialect.name == "sqlite" and dialect.paramstyle == "qmark":
            self._kind = "sqlite"
        elif dialect.name == "postgresql" and dialect.paramstyle in ("format", "pyformat"):
            self._kind = "postgresql"
        self._conn: Connection | None = None

    def commit(self, outcomes: Sequence[Outcome], at: datetime) -> None:
        """Record `outcomes` at `at`, committed when this returns. StoreError: none are."""
        if not outcomes:
            return
        if not self._kind:
            with translate_errors(self.engine), self.engine.begin() as conn:
                record(conn, outcomes, self.worker, at)
            return
        stamp = _updated_at(self.engine.dialect)(at)
        ordered = sorted(outcomes)
        if self._kind == "sqlite":
            worker = self.worker
            sql = _RECORD_SQLITE
            params: Any = [
                (o.state.value, o.reply, o.attempts, stamp, o.delivery_id, worker) for o in ordered
            ]
        else:
            sql = _RECORD_POSTGRESQL
            params = (
                stamp,
                [o.delivery_id for o in ordered],
                [o.state.value for o in ordered],
                [o.reply for o in ordered],
                [o.attempts for o in ordered],
                self.worker,
            )
        with translate_errors(self.engine):
            self._commit(sql, params, retry=True)

    def _commit(self, sql: str, params: Any, *, retry: bool) -> None:
        dialect = self.engine.dialect
        error = dialect.loaded_dbapi.Error
        if self._conn is None:
            self._conn = self.engine.connect()
        raw = self._conn.connection.dbapi_connection
        assert raw is not None
        cursor = None
        try:
            try:
                cursor = raw.cursor()
                if self._kind == "sqlite":
                    cursor.execute("BEGIN IMMEDIATE")  # as Store.begin
                    cursor.executemany(sql, params)
                else:
                    cursor.execute(sql, params)
                raw.commit()
            except error as exc:
                dead = dialect.is_disconnect(exc, raw, cursor)
                self._discard()
                if dead and retry:
                    self._commit(sql, params, retry=False)
                    return
                raise sa.exc.DBAPIError.instance(sql, None, exc, error) from exc
        finally:
            if cursor is not None:
                with suppress(error):
                    cursor.close()

    def _discard(self) -> None:
        """Close the connection at once (an open transaction is rolled back with it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(Exception):
                conn.invalidate()
            conn.close()

    def close(self) -> None:
        """Give the connection back to the pool."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


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
