"""Store faults: a SQLite database whose write lock another process holds (BEGIN IMMEDIATE),
for less than the busy timeout and for longer; and two writers racing for the same releases.

An operation either waits and succeeds, or fails with one StoreError line naming the database
and "database is locked", and then nothing of its transaction is in the store: an ingest
batch is all in or not at all. Readers (a build) are not held up by a writer at all (WAL).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from syndicate.build import build
from syndicate.config import Config
from syndicate.errors import StoreError
from syndicate.ingest import BATCH, ingest
from syndicate.ingest.upsert import Candidate, Outcome, apply
from syndicate.model import Release
from syndicate.store import Store
from tests.conftest import NOW, WriteConfig, run_syndicate, write_release
from tests.figures import report

pytestmark = pytest.mark.faults

SHORT_TIMEOUT = 0.4  # seconds: the busy timeout of the "longer than the timeout" tests
SHORT_HOLD = 0.3  # seconds: a lock held for less than the default 10 s busy timeout

HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
if sys.argv[2]:
    time.sleep(float(sys.argv[2]))
else:
    sys.stdin.readline()
conn.execute("COMMIT")
print("released", flush=True)
"""


class WriteLock:
    """Another process holding the SQLite database's write lock: BEGIN IMMEDIATE, then COMMIT
    after `hold` seconds, or when `release()` is called."""

    def __init__(self, database: Path, hold: float | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(database), "" if hold is None else str(hold)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline() == "held\n"

    def release(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        if self.process.poll() is None:
            self.process.stdin.write("\n")
            self.process.stdin.flush()
        assert self.process.stdout.readline() == "released\n"
        assert self.process.wait(10) == 0

    def __enter__(self) -> WriteLock:
        return self

    def __exit__(self, *_: object) -> None:
        self.process.kill()
        self.process.wait(10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


def sqlite_file(config: Config) -> Path:
    database = make_url(config.database.url).database
    assert database is not None
    return Path(database)


def with_timeout(url: str, seconds: float) -> str:
    return f"{url}?timeout={seconds}"


def releases_in(project: Path, count: int, prefix: str = "r") -> None:
    for n in range(count):
        write_release(
            project / "content",
            f"{prefix}{n:04}.md",
            f"title: Release {n} on trafficking\npublished: 2026-11-20",
        )


def stored_ids(store: Store) -> set[str]:
    with store.connect() as conn:
        return set(conn.execute(sa.text("SELECT id FROM releases")).scalars())


def orphans(store: Store) -> int:
    """Topic rows without their release, or releases without their topic rows."""
    with store.connect() as conn:
        loose = conn.execute(
            sa.text(
                "SELECT count(*) FROM release_topics t "
                "WHERE NOT EXISTS (SELECT 1 FROM releases r WHERE r.id = t.release_id)"
            )
        ).scalar_one()
        bare = conn.execute(
            sa.text(
                "SELECT count(*) FROM releases r WHERE NOT EXISTS "
                "(SELECT 1 FROM release_topics t WHERE t.release_id = r.id)"
            )
        ).scalar_one()
    return int(loose) + int(bare)


@contextmanager
def failed_attempts(store: Store) -> Iterator[list[str]]:
    """The statements the store's driver refused while the block ran (an observer: it
    changes nothing)."""
    seen: list[str] = []

    def record(context: Any) -> None:
        seen.append(str(context.original_exception))

    sa.event.listen(store.engine, "handle_error", record)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine, "handle_error", record)


def test_an_ingest_waits_for_a_lock_held_less_than_the_busy_timeout(
    project: Path, config: Config
) -> None:
    releases_in(project, BATCH + 50)
    with Store.open(config.database.url) as store, WriteLock(sqlite_file(config), SHORT_HOLD):
        started = time.monotonic()
        result = ingest(config, store, NOW)
        waited = time.monotonic() - started
        assert result.counts[Outcome.NEW] == BATCH + 50 and not result.rejected
        assert len(stored_ids(store)) == BATCH + 50 and orphans(store) == 0
    assert waited >= SHORT_HOLD / 2  # it did wait for the other writer
    report(
        "store-busy",
        f"SQLite write lock held {SHORT_HOLD} s by another process: ingest of "
        f"{BATCH + 50} releases waited {waited:.2f} s and stored all of them",
    )


def test_a_lock_held_past_the_busy_timeout_fails_one_batch_cleanly(
    project: Path, config: Config
) -> None:
    """The lock is taken between two batches: the first is in, the second not at all, and
    the error is one line naming the database. Ingesting again completes the job."""
    releases_in(project, BATCH + 50)
    url = with_timeout(config.database.url, SHORT_TIMEOUT)
    with Store.open(url) as store, failed_attempts(store) as refused:
        with store.connect() as conn:  # the URL's timeout, not the 10 s default
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SHORT_TIMEOUT * 1000
        locks: list[WriteLock] = []
        items = 0

        def lock_after_first_batch() -> None:
            nonlocal items
            items += 1
            if items == BATCH + 1:  # the first batch was flushed (committed) just before
                locks.append(WriteLock(sqlite_file(config)))

        started = time.monotonic()
        try:
            with pytest.raises(StoreError) as caught:
                ingest(config, store, NOW, progress=lock_after_first_batch)
            failed_after = time.monotonic() - started
            message = str(caught.value)
            assert "\n" not in message
            assert str(sqlite_file(config)) in message
            assert message.endswith(": database is locked")
            assert len(refused) == 1, refused  # the failed batch was not retried
            assert len(stored_ids(store)) == BATCH and orphans(store) == 0
        finally:
            for lock in locks:
                lock.release()
                lock.__exit__()
        again = ingest(config, store, NOW)
        assert (again.counts[Outcome.NEW], again.counts[Outcome.UNCHANGED]) == (50, BATCH)
        assert len(stored_ids(store)) == BATCH + 50 and orphans(store) == 0
    report(
        "store-busy",
        f"SQLite write lock held past a {SHORT_TIMEOUT} s busy timeout: ingest failed after "
        f"{failed_after:.2f} s with one line ({message.split(': ', 1)[1]}), batch 1 "
        f"({BATCH}) in, batch 2 (50) not at all, 0 orphan rows; the next ingest stored the 50",
    )


def test_a_batch_refused_by_a_lock_is_not_retried_on_the_way_out(
    project: Path, config: Config
) -> None:
    """The first batch (flushed inside the read loop) meets the lock: the ingest fails after
    one busy timeout, not two, and stores nothing."""
    releases_in(project, BATCH + 50)
    url = with_timeout(config.database.url, SHORT_TIMEOUT)
    with Store.open(url) as store, failed_attempts(store) as refused:
        with WriteLock(sqlite_file(config)) as lock:
            with pytest.raises(StoreError, match="database is locked"):
                ingest(config, store, NOW)
            lock.release()
        assert len(refused) == 1, refused
        assert stored_ids(store) == set()
    report(
        "store-busy",
        f"lock held before the first batch of {BATCH + 50}: one attempt, one busy timeout, "
        "nothing stored",
    )


def test_the_cli_reports_a_locked_database_in_one_line(
    project: Path, write_config: WriteConfig, config: Config
) -> None:
    releases_in(project, 3)
    with Store.open(config.database.url):
        pass  # created and migrated
    text = (project / "config" / "syndicate.yaml").read_text(encoding="utf-8")
    text = text.replace("sqlite:///../var/test.db", "sqlite:///../var/test.db?timeout=0.3")
    locked_config: Config = write_config(text)
    with WriteLock(sqlite_file(locked_config)) as lock:
        result = run_syndicate(project, "ingest")
        lock.release()
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: database sqlite:///")
    assert lines[0].endswith("test.db?timeout=0.3: database is locked")
    with Store.open(config.database.url) as store:
        assert stored_ids(store) == set()
        assert ingest(config, store, NOW).counts[Outcome.NEW] == 3
    shown = lines[0].replace(str(project), "PROJECT")
    report("store-busy", f"`syndicate ingest` on a locked database: exit 1, {shown!r}")


def test_a_build_reads_while_another_process_holds_the_write_lock(
    project: Path, config: Config
) -> None:
    """With a 0.4 s busy timeout, anything that needed the write lock would fail: the build
    needs none (WAL readers do not wait for writers)."""
    releases_in(project, 20)
    url = with_timeout(config.database.url, SHORT_TIMEOUT)
    with Store.open(url) as store:
        ingest(config, store, NOW)
        with WriteLock(sqlite_file(config)) as lock:
            built = build(config, store, NOW)
            lock.release()
    assert "releases/r0019/index.html" in built.written
    report(
        "store-busy",
        f"a build during another process's write lock: {len(built.written)} files written, "
        "no wait (WAL readers)",
    )


# Two writers racing for the same new release. Writer A stops inside its transaction, right
# after its INSERT; writer B starts while A holds the row uncommitted; then A commits. B must
# wait for A and see its row (the release is then unchanged), not decide from what it read
# before A committed and fail on the primary key.


def a_release(rid: str) -> Release:
    return Release(
        id=rid,
        title="Counter-trafficking hotline",
        published=datetime(2026, 11, 20, 7, 0, tzinfo=UTC),
        url=f"https://press.example.org/news/releases/{rid}/",
        lang="en",
        summary="Summary.",
        body_html="<p>Summary.</p>",
        categories=("trafficking",),
    )


def test_two_writers_racing_for_the_same_release_both_succeed(store: Store) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    batch = [
        Candidate(a_release(f"race-{n}"), "markdown:../content", f"race-{n}.md") for n in range(3)
    ]
    a_wrote, b_started, go = threading.Event(), threading.Event(), threading.Event()
    outcomes: dict[str, Any] = {}

    def pause_after_insert(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO RELEASES") and not a_wrote.is_set():
            a_wrote.set()
            assert go.wait(10)

    def note_start(*_: Any) -> None:
        b_started.set()

    def run(name: str, writer: Store) -> None:
        try:
            outcomes[name] = [d.outcome for d in apply(writer, batch, NOW)]
        except Exception as exc:  # reported by the assertions below
            outcomes[name] = exc

    with Store.open(url) as other:
        sa.event.listen(other.engine, "after_cursor_execute", pause_after_insert)
        sa.event.listen(store.engine, "before_cursor_execute", note_start)
        a = threading.Thread(target=run, args=("a", other))
        b = threading.Thread(target=run, args=("b", store))
        a.start()
        assert a_wrote.wait(10)
        b.start()
        assert b_started.wait(10)
        time.sleep(0.2)  # B reads (or waits for the lock) meanwhile
        go.set()
        a.join(20)
        b.join(20)
        sa.event.remove(store.engine, "before_cursor_execute", note_start)
    assert outcomes["a"] == [Outcome.NEW] * 3
    assert outcomes["b"] == [Outcome.UNCHANGED] * 3, outcomes["b"]
    assert stored_ids(store) == {f"race-{n}" for n in range(3)} and orphans(store) == 0
    backend = store.engine.dialect.name
    report(
        "store-busy",
        f"{backend}: two writers upserting the same 3 new releases at once: the second "
        "waited for the first and found them unchanged, no error",
    )
