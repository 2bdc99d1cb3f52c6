"""Digests and their deliveries (the outbox). A digest row is unique per (list, key), so two
schedulers can never both create it; a delivery moves pending → sending → sent | failed |
deferred, and after a crash only `sending` rows are ambiguous."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
    """Move the watermark forward (never back)."""
    current = watermark(conn, list_slug)
    if current is None:
        conn.execute(list_state.insert().values(list_slug=list_slug, watermark=until))
    elif until > current:
        conn.execute(
            list_state.update().where(list_state.c.list_slug == list_slug).values(watermark=until)
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
    )


def claim(conn: Connection, digest_id: int, limit: int, now: datetime) -> list[Delivery]:
    """Mark up to `limit` pending deliveries `sending` and return them."""
    ids = list(
        conn.execute(
            sa.select(deliveries.c.id)
            .where(
                deliveries.c.digest_id == digest_id,
                deliveries.c.state == State.PENDING.value,
            )
            .order_by(deliveries.c.id)
            .limit(limit)
        ).scalars()
    )
    if not ids:
        return []
    conn.execute(
        deliveries.update()
        .where(
            deliveries.c.id.in_(ids),
            deliveries.c.state == State.PENDING.value,
        )
        .values(state=State.SENDING.value, updated_at=now)
    )
    rows = conn.execute(
        sa.select(deliveries)
        .where(
            deliveries.c.id.in_(ids),
            deliveries.c.state == State.SENDING.value,
        )
        .order_by(deliveries.c.id)
    ).all()
    return [_delivery(row) for row in rows]


# Built once: compiling the UPDATE cost more than running it, once per message sent.
_RECORD = (
    deliveries.update()
    .where(deliveries.c.id == sa.bindparam("delivery_id"))
    .values(
        state=sa.bindparam("new_state"),
        reply=sa.bindparam("reply"),
        attempts=deliveries.c.attempts + sa.bindparam("tries", type_=sa.Integer),
        updated_at=sa.bindparam("at", type_=UTCDateTime),
    )
)


def record(
    conn: Connection, delivery_id: int, state: State, reply: str, attempts: int, now: datetime
) -> None:
    conn.execute(
        _RECORD,
        {
            "delivery_id": delivery_id,
            "new_state": state.value,
            "reply": reply,
            "tries": attempts,
            "at": now,
        },
    )


def requeue(
    conn: Connection, states: Sequence[State], now: datetime, digest_id: int | None = None
) -> int:
    """Put deliveries in `states` back to pending (resume after a crash: `sending` rows are
    the ambiguous ones and are sent again; or retry deferred/failed ones on request)."""
    query = deliveries.update().where(deliveries.c.state.in_([s.value for s in states]))
    if digest_id is not None:
        query = query.where(deliveries.c.digest_id == digest_id)
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
