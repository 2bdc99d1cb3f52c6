"""`syndicate run`, the service, as a process: serves the site, catches up on start, sends
what is due exactly once across restarts, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.conftest import BASE_CONFIG, write_release
from tests.smtpserver import SmtpServer
from tests.webserver import free_port


def start(project: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "syndicate", "run", "--port", str(port)],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def last_midnight() -> datetime:
    """The latest 00:00 UTC, the fire time of the daily test list; close to the next one,
    wait for it, so the period cannot change while a test runs."""
    now = datetime.now(UTC)
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if tomorrow - now < timedelta(minutes=2):
        time.sleep((tomorrow - now).total_seconds() + 1)
        now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


DAILY = """\
  daily:
    title: Daily
    schedule: "0 0 * * *"
    timezone: UTC
    subscribers: lists/all.yaml
    misfire_grace: 1d
"""


def wait_for(condition: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    return output


def test_the_service_serves_catches_up_and_never_sends_twice(
    project: Path, smtp: SmtpServer
) -> None:
    lists = project / "config" / "lists"
    lists.mkdir()
    (lists / "all.yaml").write_text("subscribers: [desk@example.com, reporter@example.org]\n")
    (project / "config" / "syndicate.yaml").write_text(
        BASE_CONFIG
        + textwrap.dedent(f"""\
        smtp: {{host: 127.0.0.1, port: {smtp.port}}}
        lists:
        """)
        + DAILY
    )
    published = (last_midnight() - timedelta(hours=1)).isoformat()
    write_release(project / "content", "a.md", f"title: Hotline opens\npublished: {published}")
    port = free_port()
    service = start(project, port)
    try:
        wait_for(lambda: len(smtp.received) >= 2)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert health.text == "ok"
        feed = httpx.get(f"http://127.0.0.1:{port}/feeds/all.atom", timeout=5)
        assert b"Hotline opens" in feed.content
    finally:
        output = stop(service)
    assert "daily" in output and "sent 2, failed 0, pending 0" in output
    again = start(project, port)
    try:
        wait_for(
            lambda: (
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
                if _listening(port)
                else False
            )
        )
        time.sleep(1.5)  # room for a wrong resend to happen
    finally:
        stop(again)
    assert sorted(smtp.counts().items()) == [("desk@example.com", 1), ("reporter@example.org", 1)]


def _listening(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    except httpx.HTTPError:
        return False
    return True


def test_a_broken_config_stops_the_service_with_one_line(project: Path) -> None:
    config = project / "config" / "syndicate.yaml"
    config.write_text(config.read_text() + "lists: {w: {title: W, schedule: never}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", "run"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("config/syndicate.yaml:")
    assert "lists.w.schedule" in result.stderr


def daily_digest_of_300(project: Path, smtp: SmtpServer, *, connections: int) -> int:
    """A daily list of 300 readers, sent through `smtp` at 100 messages/s, and a release
    published before last midnight: a digest due at once. Returns the number of readers."""
    people = 300
    lists = project / "config" / "lists"
    lists.mkdir()
    addresses = "".join(f"  - reader{n:04d}@example.org\n" for n in range(people))
    (lists / "all.yaml").write_text(f"subscribers:\n{addresses}")
    smtp_config = f"host: 127.0.0.1, port: {smtp.port}, connections: {connections}"
    (project / "config" / "syndicate.yaml").write_text(
        BASE_CONFIG + f"smtp: {{{smtp_config}, rate_limit: 100}}\nlists:\n" + DAILY
    )
    published = (last_midnight() - timedelta(hours=1)).isoformat()
    write_release(project / "content", "a.md", f"title: Hotline opens\npublished: {published}")
    return people


def test_sigterm_mid_digest_finishes_in_flight_and_leaves_the_rest_pending(
    project: Path, smtp: SmtpServer
) -> None:
    people = daily_digest_of_300(project, smtp, connections=4)
    port = free_port()
    service = start(project, port)
    wait_for(lambda: len(smtp.received) >= 20)
    output = stop(service)
    stopped_at = len(smtp.received)
    assert stopped_at < people, f"the digest finished before SIGTERM: {output}"
    assert "sending" not in output.split("daily")[-1]
    status = subprocess.run(
        [sys.executable, "-m", "syndicate", "digest", "status", "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    counts = json.loads(status.stdout)[0]["deliveries"]
    assert counts["sending"] == 0
    assert counts["sent"] == stopped_at and counts["pending"] == people - stopped_at
    again = start(project, port)
    try:
        wait_for(lambda: len(smtp.received) >= people, seconds=60)
    finally:
        stop(again)
    assert set(smtp.counts().values()) == {1} and len(smtp.counts()) == people


def test_two_services_on_one_database_ingest_once_and_send_each_copy_once(
    project: Path, smtp: SmtpServer
) -> None:
    people = daily_digest_of_300(project, smtp, connections=2)
    ports = [free_port(), free_port()]
    services = [start(project, ports[0])]
    try:
        wait_for(lambda: _listening(ports[0]))  # first: two first migrations at once race
        services.append(start(project, ports[1]))
        wait_for(lambda: len(smtp.received) >= people, seconds=60)
        wait_for(lambda: _listening(ports[1]))
    finally:
        outputs = [stop(service) for service in services]
    assert len(smtp.counts()) == people and set(smtp.counts().values()) == {1}
    assert sum(output.count("ingest: ") for output in outputs) == 1, outputs
