"""Per-source fetch state (HTTP validators), so upstream feeds are fetched conditionally."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from syndicate.store.schema import source_state


def validators(conn: Connection, source: str) -> tuple[str | None, str | None]:
    """(etag, last_modified) remembered from the last successful fetch."""
    row = conn.execute(
        sa.select(source_state.c.etag, source_state.c.last_modified).where(
            source_state.c.source == source
        )
    ).first()
    return (row.etag, row.last_modified) if row else (None, None)


def remember(
    conn: Connection, source: str, etag: str | None, last_modified: str | None, now: datetime
) -> None:
    values = {"etag": etag, "last_modified": last_modified, "checked_at": now}
    updated = conn.execute(
        source_state.update().where(source_state.c.source == source).values(**values)
    )
    if updated.rowcount == 0:
        conn.execute(source_state.insert().values(source=source, **values))
