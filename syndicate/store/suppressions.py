"""Addresses that must get no more mail: from one list, or ('*') from every list. Never
lost by editing the config: the admins' files cannot undo a row here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Suppression:
    """A row that applies to an address on a list."""

    address: str
    list_slug: str  # the list, or EVERY_LIST
    reason: str
    source: str
    created_at: datetime

    def describe(self) -> str:
        scope = "every list" if self.list_slug == EVERY_LIST else f"list {self.list_slug!r}"
        return (
            f"{self.reason} from {scope} on {self.created_at:%Y-%m-%d %H:%M} UTC "
            f"(source: {self.source})"
        )


def of(conn: Connection, list_slug: str, addresses: Iterable[str]) -> dict[str, Suppression]:
    """The suppression of each of `addresses` (by key) for this list or every list; the
    list's own row wins over the '*' one."""
    keys = list({key(a) for a in addresses})
    found: dict[str, Suppression] = {}
    for start in range(0, len(keys), 500):
        query = sa.select(suppressions).where(
            suppressions.c.address.in_(keys[start : start + 500]),
            suppressions.c.list_slug.in_([list_slug, EVERY_LIST]),
        )
        for row in conn.execute(query):
            if row.address not in found or row.list_slug == list_slug:
                found[row.address] = Suppression(
                    row.address, row.list_slug, row.reason, row.source, row.created_at
                )
    return found


def among(conn: Connection, list_slug: str, addresses: Iterable[str]) -> set[str]:
    """Which of `addresses` (as keys) are suppressed for this list or every list."""
    return set(of(conn, list_slug, addresses))
