"""Upstream RSS and Atom feeds: parsed from files, fetched from a real local HTTP server."""

from __future__ import annotations

import socket
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from syndicate.errors import SourceError
from syndicate.ingest.feed import fetch, parse_feed
from syndicate.ingest.items import Problem, RawItem, Site
from syndicate.ingest.record import build_release
from syndicate.model import Attachment, Release

ATOM = """\
<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Upstream press office</title>
  <id>tag:upstream.example.org,2026:feed</id>
  <updated>2026-11-26T09:00:00Z</updated>
  <link href="https://upstream.example.org/"/>
  <entry>
    <id>tag:upstream.example.org,2026:release-one</id>
    <title type="html">&lt;b&gt;Release&lt;/b&gt; one</title>
    <link rel="alternate" href="https://upstream.example.org/news/release-one"/>
    <link rel="enclosure" href="https://upstream.example.org/files/one.pdf"
          type="application/pdf" length="12345"/>
    <published>2026-11-25T12:00:00+03:00</published>
    <updated>2026-11-26T08:00:00Z</updated>
    <author><name>Jane Press</name></author>
    <summary type="html">&lt;p&gt;Short &lt;em&gt;summary&lt;/em&gt;.&lt;/p&gt;</summary>
    <content type="html">&lt;p&gt;Full &lt;strong&gt;text&lt;/strong&gt;.&lt;/p&gt;</content>
  </entry>
  <entry>
    <id>urn:uuid:6f1b7c7e-1111-4222-8333-944455556666</id>
    <title>Second &amp; last &lt;3</title>
    <updated>2026-11-20T10:00:00Z</updated>
  </entry>
  <entry>
    <title>Nameless</title>
    <updated>2026-11-20T10:00:00Z</updated>
  </entry>
</feed>
"""

RSS = """\
<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
  <title>Upstream</title>
  <link>https://upstream.example.org/</link>
  <description>Releases</description>
  <item>
    <title>RSS &lt;i&gt;one&lt;/i&gt; &amp; more</title>
    <link>https://upstream.example.org/news/rss-one</link>
    <guid isPermaLink="false">rss-one-guid</guid>
    <pubDate>Wed, 25 Nov 2026 12:00:00 +0300</pubDate>
    <description>&lt;p&gt;Summary &lt;b&gt;bold&lt;/b&gt;&lt;/p&gt;</description>
    <content:encoded><![CDATA[<p>Body <a href="https://upstream.example.org/x">link</a></p>]]></content:encoded>
    <author>press@example.org (Press Office)</author>
    <enclosure url="https://upstream.example.org/a.mp3" type="audio/mpeg" length="999"/>
  </item>
  <item>
    <title>Only a link</title>
    <link>https://upstream.example.org/news/only-a-link/</link>
    <pubDate>Wed, 25 Nov 2026 12:00:00 GMT</pubDate>
  </item>
  <item>
    <title>No id at all</title>
    <description>Nothing to know it by.</description>
  </item>
</channel>
</rss>
"""

ETAG = '"v1"'
LAST_MODIFIED = "Wed, 25 Nov 2026 09:00:00 GMT"


def write(tmp_path: Path, name: str, text: str) -> bytes:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path.read_bytes()


def parse(body: bytes, label: str = "upstream") -> list[RawItem | Problem]:
    return list(parse_feed(body, label))


def items(body: bytes) -> list[RawItem]:
    return [e for e in parse(body) if isinstance(e, RawItem)]


def atom_entry(tmp_path: Path, entry: str) -> RawItem:
    """The one item of an Atom feed holding `entry`."""
    feed = f'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>{entry}</feed>'
    (item,) = items(write(tmp_path, "one.atom", feed))
    return item


def built(site: Site, item: RawItem) -> Release:
    return build_release(item, site)[0]


# --- Atom -------------------------------------------------------------------------------------


def test_atom_ids_come_from_the_entry_id(tmp_path: Path) -> None:
    assert [i.default_id for i in items(write(tmp_path, "a.atom", ATOM))] == [
        "release-one",
        "6f1b7c7e-1111-4222-8333-944455556666",
    ]


def test_atom_entry_with_neither_id_nor_link_is_a_problem(tmp_path: Path) -> None:
    entries = parse(write(tmp_path, "a.atom", ATOM), "a.atom")
    assert [type(e) for e in entries] == [RawItem, RawItem, Problem]
    problem = entries[2]
    assert isinstance(problem, Problem)
    assert problem.where == "a.atom (entry 3)"
    assert "neither an id nor a link" in problem.reason


def test_atom_html_title_is_plain_text(tmp_path: Path, site: Site) -> None:
    first, second = items(write(tmp_path, "a.atom", ATOM))
    assert built(site, first).title == "Release one"
    assert built(site, second).title == "Second & last <3"


def test_atom_dates_are_utc(tmp_path: Path, site: Site) -> None:
    first, second = (built(site, i) for i in items(write(tmp_path, "a.atom", ATOM)))
    assert first.published == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert first.updated == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    assert second.published == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert second.updated is None


def test_atom_summary_content_and_author(tmp_path: Path, site: Site) -> None:
    release = built(site, items(write(tmp_path, "a.atom", ATOM))[0])
    assert release.summary == "Short summary."
    assert release.body_html == "<p>Full <strong>text</strong>.</p>"
    assert release.author == "Jane Press"
    assert release.url == "https://upstream.example.org/news/release-one"


def test_atom_enclosure_becomes_an_attachment(tmp_path: Path, site: Site) -> None:
    release = built(site, items(write(tmp_path, "a.atom", ATOM))[0])
    assert release.attachments == (
        Attachment("https://upstream.example.org/files/one.pdf", "application/pdf", 12345),
    )


def test_atom_entry_with_a_urn_id_and_no_link_gets_the_default_url(
    tmp_path: Path, site: Site
) -> None:
    release = built(site, items(write(tmp_path, "a.atom", ATOM))[1])
    assert release.url == f"{site.base_url}/releases/6f1b7c7e-1111-4222-8333-944455556666/"


def test_atom_entry_without_a_date_is_published_at_ingest_time(tmp_path: Path, site: Site) -> None:
    item = atom_entry(tmp_path, "<entry><id>tag:x,2026:a</id><title>A</title></entry>")
    release, defaulted = build_release(item, site)
    assert (release.published, defaulted) == (site.now, True)


def test_content_scripts_are_removed(tmp_path: Path, site: Site) -> None:
    entry = (
        "<entry><id>tag:x,2026:a</id><title>A</title><updated>2026-11-20T10:00:00Z</updated>"
        '<content type="html">&lt;p&gt;Hi&lt;/p&gt;&lt;script&gt;steal()&lt;/script&gt;</content>'
        "</entry>"
    )
    body_html = built(site, atom_entry(tmp_path, entry)).body_html
    assert "<script" not in body_html
    assert "steal" not in body_html


def test_content_only_entry_takes_its_summary_from_the_first_paragraph(
    tmp_path: Path, site: Site
) -> None:
    long_paragraph = " ".join(["word"] * 1500)  # 7,499 characters
    entry = (
        "<entry><id>tag:x,2026:a</id><title>A</title><updated>2026-11-20T10:00:00Z</updated>"
        '<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
        f"<p>{long_paragraph}</p><p>Second.</p></div></content></entry>"
    )
    release = built(site, atom_entry(tmp_path, entry))
    assert "<p>" not in release.summary
    assert release.summary.endswith("…")
    assert len(release.summary) <= 301
    assert "Second" not in release.summary


# --- RSS --------------------------------------------------------------------------------------


def test_rss_ids_come_from_the_guid_else_the_link(tmp_path: Path) -> None:
    assert [i.default_id for i in items(write(tmp_path, "b.rss", RSS))] == [
        "rss-one-guid",
        "only-a-link",
    ]


def test_rss_item_with_neither_guid_nor_link_is_a_problem(tmp_path: Path) -> None:
    entries = parse(write(tmp_path, "b.rss", RSS), "b.rss")
    assert [type(e) for e in entries] == [RawItem, RawItem, Problem]


def test_rss_fields_build_into_a_release(tmp_path: Path, site: Site) -> None:
    release = built(site, items(write(tmp_path, "b.rss", RSS))[0])
    assert release.title == "RSS one & more"
    assert release.published == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert release.summary == "Summary bold"
    assert release.body_html.startswith("<p>Body <a")
    assert release.author == "press@example.org (Press Office)"
    assert release.url == "https://upstream.example.org/news/rss-one"
    assert release.attachments == (
        Attachment("https://upstream.example.org/a.mp3", "audio/mpeg", 999),
    )


def test_rss_gmt_date_is_utc(tmp_path: Path, site: Site) -> None:
    release = built(site, items(write(tmp_path, "b.rss", RSS))[1])
    assert release.published == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_rss_guid_that_is_not_a_url_is_not_used_as_the_link(tmp_path: Path, site: Site) -> None:
    feed = """\
        <rss version="2.0"><channel><title>t</title>
        <item><title>Guid only</title><guid>abc123</guid></item>
        </channel></rss>
        """
    (item,) = items(write(tmp_path, "c.rss", feed))
    assert built(site, item).url == f"{site.base_url}/releases/abc123/"


def test_entry_ids_that_differ_only_in_their_query_stay_distinct(tmp_path: Path) -> None:
    feed = """\
        <rss version="2.0"><channel><title>t</title>
        <item><title>One</title><guid>https://blog.example.org/news/?p=101</guid></item>
        <item><title>Two</title><guid>https://blog.example.org/news/?p=102</guid></item>
        </channel></rss>
        """
    assert [i.default_id for i in items(write(tmp_path, "wp.rss", feed))] == [
        "news-p-101",
        "news-p-102",
    ]


# --- unreadable documents ---------------------------------------------------------------------


def test_garbage_bytes_raise_source_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.xml"
    path.write_bytes(b"\x00\xff\xfe garbage <<< not a feed")
    with pytest.raises(SourceError, match=r"^garbage\.xml: not a readable RSS or Atom feed"):
        parse(path.read_bytes(), "garbage.xml")


def test_a_body_that_names_a_local_file_is_not_opened(tmp_path: Path) -> None:
    local = tmp_path / "local.atom"
    local.write_text(ATOM, encoding="utf-8")
    with pytest.raises(SourceError):
        parse(str(local).encode(), "upstream")


def test_a_feed_without_entries_yields_nothing(tmp_path: Path) -> None:
    feed = '<feed xmlns="http://www.w3.org/2005/Atom"><title>Quiet</title></feed>'
    assert parse(write(tmp_path, "quiet.atom", feed)) == []


# --- fetching over HTTP -----------------------------------------------------------------------


@dataclass
class Upstream:
    """A real HTTP server on 127.0.0.1 and the requests it received."""

    base: str
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


@pytest.fixture
def upstream(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Upstream:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)  # stay on 127.0.0.1
    body = ATOM.encode()
    received: list[tuple[str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append((self.path, dict(self.headers.items())))
            if self.path == "/feed.atom":
                if self.headers.get("If-None-Match") == ETAG:
                    self.send_response(304)
                    self.send_header("ETag", ETAG)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/atom+xml")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", ETAG)
                self.send_header("Last-Modified", LAST_MODIFIED)
                self.end_headers()
                self.wfile.write(body)
            elif self.path == "/moved":
                self.send_response(301)
                self.send_header("Location", "/feed.atom")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                status = 500 if self.path == "/broken" else 404
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output quiet

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll interval: shutdown() waits for the next poll.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    request.addfinalizer(stop)
    return Upstream(f"http://127.0.0.1:{server.server_address[1]}", received)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    yield port


def test_first_fetch_returns_the_body_and_its_validators(upstream: Upstream) -> None:
    fetched = fetch(upstream.url("/feed.atom"), timeout=5)
    assert fetched.body == ATOM.encode()
    assert (fetched.etag, fetched.last_modified) == (ETAG, LAST_MODIFIED)
    assert len(upstream.requests) == 1


def test_fetched_body_parses_as_the_feed(upstream: Upstream) -> None:
    fetched = fetch(upstream.url("/feed.atom"), timeout=5)
    assert fetched.body is not None
    assert [i.default_id for i in items(fetched.body)] == [
        "release-one",
        "6f1b7c7e-1111-4222-8333-944455556666",
    ]


def test_second_fetch_with_the_validators_is_not_modified(upstream: Upstream) -> None:
    first = fetch(upstream.url("/feed.atom"), timeout=5)
    second = fetch(upstream.url("/feed.atom"), first.etag, first.last_modified, timeout=5)
    assert second.body is None
    assert (second.etag, second.last_modified) == (ETAG, LAST_MODIFIED)
    assert len(upstream.requests) == 2
    _, headers = upstream.requests[1]
    assert headers["If-None-Match"] == ETAG
    assert headers["If-Modified-Since"] == LAST_MODIFIED


def test_first_fetch_sends_no_validators(upstream: Upstream) -> None:
    fetch(upstream.url("/feed.atom"), timeout=5)
    _, headers = upstream.requests[0]
    assert "If-None-Match" not in headers
    assert "If-Modified-Since" not in headers
    assert headers["User-Agent"].startswith("syndicate/")


def test_a_stale_etag_gets_the_full_body(upstream: Upstream) -> None:
    fetched = fetch(upstream.url("/feed.atom"), '"v0"', timeout=5)
    assert fetched.body == ATOM.encode()
    assert fetched.etag == ETAG


def test_redirects_are_followed(upstream: Upstream) -> None:
    fetched = fetch(upstream.url("/moved"), timeout=5)
    assert fetched.body == ATOM.encode()
    assert [path for path, _ in upstream.requests] == ["/moved", "/feed.atom"]


def test_http_error_raises_source_error_naming_the_url(upstream: Upstream) -> None:
    url = upstream.url("/broken")
    with pytest.raises(SourceError) as info:
        fetch(url, timeout=5)
    assert str(info.value).startswith(f"{url}: HTTP 500")


def test_not_found_raises_source_error(upstream: Upstream) -> None:
    with pytest.raises(SourceError, match="HTTP 404"):
        fetch(upstream.url("/absent.atom"), timeout=5)


def test_unreachable_server_raises_source_error_naming_the_url(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/feed.atom"
    with pytest.raises(SourceError) as info:
        fetch(url, timeout=5)
    assert str(info.value).startswith(f"{url}: ")


def test_malformed_url_raises_source_error() -> None:
    with pytest.raises(SourceError, match=r"^http://\[::1/: "):
        fetch("http://[::1/", timeout=5)


def test_rss_description_without_content_is_the_body(tmp_path: Path, site: Site) -> None:
    feed = """\
        <rss version="2.0"><channel><title>t</title><link>https://u.example.org/</link>
        <description>d</description><item><guid>full-text</guid><title>Full text</title>
        <pubDate>Wed, 25 Nov 2026 12:00:00 GMT</pubDate>
        <description>&lt;p&gt;First paragraph.&lt;/p&gt;&lt;p&gt;Second.&lt;/p&gt;</description>
        </item></channel></rss>
        """
    [item] = items(write(tmp_path, "full.rss", feed))
    release = built(site, item)
    assert release.body_html == "<p>First paragraph.</p><p>Second.</p>"
    assert release.summary == "First paragraph."


def test_plain_text_summary_without_content_becomes_an_escaped_paragraph(
    tmp_path: Path, site: Site
) -> None:
    item = atom_entry(
        tmp_path,
        "<entry><id>tag:u.example.org,2026:plain</id><title>Plain</title>"
        "<updated>2026-11-20T10:00:00Z</updated>"
        '<summary type="text">Fish &amp; chips &lt;3</summary></entry>',
    )
    release = built(site, item)
    assert release.body_html == "<p>Fish &amp; chips &lt;3</p>"
    assert release.summary == "Fish & chips <3"


def test_an_entry_id_without_latin_letters_gets_a_stable_digest_id(tmp_path: Path) -> None:
    entry = (
        "<entry><id>tag:u.example.org,2026:خبر-صحفي</id><title>خبر صحفي</title>"
        "<updated>2026-11-20T10:00:00Z</updated></entry>"
    )
    first = atom_entry(tmp_path, entry).default_id
    again = atom_entry(tmp_path, entry).default_id
    assert first is not None and first.startswith("r-") and first == again
