"""Engines and migrations: SQLite (WAL, foreign keys) by default, PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from syndicate.errors import StoreError

HEAD = "head"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "foreign_keys=ON",
        "busy_timeout=10000",
        "synchronous=NORMAL",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def create_engine(url: str) -> Engine:
    """Make the engine; a SQLite file's folder is created, a bad URL is a StoreError."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed)
    except (ArgumentError, NoSuchModuleError, OSError, ImportError) as exc:
        raise StoreError(f"database {_masked(url)}: {exc}") from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _masked(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url)


def _alembic_config(connection: Connection) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", "syndicate.store:migrations")
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, revision: str = HEAD) -> None:
    """Bring the schema to `revision`; already there is a no-op."""
    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), revision)
    except SQLAlchemyError as exc:
        raise StoreError(f"database {_masked(str(engine.url))}: migration failed: {exc}") from None


def head_revision() -> str:
    """The newest migration this code knows."""
    config = AlembicConfig()
    config.set_main_option("script_location", "syndicate.store:migrations")
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def translate_errors(engine: Engine) -> Iterator[None]:
    """Turn driver errors into one StoreError naming the database (password hidden)."""
    try:
        yield
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        reason = str(orig) if orig is not None else str(exc)
        raise StoreError(f"database {_masked(str(engine.url))}: {reason}") from exc
