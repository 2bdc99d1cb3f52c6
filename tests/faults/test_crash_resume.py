"""Crash during send: `syndicate digest send` delivering one digest to 2,000 recipients is
killed with SIGKILL at five points, one after another, and restarted each time; the last
restart (`syndicate outbox retry`) finishes it. The points:

1. before the first message: every MAIL is held by the server, the sender has claimed rows;
2. during DATA: the server holds one message, read whole and not answered;
3. mid-way: after about 1,000 recipients are accepted, from the test's thread;
4. right after a 250: inside the server, just after a message's 250 is written;
5. during the final commit: every recipient accepted, and the test holds the store's write
   lock, so the last results cannot be committed (on PostgreSQL the kill waits until the
   sender's UPDATE is seen waiting for that lock).

The kills are timed by the server's progress (its holds and on_accept hooks), never by
sleeping. Required (DESIGN.md, "State that must survive a crash"): every recipient gets the
digest, and each kill adds at most one duplicate per SMTP connection open at that instant.
The duplicates a kill makes are counted right after it: messages the server accepted that the
store does not record as sent (each is sent again, so it arrives twice).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from syndicate.ingest import ingest
from syndicate.store import Store
from syndicate.store.schema import deliveries
from tests.conftest import WriteConfig
from tests.digest.test_send import MONDAY, setup
from tests.figures import report
from tests.smtpserver import Received, SmtpServer

pytestmark = pytest.mark.faults

PEOPLE = 2000
CONNECTIONS = 4
KEY = MONDAY.isoformat()  # the digest's key: the period of --now MONDAY


@dataclass
class Kill:
    point: str
    open_connections: int  # SMTP connections open at the server at the instant of the kill
    duplicates: int = 0  # accepted by the server and not recorded as sent: sent again


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


class StoreLock:
    """The store's write lock, held by the test: BEGIN IMMEDIATE on SQLite, a table lock on
    the deliveries on PostgreSQL (readers go on; the sender's UPDATEs wait)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.sqlite: sqlite3.Connection | None = None
        self.postgres: Connection | None = None

    def take(self) -> None:
        if self.store.engine.dialect.name == "sqlite":
            database = self.store.engine.url.database
            assert database is not None
            self.sqlite = sqlite3.connect(
                database, isolation_level=None, timeout=30, check_same_thread=False
            )
            self.sqlite.execute("BEGIN IMMEDIATE")
        else:
            self.postgres = self.store.engine.connect()
            self.postgres.execute(sa.text("LOCK TABLE deliveries IN EXCLUSIVE MODE"))

    def wait_for_a_blocked_commit(self) -> None:
        """PostgreSQL: until the sender's recording UPDATE waits for this lock. (SQLite
        shows no one waiting for its lock: there the kill comes right after the last 250.)"""
        if self.postgres is None:
            return
        query = sa.text(  # the UPDATE that records results adds to `attempts`; a claim not
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE 'UPDATE deliveries %' "
            "AND query ~* 'attempts\\s*\\+'"
        )

        def blocked() -> bool:
            with self.store.engine.connect() as conn:
                return bool(conn.execute(query).scalar())

        wait_until(blocked, "the sender's commit to wait for the lock", 30)

    def release(self) -> None:
        if self.sqlite is not None:
            self.sqlite.execute("ROLLBACK")
            self.sqlite.close()
        if self.postgres is not None:
            self.postgres.rollback()
            self.postgres.close()


class Senders:
    """The sender processes of one digest, one at a time, each killed at the server's cue."""

    def __init__(self, project: Path, store: Store, server: SmtpServer, logs: Path) -> None:
        self.project, self.store, self.server, self.logs = project, store, server, logs
        self.env = {
            **os.environ,
            "SYNDICATE_DATABASE__URL": store.engine.url.render_as_string(hide_password=False),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.output: tuple[IO[Any], IO[Any]] | None = None
        self.runs = 0
        self.kills: list[Kill] = []
        self.accepted: set[str] = set()  # recipients the server has accepted a message for
        self.at_risk = 0  # accepted by the server, not recorded as sent, after the last kill
        self.failure: Exception | None = None  # of a hook, in the server's thread
        # Set by a test to act at the server's progress, in the server's thread:
        self.before_reply: Callable[[Received], None] | None = None
        self.after_reply: Callable[[Received], None] | None = None
        server.on_accept(self._before, before_reply=True)
        server.on_accept(self._after)

    def _before(self, received: Received, _number: int) -> None:
        self.accepted.update(received.recipients)
        if self.before_reply is not None:
            self._run(self.before_reply, received)

    def _after(self, received: Received, _number: int) -> None:
        if self.after_reply is not None:
            self._run(self.after_reply, received)

    def _run(self, hook: Callable[[Received], None], received: Received) -> None:
        """A hook failing in the server's thread fails the test in the test's thread."""
        try:
            hook(received)
        except Exception as exc:  # re-raised in the test's thread by await_cue
            self.failure = self.failure or exc
            self.before_reply = self.after_reply = None

    def start(self, *args: str) -> None:
        self.runs += 1
        out = (self.logs / f"run{self.runs}.out").open("w+")
        err = (self.logs / f"run{self.runs}.err").open("w+")
        self.output = (out, err)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "syndicate", "--now", MONDAY.isoformat(), *args],
            cwd=self.project,
            env=self.env,
            stdout=out,
            stderr=err,
        )

    def text(self) -> tuple[str, str]:
        assert self.output is not None
        texts = []
        for stream in self.output:
            stream.seek(0)
            texts.append(stream.read())
        return texts[0], texts[1]

    def await_cue(self, cue: threading.Event, what: str) -> None:
        """Wait for the server's cue; fail at once, with the sender's output, if it ends."""
        assert self.process is not None
        deadline = time.monotonic() + 60
        while not cue.wait(0.01):
            if self.failure is not None:
                raise self.failure
            if self.process.poll() is not None:
                pytest.fail(f"the sender ended before {what}: {self.text()}")
            assert time.monotonic() < deadline, f"timed out waiting for {what}"

    def kill(self, point: str) -> None:
        """SIGKILL the sender now (from the test's thread or the server's)."""
        assert self.process is not None
        self.kills.append(Kill(point, self.server.open_sessions))
        os.kill(self.process.pid, signal.SIGKILL)

    def settle(self) -> Kill:
        """Once the killed sender is gone, and the server has seen its connections close
        (and taken whatever they had sent): how many duplicates this kill made."""
        assert self.process is not None and self.output is not None
        assert self.process.wait(30) == -signal.SIGKILL, self.text()
        wait_until(lambda: self.server.open_sessions == 0, "the connections to close")
        for stream in self.output:
            stream.close()
        at_risk = len(self.server.received) - self.states().get("sent", 0)
        kill = self.kills[-1]
        kill.duplicates, self.at_risk = at_risk - self.at_risk, at_risk
        assert kill.open_connections <= CONNECTIONS
        assert 0 <= kill.duplicates <= kill.open_connections, kill
        return kill

    def finish(self, *args: str) -> str:
        self.start(*args)
        assert self.process is not None
        code = self.process.wait(120)
        out, err = self.text()
        assert self.output is not None
        for stream in self.output:
            stream.close()
        assert code == 0, (out, err)
        return out

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        for stream in self.output or ():
            stream.close()

    def states(self) -> dict[str, int]:
        with self.store.connect() as conn:
            query = sa.select(deliveries.c.state, sa.func.count()).group_by(deliveries.c.state)
            return {row[0]: row[1] for row in conn.execute(query)}

    def state_of(self, address: str) -> str:
        with self.store.connect() as conn:
            query = sa.select(deliveries.c.state).where(deliveries.c.address == address)
            return str(conn.execute(query).scalar_one())


def test_a_sender_killed_at_five_points_loses_no_one_and_resends_one_per_connection_at_most(
    project: Path, write_config: WriteConfig, store: Store, tmp_path: Path
) -> None:
    started = time.monotonic()
    send = ("digest", "send", "weekly")
    with SmtpServer() as server, ExitStack() as cleanup:
        config = setup(project, write_config, server, PEOPLE)
        assert config.smtp.connections == CONNECTIONS
        ingest(config, store, MONDAY)
        senders = Senders(project, store, server, tmp_path)
        cleanup.callback(senders.close)  # a sender left running by a failure is killed

        # 1. Before the first message: every MAIL waits; the sender has claimed a batch.
        every_mail = server.hold("MAIL", times=None)
        senders.start(*send)  # creates the digest, then sends
        senders.await_cue(every_mail.reached, "the first MAIL")
        senders.kill("before the first message")
        senders.settle()
        every_mail.release()  # (the held MAILs were cancelled when their connections closed)
        assert server.received == [] and senders.states().get("sending", 0) > 0

        # 2. During DATA: one message read whole, its reply held.
        data = server.hold("DATA", after=PEOPLE // 4)
        senders.start(*send)
        senders.await_cue(data.reached, "a DATA to hold")
        senders.kill("during DATA")
        senders.settle()
        data.release()
        assert data.address not in server.counts()  # never accepted: the kill cancelled it
        assert senders.state_of(data.address) == "sending"  # and goes out again

        # 3. Mid-way, from the test's thread, while the sender goes on.
        midway = threading.Event()

        def past_half(_: Received) -> None:
            if len(senders.accepted) >= PEOPLE // 2:
                midway.set()

        senders.after_reply = past_half
        senders.start(*send)
        senders.await_cue(midway, "1,000 recipients accepted")
        senders.kill("mid-way")
        senders.after_reply = None
        senders.settle()
        assert PEOPLE // 2 <= len(senders.accepted) < PEOPLE

        # 4. Right after a 250: killed inside the server, just after the reply is written.
        killed = threading.Event()

        def after_a_250(_: Received) -> None:
            if len(senders.accepted) >= PEOPLE * 3 // 4 and not killed.is_set():
                senders.kill("right after a 250")
                killed.set()

        senders.after_reply = after_a_250
        senders.start(*send)
        senders.await_cue(killed, "three quarters accepted")
        senders.after_reply = None
        senders.settle()

        # 5. During the final commit: the last recipient accepted, the store locked first.
        lock = StoreLock(store)
        locked, final = threading.Event(), threading.Event()

        def lock_before_the_last(_: Received) -> None:
            if len(senders.accepted) == PEOPLE and not locked.is_set():
                lock.take()
                locked.set()

        def kill_in_the_commit(_: Received) -> None:
            if locked.is_set() and not final.is_set():
                lock.wait_for_a_blocked_commit()
                senders.kill("during the final commit")
                final.set()

        senders.before_reply, senders.after_reply = lock_before_the_last, kill_in_the_commit
        senders.start(*send)
        try:
            senders.await_cue(final, "every recipient accepted")
            senders.before_reply = senders.after_reply = None
            senders.settle()
            assert len(server.counts()) == PEOPLE  # the server has everyone...
            assert senders.states().get("sending", 0) > 0  # ...the store not yet
        finally:
            lock.release()

        # The last restart finishes: everyone has it, with at most the kills' duplicates.
        out = senders.finish("outbox", "retry")
        # ("nothing waiting" when the killed sender had recorded its last results after all)
        finished = f"weekly {KEY}: sent {PEOPLE}, failed 0, pending 0"
        assert out.strip().endswith((finished, "nothing waiting")), out
        assert senders.states() == {"sent": PEOPLE}
        counts = server.counts()
        assert len(counts) == PEOPLE  # nobody lost
        duplicates = sum(n - 1 for n in counts.values())
        assert duplicates == senders.at_risk == sum(k.duplicates for k in senders.kills)
        assert senders.states() == {"sent": PEOPLE}
    kills = senders.kills
    assert [k.point for k in kills] == [
        "before the first message",
        "during DATA",
        "mid-way",
        "right after a 250",
        "during the final commit",
    ]
    assert kills[0].duplicates == 0 and kills[-1].duplicates >= 1
    bound = sum(k.open_connections for k in kills)
    each = ", ".join(f"{k.point} {k.duplicates}/{k.open_connections}" for k in kills)
    report(
        "crash-resume",
        f"{store.engine.dialect.name}: {len(kills)} kills, {PEOPLE} recipients, 0 lost, "
        f"{duplicates} duplicates (at most 1 per open connection: {bound}; per kill, "
        f"duplicates/open connections: {each}); {senders.runs} runs, "
        f"{time.monotonic() - started:.1f} s",
    )
