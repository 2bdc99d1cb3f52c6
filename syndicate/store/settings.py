"""Small values the service keeps for itself, such as a generated signing secret."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from syndicate.store.digests import insert_ignoring_conflict
from syndicate.store.schema import settings


def get(conn: Connection, key: str) -> str | None:
    value: str | None = conn.execute(
        sa.select(settings.c.value).where(settings.c.key == key)
    ).scalar_one_or_none()
    return value


def get_or_create(conn: Connection, key: str, make: Callable[[], str]) -> str:
    """The stored value, or `make()` stored first; racing processes all get the same value."""
    insert_ignoring_conflict(conn, settings, {"key": key, "value": make()})
    value: str = conn.execute(sa.select(settings.c.value).where(settings.c.key == key)).scalar_one()
    return value
