"""Hard bounces: one row per report (a DSN, or a 5xx to RCPT), unique on a fingerprint so that
a report fed twice is counted once. An address whose bounces reach the limit is suppressed
from every list, in the caller's transaction, with the bounce that reached it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from syndicate.store import suppressions
from syndicate.store.digests import insert_ignoring_conflict
from syndicate.store.schema import bounces, deliveries
from syndicate.store.suppressions import EVERY_LIST, Reason


@dataclass(frozen=True, slots=True)
class Bounce:
    """One hard bounce as reported."""

    address: str  # as reported; stored under its suppression key
    status: str  # the enhanced status ("5.1.1"), or the reply code ("550") when there is none
    diagnostic: str  # one line: the remote server's reply, as the report gives it
    source: str  # where it was reported: "DSN new/1.eml", "RCPT reply to delivery 42"
    fingerprint: str  # the same report gives the same fingerprint (64 hex digits)


@dataclass(frozen=True, slots=True)
class Recorded:
    new: bool  # False: this report had been recorded before, and is not counted again
    count: int  # the address's hard bounces, this one included
    suppressed: bool  # this call suppressed the address from every list


def record(conn: Connection, bounce: Bounce, now: datetime) -> bool:
    """Store it; True when it is new, False when its fingerprint was already recorded."""
    row = {
        "address": suppressions.key(bounce.address),
        "status": bounce.status[:20],
        "diagnostic": bounce.diagnostic,
        "source": bounce.source,
        "fingerprint": bounce.fingerprint,
        "created_at": now,
    }
    return insert_ignoring_conflict(conn, bounces, row)


def count(conn: Connection, address: str) -> int:
    """The hard bounces recorded for an address (by suppression key)."""
    query = sa.select(sa.func.count()).where(bounces.c.address == suppressions.key(address))
    return int(conn.execute(query).scalar_one())


def record_and_suppress(conn: Connection, bounce: Bounce, limit: int, now: datetime) -> Recorded:
    """Record the bounce; once the address has `limit` of them, suppress it from every list
    (reason `bounced`). Runs in the caller's transaction: the bounce and the suppression are
    committed together or not at all. A report fed again is not counted again, but still
    suppresses an address already at the limit (say, after the limit was lowered)."""
    new = record(conn, bounce, now)
    total = count(conn, bounce.address)
    suppressed = False
    if total >= limit:
        plural = "" if total == 1 else "s"
        source = f"{total} hard bounce{plural}, last: {bounce.source} ({bounce.status})"
        suppressed = suppressions.suppress(
            conn, bounce.address, EVERY_LIST, Reason.BOUNCED, source, now
        )
    return Recorded(new, total, suppressed)


def delivery_address(conn: Connection, delivery_id: int) -> str | None:
    """The recipient of a digest delivery (None if there is no such delivery)."""
    query = sa.select(deliveries.c.address).where(deliveries.c.id == delivery_id)
    value: str | None = conn.execute(query).scalar_one_or_none()
    return value
