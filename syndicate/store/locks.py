"""Named locks that die with their holder, so a crashed sender never blocks the next one:
a PostgreSQL session advisory lock, or for SQLite (one machine) an flock on a file beside
the database. Either is released by the operating system or server when the process dies."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from syndicate.store import Store


@contextmanager
def held(store: Store, name: str) -> Iterator[bool]:
    """Try to take lock `name` without waiting: yields True while it is held by this block,
    False when another process (or thread) holds it."""
    if store.engine.dialect.name == "postgresql":
        with _advisory(store, name) as got:
            yield got
    else:
        with _flock(store, name) as got:
            yield got


@contextmanager
def _advisory(store: Store, name: str) -> Iterator[bool]:
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    with store.engine.connect() as conn:
        got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()


@contextmanager
def _flock(store: Store, name: str) -> Iterator[bool]:
    database = store.engine.url.database
    if not database or database == ":memory:":  # one process: a lock file per process
        folder, stem = Path(tempfile.gettempdir()), f"memory-{os.getpid()}"
    else:
        folder, stem = Path(database).parent, Path(database).name
    path = folder / f".{stem}.{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.lock"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
