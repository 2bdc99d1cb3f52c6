"""The public site over real HTTP: a uvicorn server on 127.0.0.1, httpx as the client, files
written into a temporary output folder the way the build writes them."""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from syndicate.config import Web
from syndicate.errors import SyndicateError
from syndicate.files import write_if_changed
from syndicate.urls import file_for
from syndicate.web import (
    StampedCache,
    _read,
    accepts_gzip,
    conditional_headers,
    create_app,
    etag_matches,
    kind_of,
    parse_path,
    serve,
    server_config,
)
from tests.webserver import Swappable, running

MAX_AGE = 120
STRONG_ETAG = re.compile(r'^"[0-9a-f]{32}"$')
SECRET = b"TOP-SECRET: outside the site"


def page(title: str, paragraphs: int = 40) -> bytes:
    body = "".join(f"<p>Paragraph {n} about {title}.</p>\n" for n in range(paragraphs))
    return f"<!doctype html>\n<title>{title}</title>\n{body}".encode()


RSS = (
    '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
    + "".join(f"<item><title>Release {n}</title></item>" for n in range(50))
    + "</channel></rss>\n"
).encode()
ATOM = (
    '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
    + "".join(f"<entry><title>Release {n}</title></entry>" for n in range(50))
    + "</feed>\n"
).encode()
JSON_FEED = (
    '{"version": "https://jsonfeed.org/version/1.1", "items": ['
    + ", ".join(f'{{"id": "{n}", "title": "Release {n}"}}' for n in range(50))
    + "]}\n"
).encode()

SITE: dict[str, bytes] = {
    "index.html": page("Press office"),
    "topics/trafficking/index.html": page("Human trafficking"),
    "topics/türkiye/index.html": page("Türkiye"),
    "releases/2026-a/index.html": b"<!doctype html>\n<title>A</title>\n<p>Short.</p>\n",
    "style.css": b"".join(b".c%d { margin: %dpx; }\n" % (n, n) for n in range(80)),
    "feeds/all.rss": RSS,
    "feeds/all.atom": ATOM,
    "feeds/all.json": JSON_FEED,
    "feeds/tr/all.rss": RSS.replace(b"Release", b"Duyuru"),
    "feeds/archive/all/1.atom": ATOM.replace(b"Release", b"Archived"),
    "feeds.opml": b'<?xml version="1.0"?>\n<opml version="2.0"><body/></opml>\n',
    "sitemap.xml": b'<?xml version="1.0"?>\n<urlset/>\n',
    "logo.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,
    "404.html": b"<!doctype html>\n<title>Not found</title>\n<h1>No such page</h1>\n",
    ".manifest.json": b'{"manifest": "build state"}',
    "feeds/.all.rss.k2j3.tmp": b"half-written temp file",
}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Swappable, httpx.Client]]:
    """One real server and one client for the module; each test puts a fresh app behind it.
    The client asks for identity encoding unless a test says otherwise (httpx would otherwise
    ask for gzip and decode it)."""
    swappable = Swappable()
    with (
        running(swappable) as base_url,
        httpx.Client(base_url=base_url, headers={"accept-encoding": "identity"}) as http,
    ):
        yield swappable, http


@pytest.fixture
def public(tmp_path: Path) -> Path:
    """The output folder, with a secret file beside it that must never be served."""
    (tmp_path / "secret.txt").write_bytes(SECRET)
    root = tmp_path / "public"
    for name, data in SITE.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture
def client(server: tuple[Swappable, httpx.Client], public: Path) -> Iterator[httpx.Client]:
    """The module's client, talking to a fresh app (empty caches) over `public`."""
    swappable, http = server
    swappable.app = create_app(public, max_age=MAX_AGE)
    yield http
    swappable.app = None


def raw_get(client: httpx.Client, target: bytes, method: str = "GET") -> httpx.Response:
    """A request with exactly this request-target: httpx would otherwise normalise '..' away."""
    return client.request(method, "/", extensions={"target": target})


def on_disk(public: Path, url_path: str) -> Path:
    return public / file_for(url_path.lstrip("/"))


def last_modified(path: Path) -> str:
    return formatdate(path.stat().st_mtime, usegmt=True)


def gzip_get(client: httpx.Client, url: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent on the wire (still compressed)."""
    with client.stream("GET", url, headers={"accept-encoding": "gzip", **headers}) as response:
        return response, b"".join(response.iter_raw())


# Files, content types, headers


@pytest.mark.parametrize(
    ("url", "content_type"),
    [
        ("/", "text/html; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/topics/trafficking/", "text/html; charset=utf-8"),
        ("/topics/t%C3%BCrkiye/", "text/html; charset=utf-8"),
        ("/releases/2026-a/", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/feeds/all.rss", "application/rss+xml; charset=utf-8"),
        ("/feeds/all.atom", "application/atom+xml; charset=utf-8"),
        ("/feeds/all.json", "application/feed+json; charset=utf-8"),
        ("/feeds/tr/all.rss", "application/rss+xml; charset=utf-8"),
        ("/feeds/archive/all/1.atom", "application/atom+xml; charset=utf-8"),
        ("/feeds.opml", "text/x-opml; charset=utf-8"),
        ("/sitemap.xml", "application/xml; charset=utf-8"),
        ("/logo.png", "image/png"),
    ],
)
def test_file_is_served_with_its_type_and_cache_headers(
    client: httpx.Client, public: Path, url: str, content_type: str
) -> None:
    response = client.get(url)
    path = on_disk(public, url.replace("t%C3%BCrkiye", "türkiye"))
    assert response.status_code == 200
    assert response.content == path.read_bytes()
    assert response.headers["content-type"] == content_type
    assert response.headers["content-length"] == str(path.stat().st_size)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == f"public, max-age={MAX_AGE}"
    assert STRONG_ETAG.match(response.headers["etag"])
    assert response.headers["last-modified"] == last_modified(path)
    assert "content-encoding" not in response.headers


def test_head_has_the_get_headers_and_no_body(client: httpx.Client) -> None:
    get = client.get("/feeds/all.rss")
    head = client.head("/feeds/all.rss")
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "etag", "last-modified", "cache-control"):
        assert head.headers[name] == get.headers[name], name
    assert head.headers["content-length"] == str(len(RSS))


def test_head_of_the_gzip_variant_gives_the_compressed_length(client: httpx.Client) -> None:
    get, wire = gzip_get(client, "/feeds/all.rss")
    head = client.head("/feeds/all.rss", headers={"accept-encoding": "gzip"})
    assert head.content == b""
    assert head.headers["content-encoding"] == "gzip"
    assert head.headers["content-length"] == str(len(wire))
    assert head.headers["etag"] == get.headers["etag"]


def test_file_headers_come_in_a_fixed_order(client: httpx.Client) -> None:
    """The order Starlette gives a header dict (validators, caching, body description,
    nosniff, length), after uvicorn's own Date and Server."""
    get = client.get("/feeds/all.rss")
    not_modified = client.get("/feeds/all.rss", headers={"if-none-match": get.headers["etag"]})
    head = client.head("/feeds/all.rss", headers={"accept-encoding": "gzip"})
    cached = ["etag", "cache-control", "vary", "access-control-allow-origin"]
    cached.append("access-control-expose-headers")
    body = ["content-type", "last-modified", "x-content-type-options", "content-length"]
    assert [name for name, _ in get.headers.items()] == ["date", "server", *cached, *body]
    assert [name for name, _ in head.headers.items()] == [
        "date", "server", *cached, "content-encoding", *body,
    ]  # fmt: skip
    assert [name for name, _ in not_modified.headers.items()] == [
        "date", "server", *cached, "x-content-type-options",
    ]  # fmt: skip


# ETags


def test_etag_is_stable_across_requests(client: httpx.Client) -> None:
    tags = {client.get("/feeds/all.atom").headers["etag"] for _ in range(3)}
    assert len(tags) == 1


def test_etag_survives_a_rewrite_with_the_same_bytes(client: httpx.Client, public: Path) -> None:
    path = public / "feeds/all.atom"
    before = client.get("/feeds/all.atom")
    temp = path.with_name(".all.atom.tmp")
    temp.write_bytes(ATOM)
    os.utime(temp, (path.stat().st_atime + 60, path.stat().st_mtime + 60))
    temp.replace(path)
    after = client.get("/feeds/all.atom")
    assert after.headers["etag"] == before.headers["etag"]
    assert after.headers["last-modified"] != before.headers["last-modified"]


def test_etag_changes_with_content_even_at_the_same_size_and_mtime(
    client: httpx.Client, public: Path
) -> None:
    """The hash cache is keyed by inode too, so a coarse file-system clock cannot hide a change."""
    path = public / "feeds/all.atom"
    before = client.get("/feeds/all.atom")
    changed = ATOM.replace(b"Release 7<", b"Release X<")
    assert len(changed) == len(ATOM)
    temp = path.with_name(".all.atom.tmp")
    temp.write_bytes(changed)
    old = path.stat()
    os.utime(temp, ns=(old.st_atime_ns, old.st_mtime_ns))
    temp.replace(path)
    after = client.get("/feeds/all.atom")
    assert after.content == changed
    assert STRONG_ETAG.match(after.headers["etag"])
    assert after.headers["etag"] != before.headers["etag"]


def test_a_file_replaced_atomically_is_served_fresh(client: httpx.Client, public: Path) -> None:
    before = client.get("/feeds/all.rss")
    _, wire_before = gzip_get(client, "/feeds/all.rss")
    updated = RSS.replace(b"</channel>", b"<item><title>New</title></item></channel>")
    assert write_if_changed(public / "feeds/all.rss", updated)
    after = client.get("/feeds/all.rss")
    gz_after, wire_after = gzip_get(client, "/feeds/all.rss")
    assert after.content == updated
    assert after.headers["etag"] != before.headers["etag"]
    assert gzip.decompress(wire_before) == RSS
    assert gzip.decompress(wire_after) == updated
    assert gz_after.headers["etag"] == after.headers["etag"][:-1] + '-gzip"'


# Conditional GET


@pytest.mark.parametrize(
    "if_none_match",
    ["{etag}", '"elsewhere", {etag}', "*", "W/{etag}", 'W/"elsewhere" ,W/{etag}'],
    ids=["single", "list", "star", "weak", "weak-list"],
)
def test_if_none_match_gives_304_with_cache_headers_and_no_body(
    client: httpx.Client, if_none_match: str
) -> None:
    etag = client.get("/feeds/all.rss").headers["etag"]
    response = client.get(
        "/feeds/all.rss", headers={"if-none-match": if_none_match.format(etag=etag)}
    )
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["cache-control"] == f"public, max-age={MAX_AGE}"
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-type" not in response.headers


def test_the_first_of_repeated_conditional_headers_counts(client: httpx.Client) -> None:
    etag = client.get("/feeds/all.rss").headers["etag"]
    first = [("if-none-match", etag), ("if-none-match", '"other"')]
    assert client.get("/feeds/all.rss", headers=first).status_code == 304
    assert client.get("/feeds/all.rss", headers=first[::-1]).status_code == 200


def test_head_answers_if_none_match_with_304(client: httpx.Client) -> None:
    etag = client.get("/").headers["etag"]
    response = client.head("/", headers={"if-none-match": etag})
    assert response.status_code == 304
    assert response.headers["etag"] == etag


def test_if_none_match_of_another_version_gives_200(client: httpx.Client) -> None:
    response = client.get("/feeds/all.rss", headers={"if-none-match": '"0123", W/"4567"'})
    assert response.status_code == 200
    assert response.content == RSS


@pytest.mark.parametrize(("offset", "status"), [(0, 304), (3600, 304), (-1, 200), (-3600, 200)])
def test_if_modified_since_compares_whole_seconds(
    client: httpx.Client, public: Path, offset: int, status: int
) -> None:
    mtime = int((public / "style.css").stat().st_mtime)
    since = formatdate(mtime + offset, usegmt=True)
    response = client.get("/style.css", headers={"if-modified-since": since})
    assert response.status_code == status
    if status == 304:
        assert response.content == b""
        assert response.headers["etag"] == client.get("/style.css").headers["etag"]


def test_if_modified_since_is_ignored_when_if_none_match_is_sent(
    client: httpx.Client, public: Path
) -> None:
    headers = {
        "if-none-match": '"not-this-one"',
        "if-modified-since": last_modified(public / "style.css"),
    }
    assert client.get("/style.css", headers=headers).status_code == 200


@pytest.mark.parametrize("value", ["yesterday", "", "Mon, 99 Foo 2026 99:99:99 GMT"])
def test_an_invalid_if_modified_since_is_ignored(client: httpx.Client, value: str) -> None:
    assert client.get("/style.css", headers={"if-modified-since": value}).status_code == 200


# gzip


def test_gzip_variant_has_its_own_etag_and_both_variants_vary(client: httpx.Client) -> None:
    identity = client.get("/feeds/all.rss")
    gzipped, wire = gzip_get(client, "/feeds/all.rss")
    assert gzipped.status_code == 200
    assert gzipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(wire) == RSS
    assert len(wire) < len(RSS)
    assert gzipped.headers["content-length"] == str(len(wire))
    assert gzipped.headers["content-type"] == identity.headers["content-type"]
    assert gzipped.headers["etag"] == identity.headers["etag"][:-1] + '-gzip"'
    assert gzipped.headers["vary"] == identity.headers["vary"] == "Accept-Encoding"


def test_gzip_bytes_are_the_same_on_every_request(client: httpx.Client) -> None:
    """A strong validator promises identical bytes: compression must be deterministic."""
    _, first = gzip_get(client, "/style.css")
    _, second = gzip_get(client, "/style.css")
    assert first == second


def test_gzip_etag_gives_304_only_for_the_gzip_variant(client: httpx.Client) -> None:
    gz_etag = gzip_get(client, "/feeds/all.json")[0].headers["etag"]
    not_modified, wire = gzip_get(client, "/feeds/all.json", **{"if-none-match": gz_etag})
    assert not_modified.status_code == 304
    assert wire == b""
    assert not_modified.headers["etag"] == gz_etag
    assert not_modified.headers["vary"] == "Accept-Encoding"
    identity = client.get("/feeds/all.json", headers={"if-none-match": gz_etag})
    assert identity.status_code == 200
    assert identity.content == JSON_FEED


@pytest.mark.parametrize("accept_encoding", ["gzip;q=0", "*;q=0", "gzip;q=0, *", "identity"])
def test_gzip_is_not_sent_when_refused(client: httpx.Client, accept_encoding: str) -> None:
    response = client.get("/feeds/all.rss", headers={"accept-encoding": accept_encoding})
    assert "content-encoding" not in response.headers
    assert response.content == RSS
    assert response.headers["vary"] == "Accept-Encoding"


@pytest.mark.parametrize("url", ["/releases/2026-a/", "/logo.png"], ids=["small", "binary"])
def test_small_and_binary_files_are_not_compressed(client: httpx.Client, url: str) -> None:
    response, _ = gzip_get(client, url)
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert "vary" not in response.headers


# CORS


@pytest.mark.parametrize(
    ("url", "cors"),
    [
        ("/feeds/all.rss", True),
        ("/feeds/all.atom", True),
        ("/feeds/all.json", True),
        ("/feeds/archive/all/1.atom", True),
        ("/feeds.opml", True),
        ("/", False),
        ("/style.css", False),
        ("/sitemap.xml", False),
        ("/logo.png", False),
    ],
)
def test_cross_origin_reads_are_allowed_on_feeds_only(
    client: httpx.Client, url: str, cors: bool
) -> None:
    headers = client.get(url, headers={"origin": "https://reader.example"}).headers
    assert headers.get("access-control-allow-origin") == ("*" if cors else None)


# Health, errors, folders


def test_healthz_is_ok_even_with_a_file_of_that_name(client: httpx.Client, public: Path) -> None:
    (public / "healthz").write_text("shadow")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.text == "ok"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert client.head("/healthz").content == b""


def ok(request: Request) -> Response:
    return PlainTextResponse(f"route {request.method} {request.url.path}")


@pytest.mark.parametrize("repeat", [1, 2], ids=["first", "again"])
def test_routes_before_the_files_take_their_paths_even_from_files(
    server: tuple[Swappable, httpx.Client], public: Path, repeat: int
) -> None:
    """Routes are asked in order, as the router asks them, also once the decision for a path
    is cached (the second request)."""
    swappable, http = server
    (public / "unsubscribe").mkdir()
    (public / "unsubscribe/tok").write_text("file")
    (public / "unsubscribe/index.html").write_text("file")
    routes = [Route("/unsubscribe/{token}", ok, methods=["POST"])]
    swappable.app = create_app(public, routes=routes)
    for _ in range(repeat):
        assert http.post("/unsubscribe/tok").text == "route POST /unsubscribe/tok"
        assert http.get("/unsubscribe/tok").text == "file"  # the route takes POST only
        assert http.get("/unsubscribe/").text == "file"
        assert http.post("/feeds/all.rss").status_code == 405
        assert http.get("/feeds/all.rss").content == RSS


def test_a_mount_before_the_files_is_asked_on_every_request(
    server: tuple[Swappable, httpx.Client], public: Path
) -> None:
    swappable, http = server
    routes = [Mount("/feeds/tr", routes=[Route("/{name}", ok)])]
    swappable.app = create_app(public, routes=routes)
    for _ in range(2):
        assert http.get("/feeds/tr/all.rss").text == "route GET /feeds/tr/all.rss"
        assert http.get("/feeds/all.rss").content == RSS


def test_a_missing_file_gets_the_sites_404_page(client: httpx.Client) -> None:
    response = client.get("/releases/embargoed/")
    assert response.status_code == 404
    assert response.content == SITE["404.html"]
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    head = client.head("/releases/embargoed/")
    assert (head.status_code, head.content) == (404, b"")


def test_without_a_404_page_the_404_is_plain_text(client: httpx.Client, public: Path) -> None:
    (public / "404.html").unlink()
    response = client.get("/nowhere.rss")
    assert response.status_code == 404
    assert response.text == "not found\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("/topics/trafficking", "/topics/trafficking/"),
        ("/topics/trafficking?ref=feed", "/topics/trafficking/?ref=feed"),
        ("/topics/t%C3%BCrkiye", "/topics/t%C3%BCrkiye/"),
    ],
)
def test_a_folder_without_its_slash_redirects(
    client: httpx.Client, url: str, location: str
) -> None:
    response = client.get(url)
    assert response.status_code == 308
    assert response.headers["location"] == location
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("url", ["/feeds/", "/feeds", "/topics/", "/feeds/archive/all/"])
def test_folders_are_never_listed(client: httpx.Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 404
    assert response.content == SITE["404.html"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("url", ["/feeds/all.rss", "/healthz", "/missing"])
def test_other_methods_get_405_with_allow(client: httpx.Client, method: str, url: str) -> None:
    response = client.request(method, url, content=b"x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.headers["x-content-type-options"] == "nosniff"


# Nothing outside the site, nothing hidden


@pytest.mark.parametrize(
    "target",
    [
        b"/../secret.txt",
        b"/../../../../../../etc/passwd",
        b"/%2e%2e/secret.txt",
        b"/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        b"/%2E%2E/secret.txt",
        b"/feeds/..%2f..%2fsecret.txt",
        b"/feeds/%2e%2e%2f%2e%2e%2fsecret.txt",
        b"/feeds/../../secret.txt",
        b"/..%5csecret.txt",
        b"/feeds\\..\\..\\secret.txt",
        b"//etc/passwd",
        b"/%2fetc%2fpasswd",
        b"/%c0%ae%c0%ae/secret.txt",
        b"/index.html%00.png",
        b"/%00",
        b"/./index.html",
        b"/.manifest.json",
        b"/%2emanifest.json",
        b"/feeds/.all.rss.k2j3.tmp",
        b"/feeds/%2E%61ll.rss.k2j3.tmp",
    ],
)
def test_paths_outside_the_site_or_hidden_are_not_found(
    client: httpx.Client, target: bytes
) -> None:
    response = raw_get(client, target)
    assert response.status_code == 404
    assert response.content == SITE["404.html"]


def test_absolute_form_targets_never_reach_outside(client: httpx.Client) -> None:
    response = raw_get(client, b"http://127.0.0.1/../secret.txt")
    assert response.status_code in (400, 404)
    assert SECRET not in response.content


def test_a_target_no_route_takes_gets_the_404_page(client: httpx.Client) -> None:
    response = raw_get(client, b"*", method="OPTIONS")
    assert response.status_code == 404
    assert response.content == SITE["404.html"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_symlinks_out_of_the_site_are_not_followed(
    client: httpx.Client, public: Path, tmp_path: Path
) -> None:
    (public / "feeds/leak.rss").symlink_to(tmp_path / "secret.txt")
    (public / "outside").symlink_to(tmp_path, target_is_directory=True)
    (public / "feeds/loop.rss").symlink_to("loop.rss")
    for url in ("/feeds/leak.rss", "/outside/secret.txt", "/outside/", "/feeds/loop.rss"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert SECRET not in response.content


def test_symlinks_to_hidden_files_are_not_followed(client: httpx.Client, public: Path) -> None:
    (public / "feeds/state.json").symlink_to("../.manifest.json")
    assert client.get("/feeds/state.json").status_code == 404


def test_symlinks_within_the_site_are_served_as_named(client: httpx.Client, public: Path) -> None:
    (public / "feeds/latest.atom").symlink_to("archive/all/1.atom")
    response = client.get("/feeds/latest.atom")
    assert response.status_code == 200
    assert response.content == SITE["feeds/archive/all/1.atom"]


def test_a_symlinked_folder_within_the_site_is_served(client: httpx.Client, public: Path) -> None:
    (public / "latest").symlink_to("feeds/archive/all", target_is_directory=True)
    response = client.get("/latest/1.atom")
    assert response.status_code == 200
    assert response.content == SITE["feeds/archive/all/1.atom"]
    assert client.get("/latest/../../secret.txt").status_code == 404


def test_swapping_a_symlinked_output_folder_takes_effect_at_once(
    server: tuple[Swappable, httpx.Client], public: Path, tmp_path: Path
) -> None:
    swappable, http = server
    other = tmp_path / "other"
    (other / "feeds").mkdir(parents=True)
    (other / "feeds/all.rss").write_bytes(RSS.replace(b"Release", b"Other"))
    current = tmp_path / "current"
    current.symlink_to(public, target_is_directory=True)
    swappable.app = create_app(current)
    before = http.get("/feeds/all.rss")
    assert before.content == RSS
    swap = tmp_path / "swap"
    swap.symlink_to(other, target_is_directory=True)
    swap.replace(current)
    after = http.get("/feeds/all.rss", headers={"if-none-match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.content == RSS.replace(b"Release", b"Other")
    assert after.headers["etag"] != before.headers["etag"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_in_the_site_is_not_found_and_does_not_block(
    client: httpx.Client, public: Path
) -> None:
    os.mkfifo(public / "feeds/pipe.rss")
    assert client.get("/feeds/pipe.rss", timeout=2).status_code == 404


def test_serve_refuses_a_missing_output_folder(tmp_path: Path) -> None:
    with pytest.raises(SyndicateError, match="run `syndicate build` first"):
        serve(tmp_path / "public", Web())


def test_serve_and_run_share_one_server_configuration() -> None:
    """httptools on asyncio; no access log and no proxy headers unless configured."""
    plain = server_config(create_app(Path("/nonexistent")), Web())
    assert (plain.http, plain.loop, plain.access_log, plain.proxy_headers) == (
        "httptools",
        "asyncio",
        False,
        False,
    )
    behind = server_config(
        create_app(Path("/nonexistent")),
        Web(access_log=True, trusted_proxies=["10.0.0.1"]),
        port=8123,
    )
    assert (behind.access_log, behind.proxy_headers, behind.port) == (True, True, 8123)
    assert behind.forwarded_allow_ips == ["10.0.0.1"]


# Deciders


@pytest.mark.parametrize(
    ("raw", "segments"),
    [
        (b"/", ("",)),
        (b"/feeds/all.rss", ("feeds", "all.rss")),
        (b"/topics/x/", ("topics", "x", "")),
        (b"/topics/t%C3%BCrkiye/", ("topics", "türkiye", "")),
        (b"/a%20b.html", ("a b.html",)),
        (b"", None),
        (b"feeds/all.rss", None),
        (b"/feeds//all.rss", None),
        (b"/feeds/%2f", None),
        (b"/..", None),
        (b"/.well-hidden", None),
        (b"/a%5Cb", None),
        (b"/a%0ab", None),
        (b"/%ff", None),
    ],
)
def test_parse_path(raw: bytes, segments: tuple[str, ...] | None) -> None:
    assert parse_path(raw) == segments


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("gzip, deflate, br, zstd", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("x-gzip", True),
        ("*", True),
        ("GZIP; Q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("gzip;q=0, *", False),
        ("*;q=0", False),
        ("identity", False),
        ("deflate, br", False),
        ("gzip;q=lots", False),
        ("", False),
        (None, False),
    ],
)
def test_accepts_gzip(header: str | None, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        (" * ", True),
        ('"abcd"', False),
        ('"ab"', False),
        ("abc", False),
        ("", False),
    ],
)
def test_etag_matches_by_weak_comparison(header: str, matches: bool) -> None:
    assert etag_matches(header, '"abc"') is matches


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("all.rss", "application/rss+xml; charset=utf-8"),
        ("ALL.RSS", "application/rss+xml; charset=utf-8"),
        ("a.b.json", "application/feed+json; charset=utf-8"),
        ("feeds/all.atom", "application/atom+xml; charset=utf-8"),
        ("index.html/", "text/html; charset=utf-8"),
        ("rss", "application/octet-stream"),
        (".rss", "application/octet-stream"),
        ("all.", "application/octet-stream"),
        ("all.unknown", "application/octet-stream"),
        ("", "application/octet-stream"),
    ],
)
def test_kind_of_goes_by_the_suffix_of_the_last_segment(name: str, content_type: str) -> None:
    assert kind_of(name).content_type == content_type


def test_conditional_headers_are_the_first_value_of_each() -> None:
    scope = {
        "headers": [
            (b"if-none-match", b'"a"'),
            (b"accept-encoding", b"gzip"),
            (b"if-none-match", b'"b"'),
            (b"if-modified-since", b"Thu, 26 Nov 2026 09:00:00 GMT"),
        ]
    }
    assert conditional_headers(scope) == ("gzip", '"a"', "Thu, 26 Nov 2026 09:00:00 GMT")
    assert conditional_headers({"headers": []}) == (None, None, None)


def test_read_reads_to_the_end_whatever_size_it_was_told(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1024
    (tmp_path / "f").write_bytes(data)
    for size in (0, 10, len(data), 10 * len(data)):
        fd = os.open(tmp_path / "f", os.O_RDONLY)
        try:
            assert _read(fd, size) == data
        finally:
            os.close(fd)


def test_stamped_cache_forgets_stale_stamps_and_evicts_least_recently_used() -> None:
    cache: StampedCache[bytes] = StampedCache(10, len)
    cache.put("a", (1, 1, 1), b"aaaa")
    cache.put("b", (1, 1, 1), b"bbbb")
    assert cache.get("a", (1, 2, 1)) is None
    assert cache.get("a", (1, 1, 1)) == b"aaaa"
    cache.put("c", (1, 1, 1), b"cccc")  # over budget: "b" was used least recently
    assert cache.get("b", (1, 1, 1)) is None
    assert cache.get("a", (1, 1, 1)) == b"aaaa"
    cache.put("a", (2, 1, 1), b"new")  # one entry per path
    assert (cache.get("a", (1, 1, 1)), cache.total) == (None, 7)
    cache.put("huge", (1, 1, 1), b"x" * 11)
    assert cache.get("huge", (1, 1, 1)) is None
