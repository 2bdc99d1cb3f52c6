"""The release store: the only code that writes SQL. Every method may raise StoreError."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from sqlalchemy.engine import Connection, Engine, make_url

from syndicate.store.db import (
    create_engine,
    current_revision,
    head_revision,
    migrate,
    translate_errors,
)

__all__ = ["Store"]


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True) -> Store:
        """Connect, and (by default) apply pending migrations first."""
        engine = create_engine(url)
        if upgrade:
            migrate(engine)
        return cls(engine)

    @classmethod
    def open_existing(cls, url: str) -> Store | None:
        """The store if it exists and is up to date, creating and changing nothing (for
        read-only checks); None otherwise. StoreError when it cannot be reached."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and (
            parsed.database in (None, "", ":memory:") or not Path(parsed.database).is_file()
        ):
            return None
        engine = create_engine(url)
        with translate_errors(engine):
            current = current_revision(engine)
        if current != head_revision():
            engine.dispose()
            return None
        return cls(engine)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One write transaction: committed on success, rolled back on any error.

        On SQLite it takes the write lock first (BEGIN IMMEDIATE), waiting up to the busy
        timeout: what it reads is then what it writes over. A deferred transaction would
        read before another writer commits and then fail, on a key that writer just
        inserted, or at once with "database is locked" when its snapshot is stale."""
        with translate_errors(self.engine), self.engine.begin() as connection:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            yield connection

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """Read-only work; nothing is committed."""
        with translate_errors(self.engine), self.engine.connect() as connection:
            yield connection

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
