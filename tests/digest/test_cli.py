"""The digest and outbox commands, run as an admin runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.conftest import BASE_CONFIG, write_release
from tests.smtpserver import SmtpServer

NOW = "2026-11-26T12:00:00+03:00"


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as smtp:
        yield smtp


@pytest.fixture
def site(project: Path, server: SmtpServer) -> Path:
    lists = project / "config" / "lists"
    lists.mkdir()
    (lists / "weekly.yaml").write_text(
        textwrap.dedent("""\
        subscribers:
          - desk@example.com
          - email: reporter@example.org
            name: "Reporter, Ankara"
            topics: [opinion]
        """)
    )
    (project / "config" / "syndicate.yaml").write_text(
        BASE_CONFIG
        + textwrap.dedent(f"""\
        smtp: {{host: 127.0.0.1, port: {server.port}}}
        lists:
          weekly:
            title: Weekly digest
            schedule: "0 8 * * mon"
            subscribers: lists/weekly.yaml
        """)
    )
    content = project / "content"
    write_release(content, "a.md", "title: Trafficking hotline opens\npublished: 2026-11-18")
    write_release(content, "b.md", "title: An op-ed\npublished: 2026-11-20\nkind: op-ed")
    write_release(content, "old.md", "title: Last year\npublished: 2025-11-25")
    assert syndicate(project, "ingest").returncode == 0
    return project


def syndicate(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syndicate", "--now", NOW, *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_preview_shows_the_next_digest_and_writes_files(site: Path) -> None:
    result = syndicate(
        site,
        "digest",
        "preview",
        "weekly",
        "--since",
        "2026-11-16T08:00+03:00",
        "--subscriber",
        "reporter@example.org",
        "--eml",
        "copy.eml",
        "--html",
        "copy.html",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "weekly: releases public after 2026-11-16 08:00 up to 2026-11-26 12:00: 2 new, 0 corrected"
    )
    message = message_from_bytes((site / "copy.eml").read_bytes(), policy=policy.default)
    assert message["To"] == '"Reporter, Ankara" <reporter@example.org>'
    html = (site / "copy.html").read_text()
    assert "An op-ed" in html and "Trafficking hotline" not in html
    assert syndicate(site, "digest", "status").stderr.strip() == "no digests yet"


def test_send_delivers_once_and_reports(site: Path, server: SmtpServer) -> None:
    first = syndicate(site, "digest", "send", "weekly")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "weekly 2026-11-23T05:00:00+00:00: sent 2, failed 0, pending 0"
    again = syndicate(site, "digest", "send", "weekly")
    assert again.stdout.strip() == first.stdout.strip()
    assert sorted(server.counts().items()) == [("desk@example.com", 1), ("reporter@example.org", 1)]
    status = json.loads(syndicate(site, "digest", "status", "--json").stdout)
    assert status[0]["deliveries"]["sent"] == 2 and status[0]["list"] == "weekly"


def test_a_failed_delivery_exits_1_and_retry_failed_sends_it(
    site: Path, server: SmtpServer
) -> None:
    # A policy refusal, not a bad address: no hard bounce, so the address is not suppressed.
    server.reject("desk@example.com", "554 5.7.1 Client host blocked")
    result = syndicate(site, "digest", "send", "weekly")
    assert result.returncode == 1
    assert result.stdout.strip().endswith("sent 1, failed 1, pending 0")
    server.clear_faults()
    retry = syndicate(site, "outbox", "retry", "--failed")
    assert retry.returncode == 0, retry.stderr
    assert retry.stdout.strip().endswith("sent 2, failed 0, pending 0")
    assert server.counts()["desk@example.com"] == 1


def test_dry_run_sends_and_records_nothing(site: Path, server: SmtpServer) -> None:
    result = syndicate(site, "digest", "send", "weekly", "--dry-run")
    assert result.returncode == 0 and "2 new" in result.stdout
    assert server.received == []
    assert syndicate(site, "digest", "status").stderr.strip() == "no digests yet"


def test_a_catch_up_digest_starts_where_since_says(site: Path, server: SmtpServer) -> None:
    result = syndicate(site, "digest", "send", "weekly", "--since", "2025-01-01")
    assert result.returncode == 0, result.stderr
    [raw] = server.messages_for("desk@example.com")
    assert b"Last year" in raw


def test_an_unknown_list_is_a_usage_error(site: Path) -> None:
    result = syndicate(site, "digest", "send", "monthly")
    assert result.returncode == 2
    assert "unknown list 'monthly'; known: weekly" in result.stderr


def test_an_unreachable_smtp_server_is_one_line_and_leaves_everyone_pending(
    site: Path, server: SmtpServer
) -> None:
    config = site / "config" / "syndicate.yaml"
    config.write_text(config.read_text().replace(f"port: {server.port}", "port: 9"))
    result = syndicate(site, "digest", "send", "weekly")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
    status = json.loads(syndicate(site, "digest", "status", "--json").stdout)
    assert status[0]["deliveries"]["pending"] == 2
