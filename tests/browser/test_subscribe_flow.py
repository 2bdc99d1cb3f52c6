"""A reader's whole round trip in a real browser, with JavaScript off: from a topic page to the
subscribe form, the emailed confirm link, a digest, and its unsubscribe link.

Everything is real and on 127.0.0.1: `syndicate ingest`, `build` and `serve` as an admin runs
them (subprocesses, a SQLite file), an SMTP server that keeps the mail, and Debian's Chromium
driven by Playwright. The locators are accessible ones (role and name, label), so the test
also checks that headings, links, buttons and form labels say what a screen reader announces.
Without Chromium or Playwright the test fails, naming the package to install: it never skips.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from syndicate import urls
from syndicate.config import Config
from syndicate.digest.outbox import create
from syndicate.digest.send import deliver
from syndicate.store import Store
from syndicate.subscriptions import listing
from tests.conftest import BASE_CONFIG, WriteConfig, outside_environ, run_syndicate, write_release
from tests.smtpserver import SmtpServer
from tests.webserver import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
READER = "reader@example.org"
SECRET = "browser-test-secret"
START_TIMEOUT = 30.0


@dataclass
class Served:
    """`syndicate serve` in a subprocess, on the site its config describes."""

    base_url: str
    config: Config
    smtp: SmtpServer

    def mails(self, address: str) -> list[EmailMessage]:
        return self.smtp.emails_for(address)

    def link(self, mail: EmailMessage, path: str) -> str:
        """The absolute URL of the `/{path}/…` link in the text part of `mail`."""
        text = mail.get_body(("plain",))
        assert text is not None
        found = re.search(re.escape(f"{self.base_url}/{path}/") + r"[^\s<>\"]+", text.get_content())
        assert found is not None, f"no /{path}/ link in:\n{text.get_content()}"
        return found.group(0)

    def status(self, address: str, slug: str = "weekly") -> str:
        with Store.open(self.config.database.url) as store, store.connect() as conn:
            found, _ = listing(conn, self.config, slug)
        return {e.subscriber.address: e.status for e in found}[address]


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A command as an admin runs it; it must succeed."""
    result = run_syndicate(project, *args)
    assert result.returncode == 0, f"syndicate {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


def _wait_until_healthy(process: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"syndicate serve exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    pytest.fail(f"syndicate serve did not answer {url}/healthz within {START_TIMEOUT:.0f}s")


@pytest.fixture
def served(project: Path, write_config: WriteConfig) -> Iterator[Served]:
    """A built site with two public releases, served by `syndicate serve` on a free port,
    with its mail going to a test SMTP server."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    (project / "config" / "lists").mkdir()
    (project / "config" / "lists" / "weekly.yaml").write_text("subscribers: []\n")
    with SmtpServer() as smtp:
        config = write_config(
            BASE_CONFIG.replace("https://press.example.org/news", base_url)
            + textwrap.dedent(f"""\
            mail: {{secret: {SECRET}, from: "Press <press@example.org>"}}
            smtp: {{host: 127.0.0.1, port: {smtp.port}}}
            lists:
              weekly:
                title: Weekly news
                schedule: "0 8 * * mon"
                topics: [trafficking, turkiye]
                subscribers: lists/weekly.yaml
            """)
        )
        assert config.site.base_url == base_url
        assert config.database.url.startswith("sqlite:///")
        published = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="seconds")
        write_release(
            project / "content",
            "traffickers.md",
            f"title: Traffickers caught at the border\npublished: {published}",
        )
        write_release(
            project / "content",
            "turkiye.md",
            f"title: Türkiye welcomes the report\npublished: {published}",
        )
        run(project, "ingest")
        run(project, "build")
        server = subprocess.Popen(
            [sys.executable, "-m", "syndicate", "serve", "--port", str(port)],
            cwd=project,
            env=outside_environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            _wait_until_healthy(server, base_url)
            yield Served(base_url, config, smtp)
        finally:
            server.terminate()
            try:
                log, _ = server.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                log, _ = server.communicate()
            print(f"syndicate serve:\n{log}")  # shown when the test fails


@pytest.fixture
def page() -> Iterator[Page]:
    """A fresh page of headless Chromium, with JavaScript disabled."""
    if importlib.util.find_spec("playwright") is None:
        pytest.fail(
            "the browser tests need Playwright for Python: pip install playwright "
            "(it is in the test extra: pip install -e '.[test]')",
            pytrace=False,
        )
    if not CHROMIUM.is_file():
        pytest.fail(
            f"the browser tests need Chromium at {CHROMIUM}: apt-get install chromium "
            "(scripts/system-packages installs it)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(java_script_enabled=False)
            context.set_default_timeout(15_000)
            yield context.new_page()
        finally:
            browser.close()


def send_digest(config: Config) -> None:
    """Create the weekly digest of the last day and send it, as the scheduler would. In a
    thread: Playwright's sync API keeps an event loop running in this one."""
    now = datetime.now(UTC)
    with Store.open(config.database.url) as store:
        created = create(config, store, "weekly", now, now, since=now - timedelta(days=1))
        assert created.digest is not None
        sending = deliver(config, store, created.digest, clock=lambda: datetime.now(UTC))
        with ThreadPoolExecutor(1) as pool:
            report = pool.submit(asyncio.run, sending).result()
    assert report.settled, report.summary()


def test_a_reader_subscribes_confirms_and_unsubscribes_without_javascript(
    page: Page, served: Served
) -> None:
    from playwright.sync_api import expect

    page.goto(urls.absolute(served.base_url, urls.topic_page("trafficking")))
    page.get_by_role("link", name="Get these releases by email").click()
    expect(page.get_by_role("heading", name="Subscribe by email", exact=True)).to_be_visible()
    expect(page.get_by_label("Türkiye", exact=True)).not_to_be_checked()
    page.get_by_label("Human trafficking", exact=True).check()  # ticked already by the link
    page.get_by_label("Email address", exact=True).fill(READER)
    page.get_by_role("button", name="Subscribe", exact=True).click()
    expect(page.get_by_role("heading", name="Check your inbox", exact=True)).to_be_visible()
    assert served.status(READER) == "pending"

    [confirmation] = served.mails(READER)
    page.goto(served.link(confirmation, "confirm"))
    expect(page.get_by_role("heading", name="Subscription confirmed", exact=True)).to_be_visible()
    assert served.status(READER) == "active"

    send_digest(served.config)
    [digest] = served.mails(READER)[1:]
    text = digest.get_body(("plain",))
    assert text is not None
    assert "Traffickers caught at the border" in text.get_content()
    assert "Türkiye welcomes the report" not in text.get_content()  # not a chosen topic

    page.goto(served.link(digest, "unsubscribe"))
    page.get_by_role("button", name="Unsubscribe", exact=True).click()
    expect(page.get_by_role("heading", name="Unsubscribed", exact=True)).to_be_visible()
    assert served.status(READER) == "unsubscribed"
