"""Unsubscribe links over real HTTP: a page on GET, at once on POST and on the RFC 8058
one-click POST; then no more mail, even while the address stays in the admins' file."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from syndicate.config import Config
from syndicate.digest.outbox import create
from syndicate.digest.send import deliver, signing_secret
from syndicate.ingest import ingest
from syndicate.maillinks import MailLinks
from syndicate.store import Store
from syndicate.store import digests as store_digests
from syndicate.store.schema import suppressions
from syndicate.tokens import sign
from syndicate.web import create_app
from tests.conftest import BASE_CONFIG, WriteConfig, write_release
from tests.smtpserver import SmtpServer
from tests.webserver import running

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
MONDAY = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def config(project: Path, write_config: WriteConfig) -> Config:
    (project / "config" / "lists").mkdir()
    (project / "config" / "lists" / "w.yaml").write_text(
        "subscribers: [desk@example.com, reporter@example.org]\n"
    )
    return write_config(
        BASE_CONFIG
        + textwrap.dedent("""\
        mail: {secret: current-secret, old_secrets: [old-secret]}
        lists:
          weekly:
            title: "<b>Weekly</b> & more"
            schedule: "0 8 * * mon"
            timezone: Europe/Istanbul
            subscribers: lists/w.yaml
        """)
    )


@pytest.fixture
def web(config: Config, store: Store, tmp_path: Path) -> Iterator[httpx.Client]:
    (tmp_path / "site").mkdir()
    links = MailLinks(lambda: config, store, lambda: NOW)
    app = create_app(tmp_path / "site", routes=links.routes())
    with running(app) as url, httpx.Client(base_url=url) as client:
        yield client


def token(
    address: str = "desk@example.com",
    secret: str = "current-secret",
    purpose: str = "unsubscribe",
    list_slug: str = "weekly",
) -> str:
    return sign(secret, purpose, address, list_slug, issued=NOW - timedelta(days=3), expires=None)


def suppressed(store: Store) -> list[tuple[str, str, str]]:
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(suppressions.c.address, suppressions.c.list_slug, suppressions.c.source)
        ).all()
    return [tuple(row) for row in rows]


def test_get_shows_a_button_and_unsubscribes_nobody(web: httpx.Client, store: Store) -> None:
    page = web.get(f"/unsubscribe/{token()}")
    assert page.status_code == 200
    assert "Stop sending “&lt;b&gt;Weekly&lt;/b&gt; &amp; more” to desk@example.com?" in page.text
    assert '<form method="post">' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert suppressed(store) == []


def test_one_click_post_unsubscribes_at_once_and_is_idempotent(
    web: httpx.Client, store: Store
) -> None:
    for _ in range(2):
        answer = web.post(
            f"/unsubscribe/{token()}", content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK
        )
        assert answer.status_code == 200
    assert suppressed(store) == [("desk@example.com", "weekly", "one-click")]


def test_the_page_button_unsubscribes_too(web: httpx.Client, store: Store) -> None:
    assert web.post(f"/unsubscribe/{token()}").status_code == 200
    assert suppressed(store) == [("desk@example.com", "weekly", "unsubscribe page")]


@pytest.mark.parametrize(
    "bad",
    [
        token()[:-2] + ("A" if token()[-2] != "A" else "B") + token()[-1],
        token(purpose="manage"),
        token(secret="someone-elses"),
        "not-a-token",
        "x" * 500,
    ],
)
def test_a_bad_token_changes_nothing(web: httpx.Client, store: Store, bad: str) -> None:
    assert web.get(f"/unsubscribe/{bad}").status_code == 400
    answer = web.post(
        f"/unsubscribe/{bad}", content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK
    )
    assert answer.status_code == 400 and "does not work" in answer.text
    assert suppressed(store) == []


def test_a_link_signed_with_a_rotated_secret_still_works(web: httpx.Client, store: Store) -> None:
    assert web.post(f"/unsubscribe/{token(secret='old-secret')}").status_code == 200
    assert len(suppressed(store)) == 1


def test_unsubscribed_addresses_get_nothing_even_while_listed(
    project: Path, config: Config, store: Store, web: httpx.Client
) -> None:
    secret = signing_secret(config, store)
    assert web.post(f"/unsubscribe/{token(secret=secret)}").status_code == 200
    write_release(project / "content", "a.md", "title: A\npublished: 2026-11-20")
    ingest(config, store, MONDAY)
    digest = create(config, store, "weekly", MONDAY, MONDAY).digest
    assert digest is not None
    with store.connect() as conn:
        [(_, counts)] = store_digests.status(conn)
    assert counts["pending"] == 1  # only reporter@: desk@ is suppressed, though still listed


def test_an_unsubscribe_after_the_digest_was_made_is_still_honoured(
    project: Path, config: Config, store: Store, web: httpx.Client, write_config: WriteConfig
) -> None:
    with SmtpServer() as smtp:
        text = (project / "config" / "syndicate.yaml").read_text()
        config = write_config(text + f"smtp: {{host: 127.0.0.1, port: {smtp.port}}}\n")
        write_release(project / "content", "a.md", "title: A\npublished: 2026-11-20")
        ingest(config, store, MONDAY)
        digest = create(config, store, "weekly", MONDAY, MONDAY).digest
        assert digest is not None
        assert web.post(f"/unsubscribe/{token()}").status_code == 200
        report = asyncio.run(deliver(config, store, digest, clock=lambda: NOW))
        assert report.summary() == "sent 1, failed 0, pending 0" and report.settled
        assert report.counts["skipped"] == 1
        assert list(smtp.counts()) == ["reporter@example.org"]


def test_preferences_offer_leaving_this_list_or_every_list(web: httpx.Client, store: Store) -> None:
    manage = token(purpose="manage")
    page = web.get(f"/preferences/{manage}")
    assert page.status_code == 200
    assert 'name="leave" value="list"' in page.text and 'value="all"' in page.text
    assert suppressed(store) == []
    assert web.post(f"/preferences/{manage}", data={"leave": "all"}).status_code == 200
    assert suppressed(store) == [("desk@example.com", "*", "preferences page")]


def test_preferences_need_a_manage_token_and_a_choice(web: httpx.Client, store: Store) -> None:
    assert web.get(f"/preferences/{token()}").status_code == 400  # an unsubscribe token
    manage = token(purpose="manage")
    assert web.post(f"/preferences/{manage}", data={"leave": "nothing"}).status_code == 400
    assert suppressed(store) == []


def test_leaving_every_list_stops_every_list(
    project: Path, config: Config, store: Store, web: httpx.Client
) -> None:
    secret = signing_secret(config, store)
    manage = token(secret=secret, purpose="manage", list_slug="another-list")
    assert web.post(f"/preferences/{manage}", data={"leave": "all"}).status_code == 200
    write_release(project / "content", "a.md", "title: A\npublished: 2026-11-20")
    ingest(config, store, MONDAY)
    digest = create(config, store, "weekly", MONDAY, MONDAY).digest
    assert digest is not None
    with store.connect() as conn:
        [(_, counts)] = store_digests.status(conn)
    assert counts["pending"] == 1
