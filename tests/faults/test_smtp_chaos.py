"""SMTP chaos: `syndicate digest send` to 1,000 recipients through a real SMTP server on
127.0.0.1 that misbehaves at random, seeded (the same recipients' attempts meet the same
faults on every run, however the connections interleave):

- 421 or 451 to about 10% of transactions: 421 at RCPT (closing the connection), 451 at RCPT,
  451 after the message data;
- the connection dropped in the middle of DATA, 2%;
- no answer to the end of DATA for longer than smtp.timeout, 1%;
- "550 5.1.1 user unknown" at RCPT for 20 addresses, always.

Required: every deliverable recipient gets exactly one message. The only duplicates SMTP
cannot avoid come from a connection lost after the server accepted the data and before its
reply arrived; a drop in the middle of DATA and a stall before the reply both leave the
server without the message (it discards a message whose client went away), so here there
are none. The 550s are recorded `failed` with the server's reply, and each is a hard bounce:
with mail.bounce_limit 1 the address is suppressed from every list. The run ends with the
summary line.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from syndicate.config import Config
from syndicate.ingest import ingest
from syndicate.store import Store
from syndicate.store.schema import deliveries
from syndicate.subscriptions import listing
from tests.conftest import BASE_CONFIG, WriteConfig, run_syndicate, write_release
from tests.digest.test_send import MONDAY
from tests.figures import report
from tests.smtpserver import SmtpServer

pytestmark = pytest.mark.faults

PEOPLE = 1000
GONE = [f"reader{n:04d}@example.org" for n in range(25, PEOPLE, PEOPLE // 20)]
# Any seed passes. With this one no recipient meets more than two faults in a row, nor a
# stall among two, so no message waits longer than 1 s and then 2 s for its retries
# (BACKOFF_BASE, with jitter): the run takes a few seconds.
SEED = 189
TIMEOUT = 1.0  # smtp.timeout: a stall costs its connection this long
# A message waiting for its retry (0.5-1 s, then 1-2 s) idles its connection meanwhile; with
# many connections the others go on, and the run takes little longer than its slowest retry.
CONNECTIONS = 64


def user_unknown(address: str) -> str:
    return f"550 5.1.1 <{address}>: user unknown"


def misbehave(server: SmtpServer) -> None:
    for address in GONE:  # first: these are refused whatever else happens
        server.reject(address, user_unknown(address))
    server.refuse("RCPT", "421 4.7.0 smtp.test Error: too many errors", probability=0.04)
    server.refuse("RCPT", "451 4.3.0 Temporary lookup failure", probability=0.03)
    server.refuse("DATA", "451 4.3.0 Error: queue file write error", probability=0.03)
    server.drop_during_data(times=None, probability=0.02)
    server.stall("DATA", 10 * TIMEOUT, times=None, probability=0.01)


def configure(project: Path, write_config: WriteConfig, server: SmtpServer) -> Config:
    lists = project / "config" / "lists"
    lists.mkdir(exist_ok=True)
    everyone = "".join(f"  - reader{n:04d}@example.org\n" for n in range(PEOPLE))
    (lists / "weekly.yaml").write_text(f"subscribers:\n{everyone}", encoding="utf-8")
    some = "".join(f"  - {a}\n" for a in [*GONE, "reader0000@example.org"])
    (lists / "monthly.yaml").write_text(f"subscribers:\n{some}", encoding="utf-8")
    write_release(project / "content", "a.md", "title: Trafficking hotline\npublished: 2026-11-20")
    return write_config(
        BASE_CONFIG
        + textwrap.dedent(f"""\
        smtp:
          host: 127.0.0.1
          port: {server.port}
          connections: {CONNECTIONS}
          timeout: {TIMEOUT}
          max_attempts: 10
          retry_for: 600
        mail:
          from: "Press <press@press.example.org>"
          secret: test-secret
          bounce_limit: 1
        lists:
          weekly:
            title: Weekly digest
            schedule: "0 8 * * mon"
            timezone: Europe/Istanbul
            subscribers: lists/weekly.yaml
          monthly:
            title: Monthly digest
            schedule: "0 8 1 * *"
            subscribers: lists/monthly.yaml
        """)
    )


def test_every_deliverable_recipient_gets_one_copy_through_a_misbehaving_server(
    project: Path, write_config: WriteConfig
) -> None:
    with SmtpServer(seed=SEED) as server:
        config = configure(project, write_config, server)
        with Store.open(config.database.url) as store:
            ingest(config, store, MONDAY)
        misbehave(server)
        started = time.monotonic()
        result = run_syndicate(project, "--now", MONDAY.isoformat(), "digest", "send", "weekly")
        took = time.monotonic() - started
        counts, fired, commands = server.counts(), server.fired(), server.commands()

    # The summary: everything settled, the 550s failed; exit 1 because some failed.
    assert result.returncode == 1, result.stderr
    summary = f"weekly {MONDAY.isoformat()}: sent {PEOPLE - 20}, failed 20, pending 0"
    assert result.stdout.strip().splitlines()[-1:] == [summary], (result.stdout, result.stderr)

    # Every deliverable recipient exactly once; the refused ones never.
    deliverable = {f"reader{n:04d}@example.org" for n in range(PEOPLE)} - set(GONE)
    assert set(counts) == deliverable
    duplicates = sum(n - 1 for n in counts.values())
    unavoidable = fired["DATA drop-after"]  # accepted, then the reply lost: none configured
    assert duplicates == unavoidable == 0, {a: n for a, n in counts.items() if n > 1}

    # The faults did happen, at about the rates asked for.
    temporary = fired["RCPT 421"] + fired["RCPT 451"] + fired["DATA 451"]
    transactions = commands["MAIL"]
    assert 0.06 * transactions < temporary < 0.14 * transactions, fired
    assert fired["DATA drop"] > 0 and fired["DATA stall"] > 0, fired
    assert fired["RCPT 550"] == 20  # each refused once: a 5xx is never retried

    with Store.open(config.database.url) as store, store.connect() as conn:
        rows = conn.execute(
            sa.select(deliveries.c.address, deliveries.c.state, deliveries.c.reply)
        ).all()
        weekly, _ = listing(conn, config, "weekly")
        monthly, _ = listing(conn, config, "monthly")
        attempts = int(conn.execute(sa.select(sa.func.sum(deliveries.c.attempts))).scalar_one())
    states = {row.address: (row.state, row.reply) for row in rows}
    for address in GONE:  # failed, with the server's reply
        assert states[address] == ("failed", user_unknown(address))
    assert all(states[a][0] == "sent" for a in deliverable)
    # Suppressed as bounced, from this list and every other (`syndicate subscribers list`).
    status = {e.subscriber.address: e.status for e in weekly}
    assert {a for a, s in status.items() if s != "active"} == set(GONE)
    assert {status[a] for a in GONE} == {"bounced"}
    assert {e.subscriber.address: e.status for e in monthly} == {
        **dict.fromkeys(GONE, "bounced"),
        "reader0000@example.org": "active",
    }
    retries = attempts - PEOPLE
    assert retries == transactions - PEOPLE  # every attempt a transaction, none uncounted
    report(
        "smtp-chaos",
        f"{PEOPLE} recipients through 10% 421/451 ({temporary} fired), 2% drops mid-DATA "
        f"({fired['DATA drop']}), 1% stalls past the {TIMEOUT:g} s timeout "
        f"({fired['DATA stall']}), 20 550s: {len(deliverable)} delivered once, 20 failed "
        f"and suppressed from every list, {duplicates} duplicates, {retries} retries "
        f"({transactions} transactions); `digest send` took {took:.1f} s",
    )
