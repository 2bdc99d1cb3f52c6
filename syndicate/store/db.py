"""Engines and migrations: SQLite (WAL, foreign keys) by default, PostgreSQL alike.

A busy SQLite database is waited for: 10 seconds, or the URL's `?timeout=` (seconds, as the
sqlite3 module reads it). A PostgreSQL connection is checked before each use, so a server
restart costs the next operation a reconnect, not an error."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
from syndicate.text import one_line  # driver messages span lines; the CLI prints one

HEAD = "head"


BUSY_TIMEOUT_MS = 10_000
_PRAGMAS = ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL")


def _pragmas_on_connect(pragmas: tuple[str, ...]) -> Callable[[Any, Any], None]:
    """A 'connect' listener that sets `pragmas` on each new SQLite connection."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return on_connect


def create_engine(url: str) -> Engine:
    """Make the engine; a SQLite file's folder is created, a bad URL is a StoreError."""
    try:
        parsed = make_url(url)
        sqlite = parsed.get_backend_name() == "sqlite"
        if sqlite and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # pre-ping: a pooled PostgreSQL connection that died with a server restart is
        # replaced before use (SQLite connections cannot die that way).
        engine = sa.create_engine(parsed, pool_pre_ping=not sqlite)
    except (ArgumentError, NoSuchModuleError, OSError, ImportError) as exc:
        raise StoreError(f"database {_masked(url)}: {one_line(str(exc))}") from None
    if engine.dialect.name == "sqlite":
        pragmas: tuple[str, ...] = _PRAGMAS
        if "timeout" not in parsed.query:  # else sqlite3.connect set it from the URL
            pragmas += (f"busy_timeout={BUSY_TIMEOUT_MS}",)
        sa.event.listen(engine, "connect", _pragmas_on_connect(pragmas))
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


# Any constant: the PostgreSQL advisory lock that serialises migrations ("syndicat" in ASCII).
MIGRATION_LOCK = 0x73796E6469636174


def migrate(engine: Engine, revision: str = HEAD) -> None:
    """Bring the schema to `revision`; already there is a no-op, that only reads.

    Otherwise one transaction, run by one process at a time: processes that start together
    on a new database (a scheduler, workers, the CLI) wait for the first one's migration and
    then find the schema at `revision`, instead of failing on "table … already exists". The
    lock is taken before alembic reads the current revision: on PostgreSQL a transaction-
    scoped advisory lock (released with the transaction, or with a process that dies), on
    SQLite the database's write lock (BEGIN IMMEDIATE, waiting up to the busy timeout). Both
    run DDL inside that transaction, so a failed or killed migration leaves nothing half
    done; without the BEGIN, pysqlite would run each CREATE TABLE in autocommit."""
    try:
        target = head_revision() if revision == HEAD else revision
        if current_revision(engine) == target:  # the usual start: no lock, no write
            return
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
            elif connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            command.upgrade(_alembic_config(connection), revision)
    except SQLAlchemyError as exc:
        reason = one_line(str(getattr(exc, "orig", None) or exc))
        raise StoreError(
            f"database {_masked(str(engine.url))}: migration failed: {reason}"
        ) from None


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
        reason = one_line(str(orig) if orig is not None else str(exc))
        raise StoreError(f"database {_masked(str(engine.url))}: {reason}") from exc
