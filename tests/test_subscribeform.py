"""Self-service subscriptions over real HTTP, with the emails captured by a real SMTP server:
double opt-in, CSRF, the hourly limit, answers that never tell who is subscribed, and the
preferences page's choice of topics."""

from __future__ import annotations

import asyncio
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from syndicate import maillinks
from syndicate.config import Config, Web
from syndicate.digest.outbox import create
from syndicate.digest.send import deliver
from syndicate.ingest import ingest
from syndicate.store import Store
from syndicate.store import subscriptions as store_subscriptions
from syndicate.store import suppressions as store_suppressions
from syndicate.store.suppressions import EVERY_LIST, Reason
from syndicate.subscriptions import listing
from syndicate.tokens import sign
from syndicate.web import create_app
from tests.conftest import BASE_CONFIG, Clock, WriteConfig, write_release
from tests.smtpserver import SmtpServer
from tests.webserver import running

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
MONDAY = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
SECRET = "current-secret"


@dataclass
class Site:
    client: httpx.Client
    smtp: SmtpServer
    clock: Clock
    config: Config
    store: Store

    def form(self, query: str = "") -> str:
        """Open the form (which sets the CSRF cookie); its token."""
        response = self.client.get(f"/subscribe{query}")
        assert response.status_code == 200
        found = re.search(r'name="csrf" value="([^"]+)"', response.text)
        assert found is not None
        return found.group(1)

    def subscribe(self, email: str, *topics: str, list_slug: str = "weekly") -> httpx.Response:
        data = {"csrf": self.form(), "list": list_slug, "email": email, "topics": list(topics)}
        return self.client.post("/subscribe", data=data)

    def mails(self, address: str) -> list[EmailMessage]:
        return self.smtp.emails_for(address)

    def link(self, address: str, path: str) -> str:
        """The path (after the site's base URL) of the link in the newest mail to `address`."""
        body = self.mails(address)[-1].get_body(("plain",))
        assert body is not None
        found = re.search(
            r"https://press\.example\.org/news(/" + path + r"/\S+)", body.get_content()
        )
        assert found is not None
        return found.group(1)


@pytest.fixture
def site(project: Path, write_config: WriteConfig, store: Store, tmp_path: Path) -> Iterator[Site]:
    (project / "config" / "lists").mkdir()
    (project / "config" / "lists" / "w.yaml").write_text("subscribers: [desk@example.com]\n")
    with SmtpServer() as smtp:
        config = write_config(
            BASE_CONFIG
            + textwrap.dedent(f"""\
            mail: {{secret: {SECRET}, from: "Press <press@example.org>"}}
            smtp: {{host: 127.0.0.1, port: {smtp.port}}}
            lists:
              weekly:
                title: Weekly <news>
                schedule: "0 8 * * mon"
                timezone: Europe/Istanbul
                topics: [trafficking, turkiye]
                subscribers: lists/w.yaml
              alerts:
                title: Alerts
                schedule: immediate
            """)
        )
        (tmp_path / "site").mkdir()
        clock = Clock()
        made: list[Site] = []  # the app reads the config per request: a test may swap it
        routes = maillinks.routes(lambda: made[0].config, store, clock)
        app = create_app(tmp_path / "site", routes=routes)
        with running(app) as url, httpx.Client(base_url=url) as client:
            made.append(Site(client, smtp, clock, config, store))
            yield made[0]


def statuses(site: Site, slug: str = "weekly") -> dict[str, tuple[str, str, tuple[str, ...]]]:
    with site.store.connect() as conn:
        found, _ = listing(conn, site.config, slug)
    return {e.subscriber.address: (e.source, e.status, e.subscriber.topics) for e in found}


def test_the_form_offers_lists_and_topics_and_sets_a_strict_cookie(site: Site) -> None:
    response = site.client.get("/subscribe?list=weekly&topic=turkiye")
    assert 'value="weekly" required checked' in response.text
    assert 'value="turkiye" checked' in response.text
    assert 'value="trafficking">' in response.text
    assert "Weekly &lt;news&gt;" in response.text  # escaped
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert response.headers["cache-control"] == "no-store"
    # a browser posts with its real Origin only if the page lets it send one
    assert response.headers["referrer-policy"] == "same-origin"


def test_double_opt_in_activates_only_on_the_emailed_link(site: Site) -> None:
    response = site.subscribe("Reader@Example.ORG", "turkiye")
    assert response.status_code == 200
    assert "Check your inbox" in response.text
    assert statuses(site)["Reader@example.org"] == ("self-service", "pending", ("turkiye",))
    [mail] = site.mails("Reader@example.org")
    assert mail["Subject"] == "Confirm your subscription to “Weekly <news>”"
    assert mail["Auto-Submitted"] == "auto-generated"
    html = mail.get_body(("html",))
    assert html is not None and "Weekly &lt;news&gt;" in html.get_content()

    site.clock.now += timedelta(days=2)
    confirmed = site.client.get(site.link("Reader@example.org", "confirm"))
    assert confirmed.status_code == 200
    assert "Subscription confirmed" in confirmed.text
    assert statuses(site)["Reader@example.org"] == ("self-service", "active", ("turkiye",))
    again = site.client.get(site.link("Reader@example.org", "confirm"))
    assert again.status_code == 200  # idempotent


def test_a_confirmed_reader_gets_the_next_digest_for_their_topics(
    site: Site, project: Path
) -> None:
    site.subscribe("reader@example.org", "turkiye")
    site.client.get(site.link("reader@example.org", "confirm"))
    write_release(project / "content", "r1.md", "title: Türkiye welcomes\npublished: 2026-11-27")
    write_release(project / "content", "r2.md", "title: Traffickers caught\npublished: 2026-11-27")
    ingest(site.config, site.store, MONDAY)
    created = create(site.config, site.store, "weekly", MONDAY, MONDAY)
    assert created.digest is not None
    asyncio.run(deliver(site.config, site.store, created.digest, clock=lambda: MONDAY))
    [digest] = [m for m in site.mails("reader@example.org") if "Confirm" not in m["Subject"]]
    text = digest.get_body(("plain",))
    assert text is not None
    assert "Türkiye welcomes" in text.get_content()
    assert "Traffickers caught" not in text.get_content()


def test_expired_or_tampered_confirm_links_activate_nothing(site: Site) -> None:
    site.subscribe("reader@example.org")
    path = site.link("reader@example.org", "confirm")
    token = path.rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert site.client.get(f"/confirm/{tampered}").status_code == 400
    forged = sign(
        "other-secret",
        "confirm",
        "reader@example.org",
        "weekly",
        issued=START,
        expires=START + timedelta(days=7),
    )
    assert site.client.get(f"/confirm/{forged}").status_code == 400
    site.clock.now = START + timedelta(days=7)
    expired = site.client.get(path)
    assert expired.status_code == 400
    assert statuses(site)["reader@example.org"][1] == "pending"


def test_a_confirm_link_for_another_list_or_purpose_does_nothing(site: Site) -> None:
    site.subscribe("reader@example.org")
    other = sign(
        SECRET,
        "confirm",
        "reader@example.org",
        "alerts",
        issued=START,
        expires=START + timedelta(days=7),
    )
    assert site.client.get(f"/confirm/{other}").status_code == 400
    unsubscribe = sign(
        SECRET, "unsubscribe", "reader@example.org", "weekly", issued=START, expires=None
    )
    assert site.client.get(f"/confirm/{unsubscribe}").status_code == 400
    assert statuses(site)["reader@example.org"][1] == "pending"
    assert "reader@example.org" not in statuses(site, "alerts")


def test_at_most_one_email_an_hour_per_address_whatever_the_list(site: Site) -> None:
    first = site.subscribe("reader@example.org", "turkiye")
    second = site.subscribe("reader@example.org", "trafficking")
    third = site.subscribe("reader@example.org", list_slug="alerts")
    assert first.text == second.text  # the same answer every time
    assert "Check your inbox" in third.text
    assert len(site.mails("reader@example.org")) == 1
    # the newest choice of topics is kept for the pending request
    assert statuses(site)["reader@example.org"][2] == ("trafficking",)
    site.clock.now += timedelta(hours=1)
    site.subscribe("reader@example.org", "turkiye")
    assert len(site.mails("reader@example.org")) == 2


def test_the_answer_never_tells_whether_an_address_is_subscribed(site: Site) -> None:
    listed = site.subscribe("desk@example.com")  # in the admins' file
    stranger = site.subscribe("nobody@example.com")
    assert listed.status_code == stranger.status_code == 200
    assert listed.text.replace("desk@example.com", "X") == stranger.text.replace(
        "nobody@example.com", "X"
    )
    [note] = site.mails("desk@example.com")
    assert note["Subject"] == "You already receive “Weekly <news>”"
    manage = site.link("desk@example.com", "preferences")
    assert "Your subscription" in site.client.get(manage).text
    assert statuses(site)["desk@example.com"] == ("config", "active", ())


def test_a_post_without_the_forms_token_and_cookie_is_refused(site: Site) -> None:
    token = site.form()
    data = {"list": "weekly", "email": "victim@example.org"}
    assert site.client.post("/subscribe", data=data).status_code == 403
    with httpx.Client(base_url=str(site.client.base_url)) as fresh:  # token but no cookie
        assert fresh.post("/subscribe", data={**data, "csrf": token}).status_code == 403
    foreign = site.client.post(
        "/subscribe", data={**data, "csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert site.mails("victim@example.org") == []
    assert "victim@example.org" not in statuses(site)


@pytest.mark.parametrize(
    ("email", "topics", "message"),
    [
        ("not an address", [], "Enter an email address"),
        ("a@b\r\nBcc: x@example.org", [], "Enter an email address"),
        ("reader@example.org", ["opinion"], "covers only these topics"),
    ],
)
def test_a_bad_form_is_shown_again_with_the_reason(
    site: Site, email: str, topics: list[str], message: str
) -> None:
    data = {"csrf": site.form(), "list": "weekly", "email": email, "topics": topics}
    response = site.client.post("/subscribe", data=data)
    assert response.status_code == 400
    assert message in response.text
    assert 'role="alert"' in response.text
    assert site.smtp.received == []


def test_reflected_input_is_escaped(site: Site) -> None:
    data = {"csrf": site.form(), "list": "weekly", "email": '"><script>alert(1)</script>'}
    response = site.client.post("/subscribe", data=data)
    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text


def test_too_many_posts_from_one_client_are_refused(site: Site) -> None:
    token = site.form()
    codes = [
        site.client.post(
            "/subscribe", data={"csrf": token, "list": "weekly", "email": f"r{n}@example.org"}
        ).status_code
        for n in range(22)
    ]
    assert codes[:20] == [200] * 20
    assert codes[20:] == [429, 429]


def test_an_smtp_failure_lets_the_reader_try_again_at_once(site: Site) -> None:
    site.smtp.refuse("RCPT", "550 5.1.1 no such user", times=1)
    failed = site.subscribe("reader@example.org")
    assert failed.status_code == 503
    assert site.subscribe("reader@example.org").status_code == 200
    assert len(site.mails("reader@example.org")) == 1


def test_subscribing_again_after_unsubscribing_needs_a_new_confirmation(site: Site) -> None:
    site.subscribe("reader@example.org")
    old_link = site.link("reader@example.org", "confirm")
    site.client.get(old_link)
    site.clock.now += timedelta(hours=2)
    with site.store.begin() as conn:
        store_suppressions.suppress(
            conn, "reader@example.org", "weekly", Reason.UNSUBSCRIBED, "one-click", site.clock.now
        )
    assert statuses(site)["reader@example.org"][1] == "unsubscribed"
    site.clock.now += timedelta(hours=1)
    site.client.get(old_link)  # replaying the old link brings nobody back
    assert statuses(site)["reader@example.org"][1] == "unsubscribed"
    site.subscribe("reader@example.org")
    site.client.get(site.link("reader@example.org", "confirm"))
    assert statuses(site)["reader@example.org"][1] == "active"
    with site.store.connect() as conn:
        [record] = store_subscriptions.history(conn, "reader@example.org")
    assert (record.by, record.lifted.reason) == ("self-service confirmation", "unsubscribed")


def test_confirming_one_list_after_leaving_every_list_keeps_the_others_stopped(
    site: Site,
) -> None:
    with site.store.begin() as conn:
        store_suppressions.suppress(
            conn, "desk@example.com", EVERY_LIST, Reason.UNSUBSCRIBED, "preferences page", START
        )
    site.clock.now += timedelta(minutes=5)
    site.subscribe("desk@example.com", list_slug="alerts")
    site.client.get(site.link("desk@example.com", "confirm"))
    assert statuses(site, "alerts")["desk@example.com"][1] == "active"
    assert statuses(site, "weekly")["desk@example.com"][1] == "unsubscribed"


def test_preferences_change_topics_for_admin_and_self_service_subscribers(site: Site) -> None:
    manage = sign(SECRET, "manage", "desk@example.com", "weekly", issued=START, expires=None)
    page = site.client.get(f"/preferences/{manage}")
    assert page.text.count("checked") == 2  # every topic of the list, to begin with
    saved = site.client.post(
        f"/preferences/{manage}", data={"save": "topics", "topics": ["trafficking"]}
    )
    assert saved.status_code == 200
    assert 'value="trafficking" checked' in saved.text
    assert 'value="turkiye">' in saved.text
    assert statuses(site)["desk@example.com"] == ("config", "active", ("trafficking",))
    empty = site.client.post(f"/preferences/{manage}", data={"save": "topics"})
    assert empty.status_code == 400
    unknown = site.client.post(
        f"/preferences/{manage}", data={"save": "topics", "topics": ["opinion"]}
    )
    assert unknown.status_code == 400
    assert statuses(site)["desk@example.com"][2] == ("trafficking",)


def test_head_on_a_confirm_link_activates_nothing(site: Site) -> None:
    site.subscribe("reader@example.org")
    assert site.client.head(site.link("reader@example.org", "confirm")).status_code == 200
    assert statuses(site)["reader@example.org"][1] == "pending"


def test_a_list_kept_from_self_service_is_neither_offered_nor_accepted(
    site: Site, write_config: WriteConfig
) -> None:
    text = (site.config.path).read_text(encoding="utf-8")
    hidden = write_config(
        text.replace("schedule: immediate", "schedule: immediate\n    self_service: false")
    )
    site.config = hidden
    page = site.client.get("/subscribe")
    assert 'value="alerts"' not in page.text
    response = site.subscribe("reader@example.org", list_slug="alerts")
    assert response.status_code == 400
    assert "Choose one of the lists" in response.text


def test_behind_a_trusted_proxy_the_limit_is_per_forwarded_client(
    site: Site, tmp_path: Path
) -> None:
    routes = maillinks.routes(lambda: site.config, site.store, site.clock)
    app = create_app(tmp_path / "site", routes=routes)
    with running(app, Web(trusted_proxies=["127.0.0.1"])) as url, httpx.Client(base_url=url) as c:
        page = c.get("/subscribe")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None

        def post(n: int, client: str) -> int:
            data = {"csrf": token.group(1), "list": "weekly", "email": f"r{n}@example.org"}
            return c.post("/subscribe", data=data, headers={"X-Forwarded-For": client}).status_code

        assert {post(n, f"203.0.113.{n}") for n in range(25)} == {200}
        assert [post(n, "198.51.100.7") for n in range(21)][-1] == 429
