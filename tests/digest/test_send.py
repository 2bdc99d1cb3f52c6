"""Delivering digests through a real SMTP server on 127.0.0.1: one copy per recipient,
failures recorded with the server's reply, resumable after a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from syndicate.config import Config
from syndicate.digest.outbox import create
from syndicate.digest.send import deliver, signing_secret
from syndicate.ingest import ingest
from syndicate.store import Store
from syndicate.store import digests as store_digests
from syndicate.store.digests import Digest
from syndicate.tokens import verify
from tests.conftest import BASE_CONFIG, WriteConfig, write_release
from tests.smtpserver import SmtpServer

MONDAY = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)


def clock() -> datetime:
    return MONDAY + timedelta(minutes=1)


def setup(
    project: Path, write_config: WriteConfig, server: SmtpServer, people: int, extra: str = ""
) -> Config:
    lists = project / "config" / "lists"
    lists.mkdir(exist_ok=True)
    addresses = "".join(f"  - reader{n:04d}@example.org\n" for n in range(people))
    (lists / "weekly.yaml").write_text(f"subscribers:\n{addresses}", encoding="utf-8")
    config = write_config(
        BASE_CONFIG
        + textwrap.dedent(f"""\
        smtp: {{host: 127.0.0.1, port: {server.port}, connections: 4{extra}}}
        mail: {{from: "Press <press@press.example.org>", secret: test-secret}}
        lists:
          weekly:
            title: Weekly digest
            schedule: "0 8 * * mon"
            timezone: Europe/Istanbul
            subscribers: lists/weekly.yaml
        """)
    )
    write_release(project / "content", "a.md", "title: Trafficking hotline\npublished: 2026-11-20")
    return config


def new_digest(config: Config, store: Store) -> Digest:
    ingest(config, store, MONDAY)
    digest = create(config, store, "weekly", MONDAY, MONDAY).digest
    assert digest is not None
    return digest


def test_every_recipient_gets_exactly_one_copy(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    config = setup(project, write_config, smtp, 40)
    digest = new_digest(config, store)
    report = asyncio.run(deliver(config, store, digest, clock=clock))
    assert report.summary() == "sent 40, failed 0, pending 0" and report.settled
    assert set(smtp.counts().values()) == {1} and len(smtp.counts()) == 40
    again = asyncio.run(deliver(config, store, digest, clock=clock))
    assert again.summary() == "sent 40, failed 0, pending 0"
    assert len(smtp.received) == 40


def test_each_copy_is_personal_with_a_working_unsubscribe_link(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    config = setup(project, write_config, smtp, 2)
    asyncio.run(deliver(config, store, new_digest(config, store), clock=clock))
    secret = signing_secret(config, store)
    for address in ("reader0000@example.org", "reader0001@example.org"):
        [raw] = smtp.messages_for(address)
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        assert message["To"] == address
        link = message["List-Unsubscribe"].split(">")[0].lstrip("<")
        token = link.rsplit("/", 1)[1]
        claims = verify(token, [secret], "unsubscribe", clock())
        assert (claims.address, claims.list_slug) == (address, "weekly")
        text = message.get_body(("plain",))
        assert text is not None and "Trafficking hotline" in text.get_content()


def test_a_rejected_recipient_is_failed_with_the_servers_reply(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    config = setup(project, write_config, smtp, 3)
    smtp.reject("reader0001@example.org")
    digest = new_digest(config, store)
    report = asyncio.run(deliver(config, store, digest, clock=clock))
    assert report.summary() == "sent 2, failed 1, pending 0" and not report.settled
    with store.connect() as conn:
        rows = {d.address: d for d in store_digests.claim(conn, digest.id, 10, clock())}
    assert rows == {}  # nothing pending
    assert "reader0001@example.org" not in smtp.counts()


def test_temporary_failures_are_deferred_then_sent_on_the_next_run(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    config = setup(project, write_config, smtp, 3, ", max_attempts: 1")
    smtp.refuse("RCPT", "451 4.3.0 Try later", addresses=["reader0002@example.org"])
    digest = new_digest(config, store)
    first = asyncio.run(deliver(config, store, digest, clock=clock))
    assert first.summary() == "sent 2, failed 0, pending 1"
    smtp.clear_faults()
    second = asyncio.run(deliver(config, store, digest, clock=clock))
    assert second.summary() == "sent 3, failed 0, pending 0"
    assert set(smtp.counts().values()) == {1}


def test_two_senders_of_one_digest_share_it_and_send_one_copy_each(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    """Both work on it, and each returns only when the other has finished its share."""
    config = setup(project, write_config, smtp, 60, ", rate_limit: 300")
    digest = new_digest(config, store)
    outcomes: list[str] = []

    def sender() -> None:
        outcomes.append(asyncio.run(deliver(config, store, digest, clock=clock)).summary())

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == ["sent 60, failed 0, pending 0"] * 2
    assert set(smtp.counts().values()) == {1} and len(smtp.counts()) == 60


def test_a_release_retracted_before_sending_is_left_out(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    config = setup(project, write_config, smtp, 1)
    write_release(project / "content", "b.md", "title: Second release\npublished: 2026-11-21")
    digest = new_digest(config, store)
    (project / "content" / "b.md").unlink()
    ingest(config, store, MONDAY)
    asyncio.run(deliver(config, store, digest, clock=clock))
    [raw] = smtp.messages_for("reader0000@example.org")
    assert b"Second release" not in raw and b"Trafficking hotline" in raw


def test_a_crashed_sender_is_resumed_without_losing_anyone(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    """SIGKILL the CLI mid-send, run it again: everyone gets the digest; only messages in
    flight at the kill (at most one per connection) may arrive twice."""
    people = 400
    config = setup(project, write_config, smtp, people, ", rate_limit: 200")
    new_digest(config, store)
    command = [
        sys.executable,
        "-m",
        "syndicate",
        "--now",
        MONDAY.isoformat(),
        "digest",
        "send",
        "weekly",
    ]
    # The sender uses the same database as the test, SQLite or PostgreSQL.
    env = {**os.environ, "SYNDICATE_DATABASE__URL": store.engine.url.render_as_string(False)}
    first = subprocess.Popen(
        command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while len(smtp.received) < people // 4 and time.monotonic() < deadline:
        if first.poll() is not None:
            assert first.stderr is not None
            out = first.stdout.read().decode() if first.stdout else ""
            pytest.fail(f"the sender ended early: {out} {first.stderr.read().decode()}")
        time.sleep(0.01)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    assert first.stdout is not None and first.stderr is not None
    first.stdout.close()
    first.stderr.close()
    assert 0 < len(smtp.received) < people
    second = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip().endswith(f"sent {people}, failed 0, pending 0")
    counts = smtp.counts()
    assert len(counts) == people
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= config.smtp.connections
