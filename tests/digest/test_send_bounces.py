"""A 5xx to RCPT during a digest send is a hard bounce, recorded with the delivery's result;
a real SMTP server on 127.0.0.1 gives the replies."""

from __future__ import annotations

import asyncio
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from syndicate.config import Config
from syndicate.digest.send import deliver
from syndicate.store import Store
from syndicate.store import bounces as store_bounces
from syndicate.store import suppressions as store_suppressions
from syndicate.store.schema import bounces, deliveries
from syndicate.store.suppressions import EVERY_LIST, Reason
from tests.conftest import BASE_CONFIG, WriteConfig, write_release
from tests.digest.test_send import new_digest
from tests.smtpserver import Command, SmtpServer

MONDAY = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
GONE = "reader0001@example.org"
USER_UNKNOWN = f"550 5.1.1 <{GONE}>: Recipient address rejected: User unknown"


def clock() -> datetime:
    return MONDAY + timedelta(minutes=1)


def configure(project: Path, write_config: WriteConfig, server: SmtpServer, limit: int) -> Config:
    lists = project / "config" / "lists"
    lists.mkdir(exist_ok=True)
    addresses = "".join(f"  - reader{n:04d}@example.org\n" for n in range(3))
    (lists / "weekly.yaml").write_text(f"subscribers:\n{addresses}", encoding="utf-8")
    (lists / "monthly.yaml").write_text(f"subscribers:\n  - {GONE}\n", encoding="utf-8")
    config = write_config(
        BASE_CONFIG
        + textwrap.dedent(f"""\
        smtp: {{host: 127.0.0.1, port: {server.port}, connections: 2}}
        mail:
          from: "Press <press@press.example.org>"
          secret: test-secret
          bounce_limit: {limit}
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
    write_release(project / "content", "a.md", "title: Trafficking hotline\npublished: 2026-11-20")
    return config


def replies(store: Store) -> dict[str, tuple[str, str | None]]:
    with store.connect() as conn:
        rows = conn.execute(sa.select(deliveries.c.address, deliveries.c.state, deliveries.c.reply))
        return {row.address: (row.state, row.reply) for row in rows}


def recorded(store: Store) -> list[tuple[str, str, str]]:
    with store.connect() as conn:
        rows = conn.execute(sa.select(bounces.c.address, bounces.c.status, bounces.c.source))
        return [(row.address, row.status, row.source) for row in rows]


def test_a_user_unknown_at_rcpt_is_a_hard_bounce_that_suppresses_from_every_list(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    config = configure(project, write_config, smtp, limit=1)
    smtp.reject(GONE, USER_UNKNOWN)
    digest = new_digest(config, store)
    report = asyncio.run(deliver(config, store, digest, clock=clock))
    assert report.summary() == "sent 2, failed 1, pending 0"
    assert replies(store)[GONE] == ("failed", USER_UNKNOWN)
    with store.connect() as conn:
        [(delivery_id,)] = conn.execute(
            sa.select(deliveries.c.id).where(deliveries.c.address == GONE)
        ).all()
        assert recorded(store) == [(GONE, "5.1.1", f"RCPT reply to delivery {delivery_id}")]
        for slug in ("weekly", "monthly", "a-list-made-later"):
            found = store_suppressions.of(conn, slug, [GONE])[GONE]
            assert (found.list_slug, found.reason) == (EVERY_LIST, Reason.BOUNCED.value)
        assert store_suppressions.of(conn, "weekly", ["reader0000@example.org"]) == {}


def test_a_retried_delivery_refused_again_is_counted_once(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    config = configure(project, write_config, smtp, limit=2)
    smtp.reject(GONE, USER_UNKNOWN)
    digest = new_digest(config, store)
    asyncio.run(deliver(config, store, digest, clock=clock))
    with store.begin() as conn:  # what `syndicate outbox retry --failed` does
        conn.execute(
            deliveries.update().where(deliveries.c.state == "failed").values(state="pending")
        )
    asyncio.run(deliver(config, store, digest, clock=clock))
    assert smtp.commands()["RCPT"] == 4  # three, then the refused one again
    with store.connect() as conn:
        assert store_bounces.count(conn, GONE) == 1
        assert store_suppressions.among(conn, "weekly", [GONE]) == set()


def test_a_policy_refusal_at_rcpt_fails_the_delivery_and_records_no_bounce(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    config = configure(project, write_config, smtp, limit=1)
    smtp.reject(GONE, "550 5.7.1 Relay access denied")
    digest = new_digest(config, store)
    report = asyncio.run(deliver(config, store, digest, clock=clock))
    assert report.summary() == "sent 2, failed 1, pending 0"
    assert replies(store)[GONE] == ("failed", "550 5.7.1 Relay access denied")
    assert recorded(store) == []
    with store.connect() as conn:
        assert store_suppressions.among(conn, "weekly", [GONE]) == set()


@pytest.mark.parametrize(
    ("command", "addresses", "summary"),
    [
        ("MAIL", None, "sent 0, failed 3, pending 0"),
        ("DATA", [GONE], "sent 2, failed 1, pending 0"),
    ],
)
def test_a_5xx_at_mail_or_data_is_not_the_recipients_fault(
    project: Path,
    write_config: WriteConfig,
    store: Store,
    smtp: SmtpServer,
    command: Command,
    addresses: list[str] | None,
    summary: str,
) -> None:
    config = configure(project, write_config, smtp, limit=1)
    smtp.refuse(command, "550 5.1.1 Mailbox unavailable", addresses=addresses)
    report = asyncio.run(deliver(config, store, new_digest(config, store), clock=clock))
    assert report.summary() == summary
    assert replies(store)[GONE] == ("failed", "550 5.1.1 Mailbox unavailable")
    assert recorded(store) == []
