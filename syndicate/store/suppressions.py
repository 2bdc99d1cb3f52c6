"""Addresses that must get no more mail: from one list, or ('*') from every list. Never
lost by editing the config: the admins' files cannot undo a row here."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from syndicate.store.digests import insert_ignoring_conflict
from syndicate.store.schema import suppressions

EVERY_LIST = "*"


class Reason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    ADMIN = "admin"


def key(address: str) -> str:
    """Suppressions match whatever the case: better one message too few than one too many."""
    return address.strip().casefold()


def suppress(
    conn: Connection, address: str, list_slug: str, reason: Reason, source: str, now: datetime
) -> bool:
    """Record it (idempotent: the first record stays); True when it is new."""
    row = {
        "address": key(address),
        "list_slug": list_slug,
        "reason": reason.value,
        "source": source,
        "created_at": now,
    }
    return insert_ignoring_conflict(conn, suppressions, row)


def among(conn: Connection, list_slug: str, addresses: Iterable[str]) -> set[str]:
    """Which of `addresses` (as keys) are suppressed for this list or every list."""
    keys = list({key(a) for a in addresses})
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        query = sa.select(suppressions.c.address).where(
            suppressions.c.address.in_(keys[start : start + 500]),
            suppressions.c.list_slug.in_([list_slug, EVERY_LIST]),
        )
        found.update(conn.execute(query).scalars())
    return found
