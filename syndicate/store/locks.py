"""Named locks that die with their holder, so a crashed process never blocks the next one:
a PostgreSQL session advisory lock, or for SQLite (one machine) an flock on a file beside
the database. Either is released by the operating system or server when the process dies.

Every worker (a `syndicate worker`, the one inside `syndicate run`, a `digest send`) holds a
lock named after its id for as long as it works (`present`). Whatever it claimed in the store
is marked with that id; another process that can take the lock (`gone`) knows it is dead and
may take its work over. No clocks, no leases to renew: liveness is the lock."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import secrets
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from syndicate.errors import StoreError
from syndicate.store import Store


@contextmanager
def held(store: Store, name: str, *, discard: bool = False) -> Iterator[bool]:
    """Try to take lock `name` without waiting: yields True while it is held by this block,
    False when another process (or thread) holds it. `discard`: the lock will never be
    wanted again (a dead worker's), so its SQLite lock file is removed before release."""
    if store.engine.dialect.name == "postgresql":
        with _advisory(store, name) as got:
            yield got
    else:
        with _flock(store, name, discard) as got:
            yield got


def new_worker_id() -> str:
    """Unique across machines and restarts, and readable in `digest status` rows: the host,
    the process id and a random part (at most 64 characters)."""
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:40] or "host"
    return f"{host}:{os.getpid()}:{secrets.token_hex(4)}"


def _worker_lock(worker_id: str) -> str:
    return f"worker-{worker_id}"


@contextmanager
def present(store: Store, worker_id: str | None = None) -> Iterator[str]:
    """Be alive as worker `worker_id` (a new id by default) for the block: yields the id
    while holding its lock. Rows this worker claims are its own until the block ends or the
    process dies."""
    worker_id = worker_id or new_worker_id()
    with held(store, _worker_lock(worker_id), discard=True) as got:
        if not got:
            raise StoreError(f"worker id {worker_id} is already in use by a live process")
        yield worker_id


@contextmanager
def gone(store: Store, worker_id: str) -> Iterator[bool]:
    """Whether worker `worker_id` is dead: yields True while this block holds its lock (so
    it cannot come back meanwhile, and no other process takes its work over at once)."""
    with held(store, _worker_lock(worker_id), discard=True) as dead:
        yield dead


# A session holding a worker's lock is given up by the server this long after its machine
# vanished (power loss, network gone), not hours later with the operating system's defaults:
# only then is the worker dead for the others. Ignored over a Unix socket.
_KEEPALIVE = (
    "SET tcp_keepalives_idle = 10",
    "SET tcp_keepalives_interval = 5",
    "SET tcp_keepalives_count = 4",
    "SET tcp_user_timeout = 30000",
)


@contextmanager
def _advisory(store: Store, name: str) -> Iterator[bool]:
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    with store.engine.connect() as conn:
        got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        if got:
            for setting in _KEEPALIVE:
                conn.exec_driver_sql(setting)
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()


@contextmanager
def _flock(store: Store, name: str, discard: bool) -> Iterator[bool]:
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
            if discard:  # safe while held: only its one owner ever creates this name
                path.unlink(missing_ok=True)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
