"""Many workers drain one outbox: claims never overlap, a dead worker's rows go out again
and a live one's never do, results are committed in groups, and `syndicate worker` stops
cleanly. Real SMTP server, real SQLite file or PostgreSQL, real processes for kills."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from syndicate.digest.outbox import create
from syndicate.digest.render import check_templates
from syndicate.digest.worker import Worker
from syndicate.ingest import ingest
from syndicate.store import Store, locks
from syndicate.store import digests as store_digests
from syndicate.store.schema import deliveries
from tests.conftest import BASE_CONFIG, WriteConfig, write_release
from tests.digest.test_send import MONDAY, clock, new_digest, setup
from tests.smtpserver import SmtpServer


def worker_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "syndicate", "--now", MONDAY.isoformat(), "worker", *args]


def environment(store: Store) -> dict[str, str]:
    """The worker processes use the test's database, SQLite or PostgreSQL."""
    return {**os.environ, "SYNDICATE_DATABASE__URL": store.engine.url.render_as_string(False)}


def states(store: Store) -> Counter[str]:
    with store.connect() as conn:
        return Counter(conn.execute(sa.select(deliveries.c.state)).scalars())


def claimers(store: Store) -> set[str]:
    with store.connect() as conn:
        return set(conn.execute(sa.select(deliveries.c.worker).distinct()).scalars()) - {None}


def wait_until(condition: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def test_concurrent_claims_never_hand_one_delivery_to_two_workers(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    config = setup(project, write_config, smtp, 300)
    digest = new_digest(config, store)
    claimed: dict[str, list[int]] = {}

    def claim_all(worker: str) -> None:
        mine = claimed.setdefault(worker, [])
        while True:
            with store.begin() as conn:
                batch = store_digests.claim(conn, None, 7, clock(), worker=worker)
            if not batch:
                return
            assert all(d.worker == worker for d in batch)
            mine += [d.id for d in batch]

    threads = [threading.Thread(target=claim_all, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for ids in claimed.values() for i in ids]
    assert len(every) == len(set(every)) == 300
    assert states(store) == {"sending": 300}
    with store.connect() as conn:
        assert store_digests.counts(conn, digest.id)["sending"] == 300


def test_the_oldest_digest_is_claimed_first(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    config = setup(project, write_config, smtp, 3)
    older = new_digest(config, store)
    with store.begin() as conn:  # a second digest of the list, made later
        second = store_digests.create(
            conn,
            list_slug="weekly",
            key="later",
            period=MONDAY,
            since=MONDAY,
            new=[],
            corrected=[],
            hashes={},
            recipients=[],
            now=MONDAY,
        )
        assert second is not None
        conn.execute(
            deliveries.insert().values(
                digest_id=second.id,
                address="late@example.org",
                name="",
                topics=[],
                state="pending",
                attempts=0,
                updated_at=MONDAY,
            )
        )
        batch = store_digests.claim(conn, None, 3, clock(), worker="w")
    assert [d.digest_id for d in batch] == [older.id] * 3


def test_a_live_workers_rows_are_never_taken_and_a_dead_ones_go_out_again(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    config = setup(project, write_config, smtp, 20)
    digest = new_digest(config, store)
    with locks.present(store) as live:
        with store.begin() as conn:
            held = store_digests.claim(conn, digest.id, 5, clock(), worker=live)
        with locks.gone(store, live) as dead:
            assert not dead
        tally = asyncio.run(Worker(config, store, clock=clock).run(until_empty=True))
        assert str(tally) == "sent 15, failed 0, deferred 0, skipped 0"
        assert not {d.address for d in held} & set(smtp.counts())
        assert states(store) == {"sent": 15, "sending": 5}
    # The holder is gone (as if killed): its rows are sent by the next worker, at once.
    tally = asyncio.run(Worker(config, store, clock=clock).run(until_empty=True))
    assert str(tally) == "sent 5, failed 0, deferred 0, skipped 0"
    assert len(smtp.counts()) == 20 and set(smtp.counts().values()) == {1}
    assert states(store) == {"sent": 20}


def test_results_are_committed_in_groups(
    project: Path,
    write_config: WriteConfig,
    store: Store,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = setup(project, write_config, smtp, 400)
    config = config.model_copy(update={"smtp": config.smtp.model_copy(update={"connections": 8})})
    new_digest(config, store)
    commit = store_digests.Recording.commit

    def slow(self: store_digests.Recording, outcomes: Any, at: datetime) -> None:
        time.sleep(0.005)  # as a busy database would
        commit(self, outcomes, at)

    monkeypatch.setattr(store_digests.Recording, "commit", slow)
    tally = asyncio.run(Worker(config, store, clock=clock).run(until_empty=True))
    assert str(tally) == "sent 400, failed 0, deferred 0, skipped 0"
    assert tally.commits < 200 and tally.largest_commit > 1  # one per message would be 400
    assert states(store) == {"sent": 400}


def claimed(store: Store, worker: str, count: int) -> list[store_digests.Delivery]:
    with store.begin() as conn:
        return store_digests.claim(conn, None, count, clock(), worker=worker)


def sent(deliveries: list[store_digests.Delivery]) -> list[store_digests.Outcome]:
    return [store_digests.Outcome(d.id, store_digests.State.SENT, "250 ok", 1) for d in deliveries]


def test_a_recording_records_outcomes_of_its_own_claims_only(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    config = setup(project, write_config, smtp, 6)
    new_digest(config, store)
    mine, theirs = claimed(store, "w1", 3), claimed(store, "w2", 3)
    recording = store_digests.Recording(store.engine, "w1")
    try:
        recording.commit(sent(mine + theirs), clock())  # w2's rows are left to w2
    finally:
        recording.close()
    with store.connect() as conn:
        rows = conn.execute(sa.select(deliveries.c.worker, deliveries.c.state, deliveries.c.reply))
        assert Counter(tuple(row) for row in rows) == {
            ("w1", "sent", "250 ok"): 3,
            ("w2", "sending", None): 3,
        }


def test_recording_an_outcome_twice_changes_nothing(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    """A commit retried after its connection broke may have been made already: the second
    one must not count the attempts again (nor overwrite a later outcome)."""
    config = setup(project, write_config, smtp, 2)
    new_digest(config, store)
    batch = claimed(store, "w1", 2)
    recording = store_digests.Recording(store.engine, "w1")
    try:
        recording.commit(sent(batch), clock())
        recording.commit(sent(batch), clock())
    finally:
        recording.close()
    with store.connect() as conn:
        rows = conn.execute(sa.select(deliveries.c.state, deliveries.c.attempts))
        assert Counter(tuple(row) for row in rows) == {("sent", 1): 2}


def test_a_recording_connection_found_dead_is_replaced_and_the_commit_made(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    """As the pool's pre-ping would: a connection lost between two commits (a PostgreSQL
    restart; here its session is ended) costs the next commit a reconnect, not an error."""
    config = setup(project, write_config, smtp, 4)
    new_digest(config, store)
    batch = claimed(store, "w1", 4)
    recording = store_digests.Recording(store.engine, "w1")
    try:
        recording.commit(sent(batch[:2]), clock())
        held = recording._conn  # the connection it holds between commits
        assert held is not None
        raw = held.connection.dbapi_connection
        assert raw is not None
        if store.engine.dialect.name == "postgresql":
            pid = held.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            held.rollback()
            with store.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        else:
            raw.close()
        recording.commit(sent(batch[2:]), clock())
    finally:
        recording.close()
    assert states(store) == {"sent": 4}


def test_two_worker_processes_drain_one_outbox_without_a_duplicate(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    people = 2000
    config = setup(project, write_config, smtp, people, ", rate_limit: 500")
    new_digest(config, store)
    command = worker_command("--once")
    workers = [
        subprocess.Popen(
            command, cwd=project, env=environment(store), stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    counts = smtp.counts()
    assert len(counts) == people and set(counts.values()) == {1}
    assert states(store) == {"sent": people}
    assert len(claimers(store)) == 2  # both took part
    sent = sorted(int(out.split("worker: sent ")[1].split(",")[0]) for out in outputs)
    assert sum(sent) == people and sent[0] > 0


def test_a_killed_worker_loses_nothing_and_resends_at_most_its_connections(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    """SIGKILL one of two workers mid-run: the other sends what it had in flight and had
    claimed; only its messages in flight (at most one per connection) may arrive twice."""
    people = 800
    config = setup(project, write_config, smtp, people, ", rate_limit: 150")
    new_digest(config, store)
    env = environment(store)
    victim = subprocess.Popen(
        worker_command("--concurrency", "2"),
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    survivor = subprocess.Popen(
        worker_command("--once", "--concurrency", "3"),
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: len(claimers(store)) == 2 and len(smtp.received) >= people // 4)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    _, errors = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, errors
    assert "is gone" in errors  # the survivor took the dead worker's rows over
    counts = smtp.counts()
    assert len(counts) == people
    assert sum(n - 1 for n in counts.values()) <= 2
    assert states(store) == {"sent": people}


def test_sigterm_lets_the_worker_finish_in_flight_and_leaves_nothing_sending(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    people = 600
    config = setup(project, write_config, smtp, people, ", rate_limit: 100")
    new_digest(config, store)
    worker = subprocess.Popen(
        worker_command(),
        cwd=project,
        env=environment(store),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: len(smtp.received) >= 20)
    worker.send_signal(signal.SIGTERM)
    output, errors = worker.communicate(timeout=30)
    assert worker.returncode == 0, errors
    received = len(smtp.received)
    assert received < people
    assert states(store) == {"sent": received, "pending": people - received}
    assert f"weekly 2026-11-23T05:00:00+00:00: sent {received}, failed 0" in output
    assert output.strip().endswith(f"worker: sent {received}, failed 0, deferred 0, skipped 0")


def test_worker_once_exits_0_when_the_outbox_is_empty(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    setup(project, write_config, smtp, 1)
    result = subprocess.run(
        worker_command("--once"),
        cwd=project,
        env=environment(store),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "worker: sent 0, failed 0, deferred 0, skipped 0"


def test_a_worker_that_cannot_reach_the_server_puts_its_claims_back(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    config = setup(project, write_config, smtp, 30)
    new_digest(config, store)
    result = subprocess.run(
        worker_command("--once"),
        cwd=project,
        env={**environment(store), "SYNDICATE_SMTP__PORT": "9"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("error: SMTP server 127.0.0.1:9")
    assert states(store) == {"pending": 30}


def test_a_subject_that_fails_on_this_digest_fails_its_list_and_the_others_go_out(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    """A subject template that `syndicate check` passes (it tries one sample release) and
    that fails on the real digest of two: that list's deliveries are recorded failed with
    the reason, and the other list, claimed after it, still goes out."""
    lists = project / "config" / "lists"
    lists.mkdir()
    (lists / "people.yaml").write_text("subscribers: [a@example.org, b@example.org]\n")
    config = write_config(
        BASE_CONFIG
        + textwrap.dedent(f"""\
        smtp: {{host: 127.0.0.1, port: {smtp.port}, connections: 2}}
        mail: {{from: "Press <press@press.example.org>", secret: test-secret}}
        lists:
          broken:
            title: Broken
            schedule: "0 8 * * mon"
            subscribers: lists/people.yaml
            subject: "{{{{ 1 // (2 - releases|length) }}}} new"
          weekly:
            title: Weekly digest
            schedule: "0 8 * * mon"
            subscribers: lists/people.yaml
        """)
    )
    assert check_templates(config) == []
    for name in ("a", "b"):
        write_release(project / "content", f"{name}.md", f"title: {name}\npublished: 2026-11-20")
    ingest(config, store, MONDAY)
    made = [create(config, store, slug, MONDAY, MONDAY).digest for slug in ("broken", "weekly")]
    assert all(made)
    tally = asyncio.run(Worker(config, store, clock=clock).run(until_empty=True))
    assert str(tally) == "sent 2, failed 2, deferred 0, skipped 0"
    assert sorted(m.recipients[0] for m in smtp.received) == ["a@example.org", "b@example.org"]
    with store.connect() as conn:
        replies = conn.execute(
            sa.select(deliveries.c.reply).where(deliveries.c.state == "failed")
        ).scalars()
        assert set(replies) == {
            "not sent: lists.broken.subject: integer division or modulo by zero"
        }
