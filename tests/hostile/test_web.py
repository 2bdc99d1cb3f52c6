"""Every route of the web app over real HTTP, fed random paths, headers, bodies and tokens
(hypothesis): never a 500, nothing outside the output folder, nothing reflected unescaped,
no token working for another purpose or list, and the subscribe form's rate limit holds.

Routes: static files, /healthz, /subscribe GET and POST, /confirm/{token}, /unsubscribe/{token}
GET and POST, /preferences/{token} GET and POST. One server for the module; each test puts a
fresh app behind it (a fresh rate-limit window) over the same store."""

from __future__ import annotations

import base64
import re
import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from syndicate import maillinks
from syndicate.config import Config, load_config
from syndicate.store import Store
from syndicate.store import subscriptions as store_subscriptions
from syndicate.store.schema import suppressions
from syndicate.tokens import sign
from syndicate.web import create_app
from tests.conftest import BASE_CONFIG, Clock
from tests.figures import report
from tests.hostile.safety import html_hazards
from tests.smtpserver import SmtpServer
from tests.webserver import Swappable, running

pytestmark = pytest.mark.hostile

SECRET = "mail-signing-secret"
OUTSIDE = b"TOP-SECRET: beside the output folder"
HIDDEN = b"HIDDEN-MANIFEST: the build's own state"
START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
ROUTES = (
    "files", "healthz", "subscribe GET", "subscribe POST", "confirm", "unsubscribe GET",
    "unsubscribe POST", "preferences GET", "preferences POST",
)  # fmt: skip
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ALLOWED = {200, 304, 308, 400, 403, 404, 405, 413, 429}

# Strings that have broken web apps before: markup, scripts, template syntax, header and
# path tricks, odd Unicode.
NASTY = [
    "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "'-alert(1)-'",
    "javascript:alert(1)", "{{7*7}}", "${7*7}", "%0d%0aSet-Cookie: x=1", "\r\nBcc: e@x.org",
    "../../etc/passwd", "..\\..\\win.ini", "%2e%2e%2f", "\x00", "\u202egnp.exe", "ﷺ",
    "İıŞş", "🚀", "a" * 400, "<!--", "]]>", "&amp;&lt;", "\ufeff", "\ud7ff", "'; DROP TABLE x;--",
]  # fmt: skip
text = st.one_of(
    st.sampled_from(NASTY),
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=30),
)
# Header values HTTP can carry: visible latin-1 and inner spaces (no CR or LF, nothing to
# strip at either end).
header_text = st.one_of(
    st.sampled_from(["*", "gzip", 'W/"x"', "Thu, 01 Jan 1970 00:00:00 GMT", "[::1", "a" * 2000]),
    st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
        max_size=60,
    ).map(lambda value: value.strip(" ")),
)
header_names = st.sampled_from(
    ["Accept-Encoding", "If-None-Match", "If-Modified-Since", "Range", "Origin", "Referer",
     "Cookie", "Content-Type", "X-Forwarded-For", "Forwarded", "Accept", "User-Agent"]
)  # fmt: skip
headers = st.dictionaries(header_names, header_text, max_size=5)


@dataclass
class Web:
    swappable: Swappable
    http: httpx.Client
    config: Config
    store: Store
    clock: Clock
    output: Path
    smtp: SmtpServer
    routes: Counter[str] = field(default_factory=Counter)
    traversals: int = 0
    reflections: int = 0

    def fresh(self) -> None:
        """A new app (its rate-limit window empty) over the same folder and store, an hour
        later (past every limit on emails to an address)."""
        self.clock.now += timedelta(hours=1)
        routes = maillinks.routes(lambda: self.config, self.store, self.clock)
        self.swappable.app = create_app(self.output, routes=routes)

    def request(
        self,
        route: str,
        method: str,
        target: str | bytes,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """One request; every answer is checked for what must never happen anywhere."""
        self.routes[route] += 1
        raw = target if isinstance(target, bytes) else target.encode()
        # as bytes: httpx would refuse str values outside ASCII
        sent = [(k.encode(), v.encode("latin-1")) for k, v in (headers or {}).items()]
        response = self.http.request(
            method, "/", extensions={"target": raw}, headers=sent, content=content
        )
        assert response.status_code in ALLOWED, (route, raw, response.status_code, response.text)
        assert OUTSIDE not in response.content and HIDDEN not in response.content, raw
        kind = response.headers.get("content-type", "")
        if kind.startswith("text/html") and route != "files":
            assert html_hazards(response.text) == [], (route, raw)
            assert response.headers["x-content-type-options"] == "nosniff"
        return response

    def form(self, query: str = "") -> str:
        response = self.request("subscribe GET", "GET", f"/subscribe{query}")
        assert response.status_code == 200
        found = re.search(r'name="csrf" value="([^"]+)"', response.text)
        assert found is not None
        return found.group(1)

    def suppressions(self) -> set[tuple[str, str]]:
        with self.store.connect() as conn:
            rows = conn.execute(sa.select(suppressions.c.address, suppressions.c.list_slug))
            return {(row.address, row.list_slug) for row in rows}


LISTS = """\
mail: {{secret: {secret}, from: "Press <press@example.org>"}}
smtp: {{host: 127.0.0.1, port: {port}}}
lists:
  weekly:
    title: "Weekly <news> & \\"more\\""
    schedule: "0 8 * * mon"
    topics: [trafficking, turkiye]
    subscribers: lists/w.yaml
  alerts:
    title: Alerts
    schedule: immediate
"""


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Web]:
    root = tmp_path_factory.mktemp("web")
    (root / "secret.txt").write_bytes(OUTSIDE)
    output = root / "public"
    for name, data in {
        "index.html": b"<!doctype html><title>Home</title><p>Home</p>",
        "feeds/all.rss": b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>',
        "releases/a/index.html": b"<!doctype html><title>A</title>",
        "404.html": b"<!doctype html><title>Not found</title>",
        ".manifest.json": HIDDEN,
    }.items():
        path = output / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (output / "escape").symlink_to(root / "secret.txt")
    (output / "up").symlink_to(root)
    (root / "config" / "lists").mkdir(parents=True)
    (root / "content").mkdir()
    (root / "config" / "lists" / "w.yaml").write_text("subscribers: [desk@example.com]\n")
    failed_before = request.session.testsfailed
    with SmtpServer() as smtp:
        text = BASE_CONFIG + LISTS.format(secret=SECRET, port=smtp.port)
        (root / "config" / "syndicate.yaml").write_text(text)
        config = load_config(root / "config" / "syndicate.yaml", environ={})
        swappable = Swappable()
        with (
            Store.open(config.database.url) as store,
            running(swappable) as url,
            httpx.Client(base_url=url, headers={"accept-encoding": "identity"}) as http,
        ):
            web = Web(swappable, http, config, store, Clock(), output, smtp)
            web.fresh()
            yield web
    if request.session.testsfailed == failed_before and len(web.routes) == len(ROUTES):
        report(
            "hostile-web",
            f"{sum(web.routes.values())} requests on {len(web.routes)} routes: 0 errors, "
            f"0 traversals ({web.traversals} tried), 0 unescaped ({web.reflections} reflected)",
        )


@pytest.fixture
def site(web: Web) -> Web:
    web.fresh()
    return web


# --- static files and /healthz ----------------------------------------------------------------

SEGMENTS = [
    "..", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "%252e%252e", "..%2f", "..%5c", "%5c..", "..\\",
    "%00", "secret.txt%00.html", "%c0%ae%c0%ae", "%c0%af", "%e0%80%ae", "%ef%bc%8e%ef%bc%8e",
    "..;", "%2f", "", ".", "~", "secret.txt", "public", "index.html", "feeds", "escape", "up",
    ".manifest.json", "%2emanifest.json", "releases", "a",
]  # fmt: skip
paths = st.lists(st.one_of(st.sampled_from(SEGMENTS), text.map(quote)), min_size=1, max_size=7)


@SETTINGS
@given(segments=paths, method=st.sampled_from(["GET", "HEAD"]), sent=headers)
def test_no_path_reaches_outside_the_output_folder_or_fails(
    site: Web, segments: list[str], method: str, sent: dict[str, str]
) -> None:
    target = "/" + "/".join(segments)
    response = site.request("files", method, target, headers=sent)
    site.traversals += ".." in target or "%2e" in target.lower() or "up" in segments
    if response.status_code == 200 and method == "GET":
        served = {p.read_bytes() for p in site.output.rglob("*") if p.is_file()}
        assert response.content in served


# Each way out that has worked against some server, tried every time (hypothesis mixes them).
TRAVERSALS = [
    "/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt", "/.%2e/secret.txt",
    "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt", "/%252e%252e/secret.txt", "/%252e%252e%252f",
    "/..\\secret.txt", "/..%5csecret.txt", "/%5c..%5csecret.txt", "/%c0%ae%c0%ae/secret.txt",
    "/%c0%ae%c0%ae%c0%afsecret.txt", "/%e0%80%ae%e0%80%ae/secret.txt", "/%00/../secret.txt",
    "/index.html%00", "/secret.txt%00.html", "//secret.txt", "/./../secret.txt", "/up/secret.txt",
    "/escape", "/.manifest.json", "/%2emanifest.json", "/feeds/../..",
    "/releases/a/../../../secret.txt", "/%ef%bc%8e%ef%bc%8e/secret.txt", "/..;/secret.txt",
]  # fmt: skip


@pytest.mark.parametrize("target", TRAVERSALS)
def test_no_known_way_out_of_the_output_folder_works(site: Web, target: str) -> None:
    for method in ("GET", "HEAD"):
        response = site.request("files", method, target)
        assert response.status_code in (400, 404), (target, response.status_code)
    site.traversals += 2


@SETTINGS
@given(sent=headers, method=st.sampled_from(["GET", "HEAD"]))
def test_healthz_answers_ok_whatever_the_headers(
    site: Web, sent: dict[str, str], method: str
) -> None:
    response = site.request("healthz", method, "/healthz", headers=sent)
    assert response.status_code == 200
    assert response.text == ("ok" if method == "GET" else "")


# --- the subscribe form -----------------------------------------------------------------------


def assert_escaped(body: str, value: str) -> None:
    """A value with markup characters never comes back as it was sent."""
    if any(c in value for c in "<>\"'&"):
        assert value not in body


@SETTINGS
@given(
    params=st.dictionaries(
        st.sampled_from(["list", "topic", "email", "csrf", "x"]), text, max_size=4
    ),
    sent=headers,
)
def test_the_form_reflects_no_query_unescaped(
    site: Web, params: dict[str, str], sent: dict[str, str]
) -> None:
    query = "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items())
    response = site.request("subscribe GET", "GET", f"/subscribe{query}", headers=sent)
    assert response.status_code == 200
    for value in params.values():
        assert_escaped(response.text, value)


@SETTINGS
@given(
    email=text,
    list_slug=st.sampled_from(["weekly", "alerts", "nosuch", "", "weekly\r\n"]),
    topics=st.lists(st.sampled_from(["turkiye", "trafficking", "<b>", "all"]), max_size=3),
    csrf=st.sampled_from(["valid", "missing", "random", "other-purpose"]),
    origin=st.sampled_from([None, "null", "https://evil.example", "https://press.example.org"]),
    junk=st.binary(max_size=64),
)
def test_subscribe_posts_never_fail_and_reflect_the_address_escaped(
    site: Web,
    email: str,
    list_slug: str,
    topics: list[str],
    csrf: str,
    origin: str | None,
    junk: bytes,
) -> None:
    site.fresh()  # hypothesis runs every example in one fixture: start each afresh
    token = {
        "valid": site.form(),
        "missing": "",
        "random": base64.urlsafe_b64encode(junk).decode().rstrip("="),
        "other-purpose": sign(
            SECRET, "unsubscribe", "x@example.org", "weekly", issued=site.clock.now, expires=None
        ),
    }[csrf]
    fields = [
        ("csrf", token),
        ("list", list_slug),
        ("email", email),
        *(("topics", t) for t in topics),
    ]
    body = "&".join(f"{quote(k)}={quote(v)}" for k, v in fields).encode() + b"&" + junk
    sent = {"content-type": "application/x-www-form-urlencoded"}
    if origin is not None:
        sent["origin"] = origin
    response = site.request("subscribe POST", "POST", "/subscribe", content=body, headers=sent)
    assert_escaped(response.text, email)
    if csrf != "valid" or origin in ("null", "https://evil.example"):
        assert response.status_code == 403
    if response.status_code in (400, 403) and email.strip():
        site.reflections += 1
        assert str(escape(email[:320])) in response.text or "\x00" in email


def test_the_rate_limit_holds_for_any_address_and_body(site: Web) -> None:
    codes = [
        site.request(
            "subscribe POST",
            "POST",
            "/subscribe",
            content=f"email=r{n}%40example.org&list=weekly".encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        ).status_code
        for n in range(22)
    ]
    assert 429 not in codes[:20]
    assert codes[20:] == [429, 429]


def test_the_rate_limit_holds_whatever_x_forwarded_for_says(site: Web) -> None:
    codes = [
        site.request(
            "subscribe POST",
            "POST",
            "/subscribe",
            content=b"email=x%40example.org&list=weekly",
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "x-forwarded-for": f"203.0.113.{n}",
            },
        ).status_code
        for n in range(22)
    ]
    assert codes[20:] == [429, 429]


def _raw_post(site: Web, target: str, head: str, body: bytes) -> bytes:
    """Send a request as bytes on a socket and read what comes back within five seconds,
    without sending the rest of the body the headers announce."""
    url = site.http.base_url
    assert url.host and url.port
    with socket.create_connection((url.host, url.port), timeout=5) as sock:
        sock.sendall(f"POST {target} HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + body)
        return sock.recv(65536)


@pytest.mark.parametrize("route", ["/subscribe", "/unsubscribe/", "/preferences/"])
def test_an_oversized_body_is_refused_before_it_is_all_read(site: Web, route: str) -> None:
    target = route + (
        _token("manage" if "pref" in route else "unsubscribe") if "/" in route[1:] else ""
    )
    declared = _raw_post(
        site,
        target,
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000000\r\n",
        b"email=x",
    )
    assert declared.startswith(b"HTTP/1.1 413 "), declared[:100]
    chunk = b"4000\r\n" + b"a" * 0x4000 + b"\r\n"
    chunked = _raw_post(
        site,
        target,
        "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n",
        chunk * 2,
    )
    assert chunked.startswith(b"HTTP/1.1 413 "), chunked[:100]
    site.routes[f"{'subscribe' if route == '/subscribe' else route.strip('/')} POST"] += 2


# --- the links in emails: tokens ---------------------------------------------------------------

LINK_ROUTES = [
    ("confirm", "GET", "/confirm/"),
    ("unsubscribe GET", "GET", "/unsubscribe/"),
    ("unsubscribe POST", "POST", "/unsubscribe/"),
    ("preferences GET", "GET", "/preferences/"),
    ("preferences POST", "POST", "/preferences/"),
]
PURPOSE_OF = {"confirm": "confirm", "unsubscribe": "unsubscribe", "preferences": "manage"}


def _token(purpose: str, address: str = "reader@example.org", slug: str = "weekly") -> str:
    expires = START + timedelta(days=3650) if purpose == "confirm" else None
    return sign(SECRET, purpose, address, slug, issued=START, expires=expires)


def _mutated(token: str, edit: tuple[str, int, str]) -> str:
    kind, at, char = edit
    at %= len(token)
    if kind == "replace":
        return token[:at] + char + token[at + 1 :]
    if kind == "insert":
        return token[:at] + char + token[at:]
    if kind == "delete":
        return token[:at] + token[at + 1 :]
    return token[:at]  # truncate


edits = st.tuples(
    st.sampled_from(["replace", "insert", "delete", "truncate"]),
    st.integers(0, 200),
    st.sampled_from([*"AZaz09-_=+/.%", "%2F", "\u00e9"]),
)


@SETTINGS
@given(
    purpose=st.sampled_from(["confirm", "unsubscribe", "manage", "form"]),
    edit=edits,
    route=st.sampled_from(LINK_ROUTES),
    body=st.sampled_from(
        [b"", b"List-Unsubscribe=One-Click", b"leave=all", b"save=1&topics=turkiye"]
    ),
)
def test_an_edited_token_works_nowhere(
    site: Web, purpose: str, edit: tuple[str, int, str], route: tuple[str, str, str], body: bytes
) -> None:
    token = _token(purpose)
    forged = _mutated(token, edit)
    if forged == token:
        return
    before = site.suppressions()
    name, method, prefix = route
    response = site.request(name, method, prefix + quote(forged, safe=""), content=body)
    # 400 from the link's page; 404 or 405 when an edit ('/') made it another path
    assert response.status_code in (400, 404, 405), (forged, response.status_code)
    assert site.suppressions() == before


@SETTINGS
@given(
    token=st.one_of(
        text,
        st.binary(max_size=120).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    ),
    route=st.sampled_from(LINK_ROUTES),
    body=st.binary(max_size=200),
)
def test_a_random_token_works_nowhere(
    site: Web, token: str, route: tuple[str, str, str], body: bytes
) -> None:
    name, method, prefix = route
    before = site.suppressions()
    response = site.request(name, method, prefix + quote(token, safe=""), content=body)
    assert response.status_code in (400, 404, 405)
    assert site.suppressions() == before


def _reslugged(token: str, slug: str) -> str:
    """The token with its list slug swapped for another of the same length, tag kept."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    at = raw.index(b"weekly")
    raw = raw[:at] + slug.encode() + raw[at + len(slug) :]
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_token_works_only_for_its_own_purpose_list_and_secret(site: Web) -> None:
    address = "reader@example.org"
    with site.store.begin() as conn:
        store_subscriptions.request(conn, "weekly", address, (), START)
    for purpose in ("confirm", "unsubscribe", "manage"):
        token = _token(purpose, address)
        for name, method, prefix in LINK_ROUTES:
            route_purpose = PURPOSE_OF[prefix.strip("/")]
            if route_purpose == purpose or (method == "POST" and name.startswith("unsub")):
                continue
            response = site.request(name, method, prefix + token)
            assert response.status_code == 400, (purpose, name)
        other_list = _reslugged(token, "alerts")  # same length: only the tag can tell
        foreign = sign("another-secret", purpose, address, "weekly", issued=START, expires=None)
        for forged in (other_list, foreign):
            for name, method, prefix in LINK_ROUTES:
                response = site.request(name, method, prefix + forged)
                assert response.status_code == 400, (purpose, name)
    assert site.suppressions() == set()
    # The real thing: an unsubscribe link for weekly stops weekly, and only weekly.
    response = site.request(
        "unsubscribe POST", "POST", "/unsubscribe/" + _token("unsubscribe", address)
    )
    assert response.status_code == 200
    response = site.request(
        "preferences POST",
        "POST",
        "/preferences/" + _token("manage", "desk@example.com"),
        content=b"leave=list",
    )
    assert response.status_code == 200
    assert site.suppressions() == {(address, "weekly"), ("desk@example.com", "weekly")}
    response = site.request("confirm", "GET", "/confirm/" + _token("confirm", address, "alerts"))
    assert response.status_code == 400  # no request was made for alerts: nothing to confirm


def test_the_pages_for_a_valid_token_escape_the_list_title(site: Web) -> None:
    for name, method, prefix in LINK_ROUTES[1:4:2]:
        purpose = PURPOSE_OF[prefix.strip("/")]
        response = site.request(name, method, prefix + _token(purpose, "o'brien&co@example.org"))
        assert response.status_code == 200
        assert "Weekly &lt;news&gt; &amp; &#34;more&#34;" in response.text
        assert "o&#39;brien&amp;co@example.org" in response.text
        assert "<news>" not in response.text
