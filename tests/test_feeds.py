"""Feeds (syndicate/feeds.py): every document valid by the W3C validator's rules (tests/feedcheck),
every field round-tripping through feedparser (RSS, Atom) or json (JSON Feed), stable identity
and bytes, embargo to the second, RFC 5005 archives that chain back to the first release."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicate import feeds
from syndicate.config import Config, Feeds
from syndicate.ingest import ingest
from syndicate.model import Attachment, Kind, Release
from syndicate.output import Snapshot, snapshot, split
from syndicate.store import Store
from tests import feedref
from tests.conftest import NOW, WriteConfig, write_release
from tests.feedcheck import ATOM, check_atom, check_json, check_rss, parse_xml

BASE = "https://press.example.org/news"
DOMAIN = "press.example.org"
HUB = "https://hub.example.net/"
CHECKS = {"rss": check_rss, "atom": check_atom, "json": check_json}
Docs = dict[str, bytes]


# --- building blocks ----------------------------------------------------------------------------


def make(n: int, **fields: Any) -> Release:
    """Release n, published n hours before NOW (so every entry has its own timestamps)."""
    release_id = fields.pop("id", f"r{n:03d}")
    values: dict[str, Any] = {
        "id": release_id,
        "title": f"Release {n}",
        "published": NOW - timedelta(hours=n),
        "url": f"{BASE}/releases/{release_id}/",
        "lang": "en",
        "summary": f"Summary of release {n}.",
        "body_html": f"<p>Body of release {n}.</p>",
        "categories": ("trafficking",),
    }
    values.update(fields)
    return Release(**values)


def many(count: int, **fields: Any) -> list[Release]:
    return [make(n, **fields) for n in range(1, count + 1)]


def configured(config: Config, limit: int = 50, archive_size: int = 100, **site: Any) -> Config:
    hubs = site.pop("hubs", [])
    return config.model_copy(
        update={
            "feeds": Feeds(limit=limit, archive_size=archive_size, websub_hubs=hubs),
            "site": config.site.model_copy(update=site),
        }
    )


def render(snap: Snapshot) -> Docs:
    return {doc.path: doc.render() for doc in feeds.documents(snap)}


def fingerprints(snap: Snapshot) -> dict[str, str]:
    return {doc.path: doc.fingerprint for doc in feeds.documents(snap)}


def violations(docs: Docs) -> dict[str, list[str]]:
    found = {path: CHECKS[path.rsplit(".", 1)[1]](body) for path, body in docs.items()}
    return {path: problems for path, problems in found.items() if problems}


def parse(body: bytes) -> Any:
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def ids_in(body: bytes, fmt: str) -> list[str]:
    """Release ids of a document's entries, in document order."""
    if fmt == "json":
        found = [item["id"] for item in json.loads(body)["items"]]
    else:
        found = [entry.id for entry in parse(body).entries]
    return [tag.rsplit(":", 1)[1] for tag in found]


def tag(release: Release) -> str:
    return f"tag:{DOMAIN},{release.published.year}:{release.id}"


class _Events(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[tuple[str, object]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append((tag, sorted(attrs, key=str)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self.events.append(("/", tag))

    def handle_data(self, data: str) -> None:
        self.events.append(("text", data))


def same_html(left: str, right: str) -> bool:
    """Equal as HTML: feedparser's sanitiser reorders attributes and closes void elements."""
    events = []
    for markup in (left, right):
        parser = _Events()
        parser.feed(markup)
        parser.close()
        events.append(parser.events)
    return events[0] == events[1]


def link(parsed: Any, rel: str) -> str | None:
    return next((lk.href for lk in parsed.feed.get("links", []) if lk.rel == rel), None)


# --- every document is valid ----------------------------------------------------------------


def varied(count: int) -> list[Release]:
    """Releases in two languages and several topics, with authors, datelines, corrections,
    attachments and text that needs escaping."""
    releases = []
    for n in range(1, count + 1):
        categories = ("trafficking", "turkiye") if n % 3 == 0 else ("trafficking",)
        if n % 7 == 0:
            categories = ("opinion",)
        releases.append(
            make(
                n,
                title=f"Release {n}: Ankara & İzmir <update> “{n}”",
                lang="tr" if n % 4 == 0 else "en",
                kind=Kind.OP_ED if n % 7 == 0 else Kind.PRESS_RELEASE,
                dateline="ANKARA" if n % 2 else None,
                author="Ayşe Yılmaz & Co" if n % 5 == 0 else None,
                updated=NOW - timedelta(hours=n) + timedelta(minutes=30) if n % 6 == 0 else None,
                categories=categories,
                attachments=(
                    (
                        Attachment(f"{BASE}/files/r{n}.pdf", "application/pdf", 1000 + n, "PDF"),
                        Attachment(f"{BASE}/files/r{n}.jpg", "image/jpeg", 2000 + n),
                    )
                    if n % 2 == 0
                    else ()
                ),
            )
        )
    return releases


@pytest.mark.parametrize("count", [0, 1, 15, 25, 45])
def test_every_document_of_every_topic_and_format_passes_the_validator_rules(
    config: Config, count: int
) -> None:
    conf = configured(
        config,
        limit=3,
        archive_size=10,
        hubs=[HUB, "https://hub2.example.net/websub"],
        rights="© Test Press Office & friends",
        icon=f"{BASE}/icon.png",
        logo=f"{BASE}/logo.png",
    )
    docs = render(Snapshot(conf, NOW, varied(count)))
    assert violations(docs) == {}
    # 'all' and the four topics in three formats, and at 25 releases two archives of 'all'.
    assert {f"feeds/{t}.{f}" for t in ("all", "trafficking") for f in CHECKS} <= set(docs)
    if count == 25:
        assert {f"feeds/archive/all/{n}.{f}" for n in (1, 2) for f in CHECKS} <= set(docs)


def test_every_xml_document_parses_with_feedparser_without_bozo(config: Config) -> None:
    docs = render(Snapshot(configured(config, limit=3, archive_size=10), NOW, varied(25)))
    versions = {parse(body).version for path, body in docs.items() if not path.endswith(".json")}
    assert versions == {"rss20", "atom10"}


def test_an_empty_feed_has_a_fixed_plausible_updated(config: Config) -> None:
    docs = render(Snapshot(config, NOW, []))
    assert parse(docs["feeds/all.atom"]).feed.updated == "2000-01-01T00:00:00+00:00"
    assert parse(docs["feeds/all.rss"]).feed.updated == "Sat, 01 Jan 2000 00:00:00 +0000"
    assert render(Snapshot(config, NOW + timedelta(days=9), [])) == docs


# --- every field round-trips --------------------------------------------------------------------

RICH = make(
    1,
    id="rich",
    title="Ayşe & <b> \"Yılmaz\" says 'yes' 🎉 — حقوق الإنسان",
    published=datetime(2026, 11, 20, 7, 30, tzinfo=UTC),
    updated=datetime(2026, 11, 21, 12, 15, tzinfo=UTC),
    lang="tr",
    dateline="ANKARA",
    author="Ayşe Yılmaz & Co",
    summary='Summary with & and <s> and "quotes"',
    body_html=(
        '<p>Body &amp; <a href="https://example.org/a?x=1&amp;y=2">link</a></p>\n'
        '<p><img src="https://example.org/i.png" alt="chart"></p>'
    ),
    categories=("trafficking", "turkiye"),
    attachments=(
        Attachment(f"{BASE}/files/report.pdf", "application/pdf", 123456, "Full report"),
        Attachment(f"{BASE}/files/photo.jpg", "image/jpeg", 2048),
    ),
)
SUMMARY = 'ANKARA – Summary with & and <s> and "quotes"'


@pytest.fixture
def rich(config: Config) -> Docs:
    docs = render(Snapshot(config, NOW, [RICH, make(200)]))
    assert violations(docs) == {}
    return docs


def test_rss_item_fields_round_trip(rich: Docs) -> None:
    entry = parse(rich["feeds/all.rss"]).entries[0]
    assert entry.title == RICH.title
    assert entry.title_detail.type == "text/plain"
    assert entry.link == RICH.url
    assert entry.id == tag(RICH)
    assert entry.guidislink is False
    assert parsedate_to_datetime(entry.published) == RICH.published
    assert html.unescape(entry.summary) == SUMMARY  # the description is HTML: escaped text
    assert same_html(entry.content[0].value, RICH.body_html)
    assert entry.author == "Ayşe Yılmaz & Co"
    assert [t.term for t in entry.tags] == ["Human trafficking", "Türkiye"]
    assert [(e.href, e.type, e.length) for e in entry.enclosures] == [
        (f"{BASE}/files/report.pdf", "application/pdf", "123456")
    ]
    assert entry.language == "tr"


def test_atom_entry_fields_round_trip(rich: Docs) -> None:
    entry = parse(rich["feeds/all.atom"]).entries[0]
    assert entry.title == RICH.title
    assert entry.title_detail.type == "text/plain"
    assert entry.link == RICH.url
    assert entry.id == tag(RICH)
    assert datetime.fromisoformat(entry.published) == RICH.published
    assert datetime.fromisoformat(entry.updated) == RICH.updated
    assert (entry.summary, entry.summary_detail.type) == (SUMMARY, "text/plain")
    assert same_html(entry.content[0].value, RICH.body_html)
    assert entry.content[0].type == "text/html"
    assert entry.content[0].language == "tr"
    assert entry.author == "Ayşe Yılmaz & Co"
    assert [(t.term, t.label, t.scheme) for t in entry.tags] == [
        ("trafficking", "Human trafficking", f"{BASE}/topics/"),
        ("turkiye", "Türkiye", f"{BASE}/topics/"),
    ]
    assert [(e.href, e.type, e.length, e.get("title")) for e in entry.enclosures] == [
        (f"{BASE}/files/report.pdf", "application/pdf", "123456", "Full report"),
        (f"{BASE}/files/photo.jpg", "image/jpeg", "2048", None),
    ]
    assert [lk.rel for lk in entry.links] == ["alternate", "enclosure", "enclosure"]


def test_json_item_fields_round_trip(rich: Docs) -> None:
    item = json.loads(rich["feeds/all.json"])["items"][0]
    assert item["title"] == RICH.title
    assert item["url"] == RICH.url
    assert item["id"] == tag(RICH)
    assert datetime.fromisoformat(item["date_published"]) == RICH.published
    assert datetime.fromisoformat(item["date_modified"]) == RICH.updated
    assert item["summary"] == SUMMARY
    assert item["content_html"] == RICH.body_html
    assert item["authors"] == [{"name": "Ayşe Yılmaz & Co"}]
    assert item["tags"] == ["Human trafficking", "Türkiye"]
    assert item["language"] == "tr"
    assert item["attachments"] == [
        {
            "url": f"{BASE}/files/report.pdf",
            "mime_type": "application/pdf",
            "size_in_bytes": 123456,
            "title": "Full report",
        },
        {"url": f"{BASE}/files/photo.jpg", "mime_type": "image/jpeg", "size_in_bytes": 2048},
    ]
    assert item["_syndicate"] == {
        "topics": ["trafficking", "turkiye"],
        "kind": "press-release",
        "dateline": "ANKARA",
    }


def test_plain_text_ampersands_and_brackets_are_hex_references_in_the_bytes(rich: Docs) -> None:
    for path in ("feeds/all.rss", "feeds/all.atom"):
        assert 'Ayşe &#x26; &#x3C;b&gt; "Yılmaz"'.encode() in rich[path]
        assert b"&amp;" not in rich[path] and b"&lt;" not in rich[path]


@pytest.mark.parametrize(
    "title",
    [
        "Fish & chips <no markup> AT&T",
        "She said \"yes\", he said 'no'",
        "Emoji 🎉🇹🇷 and a ZWJ family 👩‍👩‍👧",
        "İnsan hakları: ığüşöç İĞÜŞÖÇ",
        "حقوق الإنسان في تركيا",
        "]]> &#1; &amp; &lt; &#x26; \\ \u00a0\u200f",
    ],
)
def test_titles_round_trip_in_every_format(config: Config, title: str) -> None:
    docs = render(Snapshot(config, NOW, [make(1, title=title)]))
    assert violations(docs) == {}
    assert parse(docs["feeds/all.rss"]).entries[0].title == title
    assert parse(docs["feeds/all.atom"]).entries[0].title == title
    assert json.loads(docs["feeds/all.json"])["items"][0]["title"] == title


def test_cdata_markers_in_a_title_stay_plain_text(config: Config) -> None:
    """Read with lxml: feedparser itself turns a '<![CDATA[' in text into '&lt;![CDATA['."""
    title = "x ]]> <![CDATA[ y ]]> z"
    docs = render(Snapshot(config, NOW, [make(1, title=title)]))
    assert violations(docs) == {}
    rss, _ = parse_xml(docs["feeds/all.rss"])
    atom, _ = parse_xml(docs["feeds/all.atom"])
    assert rss is not None and atom is not None
    assert rss.findtext("channel/item/title") == title
    assert atom.findtext(f"{{{ATOM}}}entry/{{{ATOM}}}title") == title


def test_feed_level_fields(config: Config) -> None:
    conf = configured(config, rights="© Test & Co", icon=f"{BASE}/i.png", logo=f"{BASE}/l.png")
    docs = render(Snapshot(conf, NOW, [make(1)]))
    rss, atom = (
        parse(docs["feeds/trafficking.rss"]).feed,
        parse(docs["feeds/trafficking.atom"]).feed,
    )
    jsn = json.loads(docs["feeds/trafficking.json"])
    assert rss.title == atom.title == jsn["title"] == "Test Press Office — Human trafficking"
    assert rss.language == atom.language == jsn["language"] == "en"
    assert rss.rights == atom.rights == "© Test & Co"
    assert atom.icon == jsn["icon"] == f"{BASE}/i.png"
    assert atom.logo == rss.image.href == f"{BASE}/l.png"
    assert atom.author == "Test Press Office"
    assert atom.generator == rss.generator == "syndicate"
    assert jsn["feed_url"] == f"{BASE}/feeds/trafficking.json"
    assert jsn["home_page_url"] == f"{BASE}/topics/trafficking/"


def test_rss_channel_link_is_the_topic_page_and_the_self_link_the_feed(config: Config) -> None:
    parsed = parse(render(Snapshot(config, NOW, [make(1)]))["feeds/trafficking.rss"])
    assert parsed.feed.link == f"{BASE}/topics/trafficking/"
    assert link(parsed, "self") == f"{BASE}/feeds/trafficking.rss"


def test_a_release_without_body_or_summary_falls_back_to_its_title(config: Config) -> None:
    docs = render(Snapshot(config, NOW, [make(1, summary="", body_html="", dateline="ANKARA")]))
    assert violations(docs) == {}
    assert parse(docs["feeds/all.atom"]).entries[0].summary == "Release 1"
    assert json.loads(docs["feeds/all.json"])["items"][0]["content_text"] == "Release 1"


def test_a_topic_removed_from_the_config_is_left_out_of_the_categories(config: Config) -> None:
    docs = render(Snapshot(config, NOW, [make(1, categories=("trafficking", "retired"))]))
    assert violations(docs) == {}
    assert [t.term for t in parse(docs["feeds/all.atom"]).entries[0].tags] == ["trafficking"]
    assert json.loads(docs["feeds/all.json"])["items"][0]["tags"] == ["Human trafficking"]


# --- identity, order, time ----------------------------------------------------------------------


def test_the_atom_id_and_the_rss_guid_are_the_same_tag_uri(rich: Docs) -> None:
    rss, atom = parse(rich["feeds/all.rss"]), parse(rich["feeds/all.atom"])
    assert (
        [e.id for e in rss.entries] == [e.id for e in atom.entries] == [tag(RICH), tag(make(200))]
    )
    assert tag(RICH) == "tag:press.example.org,2026:rich"


def test_ids_stay_the_same_when_the_title_or_url_changes(config: Config) -> None:
    before = render(Snapshot(config, NOW, [make(1)]))
    moved = make(1, title="Corrected title", url="https://elsewhere.example.com/x")
    after = render(Snapshot(config, NOW, [moved]))
    for fmt in CHECKS:
        assert ids_in(before[f"feeds/all.{fmt}"], fmt) == ids_in(after[f"feeds/all.{fmt}"], fmt)
    assert parse(after["feeds/all.atom"]).entries[0].id == tag(make(1))


def test_entries_are_newest_first_by_when_they_became_public(config: Config) -> None:
    old_but_embargoed = make(
        50, id="lifted", published=NOW - timedelta(days=10), embargo=NOW - timedelta(minutes=5)
    )
    docs = render(Snapshot(config, NOW, [*many(3), old_but_embargoed]))
    for fmt in CHECKS:
        assert ids_in(docs[f"feeds/all.{fmt}"], fmt) == ["lifted", "r001", "r002", "r003"]
    entry = parse(docs["feeds/all.atom"]).entries[0]
    assert datetime.fromisoformat(entry.published) == NOW - timedelta(minutes=5)


LIFT = NOW + timedelta(hours=2)


def embargoed_world() -> list[Release]:
    """25 public releases (two archives at size 10) and one embargoed until LIFT."""
    secret = make(99, id="secret", published=NOW - timedelta(days=30), embargo=LIFT)
    return [*many(25), secret]


def test_one_second_before_the_lift_the_release_is_in_no_document(config: Config) -> None:
    conf = configured(config, limit=3, archive_size=10)
    docs = render(Snapshot(conf, LIFT - timedelta(seconds=1), embargoed_world()))
    assert any("/archive/" in path for path in docs)
    assert [path for path, body in docs.items() if b"secret" in body] == []


def test_at_the_lift_the_release_is_at_the_top_of_every_current_document(config: Config) -> None:
    conf = configured(config, limit=3, archive_size=10)
    docs = render(Snapshot(conf, LIFT, embargoed_world()))
    for fmt in CHECKS:
        assert ids_in(docs[f"feeds/all.{fmt}"], fmt)[0] == "secret"
        assert ids_in(docs[f"feeds/trafficking.{fmt}"], fmt)[0] == "secret"
    assert violations(docs) == {}


def test_a_retracted_release_is_in_no_document(config: Config) -> None:
    conf = configured(config, limit=3, archive_size=10)
    gone = make(30, id="withdrawn", retracted=True)
    docs = render(Snapshot(conf, NOW, [*many(25), gone]))
    assert [path for path, body in docs.items() if b"withdrawn" in body] == []


def test_feed_updated_is_the_newest_entry_change_not_the_build_time(config: Config) -> None:
    corrected = make(5, updated=NOW - timedelta(minutes=10))
    docs = render(Snapshot(config, NOW, [*many(4), corrected]))
    assert parse(docs["feeds/all.atom"]).feed.updated == "2026-11-26T08:50:00+00:00"
    assert parse(docs["feeds/all.rss"]).feed.updated == "Thu, 26 Nov 2026 08:50:00 +0000"
    assert json.loads(docs["feeds/all.json"])["items"][4]["date_modified"] == (
        "2026-11-26T08:50:00+00:00"
    )


def test_rendering_is_byte_identical_now_and_later_without_new_releases(config: Config) -> None:
    releases = varied(25)
    conf = configured(config, limit=3, archive_size=10)
    first = render(Snapshot(conf, NOW, releases))
    assert render(Snapshot(conf, NOW, releases)) == first
    assert render(Snapshot(conf, NOW + timedelta(days=3), releases)) == first
    later = fingerprints(Snapshot(conf, NOW + timedelta(days=3), releases))
    assert later == fingerprints(Snapshot(conf, NOW, releases))


def test_a_correction_under_embargo_dates_from_the_lift(config: Config) -> None:
    lift = NOW - timedelta(hours=1)
    release = make(
        1, published=NOW - timedelta(days=2), embargo=lift, updated=NOW - timedelta(days=1)
    )
    docs = render(Snapshot(config, NOW, [release]))
    entry = parse(docs["feeds/all.atom"]).entries[0]
    assert datetime.fromisoformat(entry.published) == lift
    assert datetime.fromisoformat(entry.updated) == lift
    assert datetime.fromisoformat(parse(docs["feeds/all.atom"]).feed.updated) == lift


# --- RFC 5005 archives ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "current"),
    [(25, ["r001", "r002", "r003", "r004", "r005"]), (21, ["r001", "r002", "r003"])],
)
def test_archives_hold_fixed_blocks_from_the_oldest_release(
    config: Config, count: int, current: list[str]
) -> None:
    conf = configured(config, limit=3, archive_size=10)
    docs = render(Snapshot(conf, NOW, many(count)))
    oldest_first = [f"r{n:03d}" for n in range(count, 0, -1)]
    for fmt in CHECKS:
        assert ids_in(docs[f"feeds/archive/all/1.{fmt}"], fmt) == oldest_first[:10][::-1]
        assert ids_in(docs[f"feeds/archive/all/2.{fmt}"], fmt) == oldest_first[10:20][::-1]
        assert f"feeds/archive/all/3.{fmt}" not in docs
        assert ids_in(docs[f"feeds/all.{fmt}"], fmt) == current


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_following_prev_archive_from_the_current_document_collects_every_release_once(
    config: Config, fmt: str
) -> None:
    conf = configured(config, limit=3, archive_size=10)
    releases = many(21)
    docs = render(Snapshot(conf, NOW, releases))
    url: str | None = f"{BASE}/feeds/all.{fmt}"
    seen: list[list[str]] = []
    while url is not None:
        parsed = parse(docs[url.removeprefix(f"{BASE}/")])
        seen.append([e.id for e in parsed.entries])
        url = link(parsed, "prev-archive")
    assert len(seen) == 3
    current, newest_archive, oldest_archive = (set(ids) for ids in seen)
    assert all(len(ids) == len(set(ids)) for ids in seen)
    assert not newest_archive & oldest_archive and not current & oldest_archive
    assert current | newest_archive | oldest_archive == {tag(r) for r in releases}


def test_json_feed_pages_towards_older_items_with_next_url(config: Config) -> None:
    conf = configured(config, limit=3, archive_size=10)
    releases = many(25)
    docs = render(Snapshot(conf, NOW, releases))
    url: str | None = f"{BASE}/feeds/all.json"
    collected: list[str] = []
    while url is not None:
        document = json.loads(docs[url.removeprefix(f"{BASE}/")])
        collected += [item["id"] for item in document["items"]]
        url = document.get("next_url")
    assert sorted(collected) == sorted(tag(r) for r in releases)


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_archive_links_point_at_their_neighbours_and_the_current_document(
    config: Config, fmt: str
) -> None:
    conf = configured(config, limit=3, archive_size=10, hubs=[HUB])
    docs = render(Snapshot(conf, NOW, many(35)))
    current, archive = f"{BASE}/feeds/all.{fmt}", f"{BASE}/feeds/archive/all"
    expected = {
        f"feeds/all.{fmt}": {"self": current, "prev-archive": f"{archive}/3.{fmt}"},
        f"feeds/archive/all/1.{fmt}": {
            "self": f"{archive}/1.{fmt}",
            "current": current,
            "next-archive": f"{archive}/2.{fmt}",
        },
        f"feeds/archive/all/2.{fmt}": {
            "self": f"{archive}/2.{fmt}",
            "current": current,
            "prev-archive": f"{archive}/1.{fmt}",
            "next-archive": f"{archive}/3.{fmt}",
        },
        f"feeds/archive/all/3.{fmt}": {
            "self": f"{archive}/3.{fmt}",
            "current": current,
            "prev-archive": f"{archive}/2.{fmt}",
            "next-archive": current,  # the newest archive leads on to the current document
        },
    }
    for path, links in expected.items():
        parsed = parse(docs[path])
        found = {lk.rel: lk.href for lk in parsed.feed.links if lk.rel not in ("alternate", "hub")}
        assert found == links, path
        is_archive = path != f"feeds/all.{fmt}"
        assert (b"<fh:archive/>" in docs[path]) is is_archive


def test_adding_a_release_leaves_full_archives_byte_identical(config: Config) -> None:
    conf = configured(config, limit=3, archive_size=10)
    before_snap = Snapshot(conf, NOW, many(25))
    after_snap = Snapshot(conf, NOW, [make(0, id="newest", published=NOW), *many(25)])
    before, after = render(before_snap), render(after_snap)
    archives = [path for path in before if "/archive/" in path]
    assert len(archives) == 12  # 'all' and 'trafficking', two archives each, three formats
    assert {path: after[path] for path in archives} == {path: before[path] for path in archives}
    before_fp, after_fp = fingerprints(before_snap), fingerprints(after_snap)
    assert {p: after_fp[p] for p in archives} == {p: before_fp[p] for p in archives}
    assert after["feeds/all.atom"] != before["feeds/all.atom"]


def test_the_archive_split_is_a_pure_function_of_the_releases() -> None:
    releases = many(25)
    pages = feeds.pages("all", None, releases[::-1], limit=3, size=10)
    assert [(p.number, p.archives, len(p.entries)) for p in pages] == [
        (None, 2, 5),
        (1, 2, 10),
        (2, 2, 10),
    ]
    assert feeds.pages("all", None, [], limit=3, size=10)[0].entries == []


# --- per-language feeds -------------------------------------------------------------------------


def test_no_per_language_feeds_when_every_release_shares_one_language(config: Config) -> None:
    docs = render(Snapshot(config, NOW, many(3, lang="tr")))
    topics = ("all", "trafficking", "turkiye", "ankara", "opinion")
    assert sorted(docs) == sorted(f"feeds/{t}.{f}" for t in topics for f in CHECKS)


def test_per_language_feeds_hold_only_their_language(config: Config) -> None:
    releases = [make(1, lang="tr"), make(2, lang="ar"), make(3), make(4, lang="tr")]
    docs = render(Snapshot(config, NOW, releases))
    assert violations(docs) == {}
    for fmt in CHECKS:
        assert ids_in(docs[f"feeds/tr/all.{fmt}"], fmt) == ["r001", "r004"]
        assert ids_in(docs[f"feeds/ar/trafficking.{fmt}"], fmt) == ["r002"]
        assert ids_in(docs[f"feeds/en/all.{fmt}"], fmt) == ["r003"]
        assert ids_in(docs[f"feeds/all.{fmt}"], fmt) == ["r001", "r002", "r003", "r004"]
    tr = parse(docs["feeds/tr/all.atom"]).feed
    assert (tr.language, tr.title) == ("tr", "Test Press Office — All releases (tr)")
    feed_ids = {parse(body).feed.get("id") for path, body in docs.items() if path.endswith("atom")}
    assert len(feed_ids) == len([p for p in docs if p.endswith("atom")])  # every feed its own id


# --- fingerprints -------------------------------------------------------------------------------


def test_fingerprints_are_equal_for_equal_input(config: Config) -> None:
    assert fingerprints(Snapshot(config, NOW, varied(10))) == fingerprints(
        Snapshot(config, NOW, varied(10))
    )


def test_a_content_change_changes_only_the_fingerprints_of_documents_holding_it(
    config: Config,
) -> None:
    releases = [make(1, categories=("turkiye",)), make(2)]
    edited = [make(1, categories=("turkiye",), body_html="<p>Corrected.</p>"), make(2)]
    before, after = (
        fingerprints(Snapshot(config, NOW, releases)),
        fingerprints(Snapshot(config, NOW, edited)),
    )
    changed = sorted(path for path in before if before[path] != after[path])
    assert changed == sorted(f"feeds/{t}.{f}" for t in ("all", "turkiye") for f in CHECKS)


@pytest.mark.parametrize(
    "change",
    [
        {"title": "New title"},
        {"updated": NOW - timedelta(minutes=1)},
        {"categories": ("trafficking", "ankara")},
        {"attachments": (Attachment(f"{BASE}/a.pdf", "application/pdf", 1),)},
    ],
)
def test_any_visible_change_changes_the_fingerprint(config: Config, change: dict[str, Any]) -> None:
    before = fingerprints(Snapshot(config, NOW, [make(1)]))
    after = fingerprints(Snapshot(config, NOW, [make(1, **change)]))
    assert before["feeds/all.atom"] != after["feeds/all.atom"]


# --- WebSub -------------------------------------------------------------------------------------


def test_websub_hubs_are_announced_in_every_format(config: Config) -> None:
    hubs = [HUB, "https://websub.example.com/hub"]
    docs = render(Snapshot(configured(config, hubs=hubs), NOW, [make(1)]))
    for fmt in ("rss", "atom"):
        links = parse(docs[f"feeds/turkiye.{fmt}"]).feed.links
        assert [lk.href for lk in links if lk.rel == "hub"] == hubs
    assert json.loads(docs["feeds/turkiye.json"])["hubs"] == [
        {"type": "WebSub", "url": hub} for hub in hubs
    ]


def test_no_hub_links_without_hubs(config: Config) -> None:
    docs = render(Snapshot(config, NOW, [make(1)]))
    assert b'rel="hub"' not in docs["feeds/all.rss"] + docs["feeds/all.atom"]
    assert "hubs" not in json.loads(docs["feeds/all.json"])


# --- end to end: Markdown in, feeds out --------------------------------------------------------


def content(project: Path) -> Path:
    return project / "content"


def test_ingested_markdown_makes_valid_feeds_with_every_field(
    project: Path, write_config: WriteConfig, store: Store
) -> None:
    config = write_config(
        (project / "config" / "syndicate.yaml").read_text(encoding="utf-8")
        + f"feeds:\n  limit: 3\n  archive_size: 10\n  websub_hubs: [{HUB}]\n"
    )
    for n in range(1, 13):
        front = f"title: Release {n}\npublished: 2026-11-{n:02d}T10:00"
        write_release(content(project), f"r{n:02d}.md", front)
    write_release(
        content(project),
        "insan-haklari.md",
        """
        title: "İnsan hakları & göç: <yeni> rapor"
        published: 2026-11-20T10:00+03:00
        dateline: ANKARA
        author: Ayşe Yılmaz
        lang: tr
        topics: [turkiye]
        attachments:
          - {url: files/rapor.pdf, type: application/pdf, length: 52100, title: Rapor}
        """,
        "Human trafficking is rising, says the [report](files/rapor.pdf).\n\n![chart](chart.png)",
    )
    write_release(
        content(project),
        "arabic.md",
        "title: حقوق الإنسان\npublished: 2026-11-21T10:00\nlang: ar",
        "نص البيان.",
    )
    report = ingest(config, store, NOW)
    assert report.rejected == []
    docs = render(snapshot(config, store, NOW))
    assert violations(docs) == {}
    assert "feeds/archive/all/1.atom" in docs and "feeds/tr/turkiye.rss" in docs
    entries = {e.id.rsplit(":", 1)[1]: e for e in parse(docs["feeds/turkiye.atom"]).entries}
    entry = entries["insan-haklari"]
    assert entry.title == "İnsan hakları & göç: <yeni> rapor"
    assert entry.id == "tag:press.example.org,2026:insan-haklari"
    assert entry.link == f"{BASE}/releases/insan-haklari/"
    assert entry.published == "2026-11-20T07:00:00+00:00"
    assert entry.summary.startswith("ANKARA – Human trafficking is rising")
    assert f'href="{BASE}/releases/insan-haklari/files/rapor.pdf"' in entry.content[0].value
    assert f'src="{BASE}/releases/insan-haklari/chart.png"' in entry.content[0].value
    assert entry.author == "Ayşe Yılmaz"
    assert [t.term for t in entry.tags] == ["trafficking", "turkiye", "ankara"]
    assert [(e.href, e.length) for e in entry.enclosures] == [
        (f"{BASE}/releases/insan-haklari/files/rapor.pdf", "52100")
    ]


def test_ingested_embargo_holds_to_the_second(project: Path, config: Config, store: Store) -> None:
    for n in range(1, 4):
        write_release(content(project), f"r{n}.md", f"title: Release {n}\npublished: 2026-11-0{n}")
    write_release(
        content(project),
        "secret.md",
        "title: Under embargo\npublished: 2026-11-01T09:00\nembargo: 2026-11-26T14:00+03:00",
    )
    lift = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
    ingest(config, store, NOW)
    before = render(snapshot(config, store, lift - timedelta(seconds=1)))
    assert [path for path, body in before.items() if b"secret" in body] == []
    after = render(snapshot(config, store, lift))
    for fmt in CHECKS:
        assert ids_in(after[f"feeds/all.{fmt}"], fmt)[0] == "secret"
    assert violations(after) == {}


def test_a_hostile_release_stays_escaped_and_safe(
    project: Path, config: Config, store: Store
) -> None:
    write_release(
        content(project),
        "hostile.md",
        """
        title: "<script>alert(1)</script ]]> <![CDATA[ x ]]> &#1; &amp; onerror=alert(2)"
        published: 2026-11-25T10:00
        summary: "]]> <img src=x onerror=alert(3)> & <script>"
        """,
        "<script>alert(4)</script>\n\n"
        '<p onclick="alert(5)">Hi ]]> &lt;there&gt;</p>\n'
        '<img src="x.png" onerror="alert(6)">\n'
        '<a href="javascript:alert(7)">click</a> <a href="  JaVaScRiPt:alert(8)">again</a>\n'
        '<iframe src="https://evil.example/"></iframe><style>body{}</style>\n',
    )
    write_release(content(project), "control.md", "title: Bell \x07 here\npublished: 2026-11-24")
    report = ingest(config, store, NOW)
    assert [p.id for p in report.rejected] == ["control"]
    docs = render(snapshot(config, store, NOW))
    assert violations(docs) == {}
    for fmt in ("rss", "atom"):
        entry = parse(docs[f"feeds/all.{fmt}"]).entries[0]
        assert entry.title == (
            "<script>alert(1)</script ]]> <![CDATA[ x ]]> &#1; &amp; onerror=alert(2)"
        )
        body = entry.content[0].value.lower()
        assert "<script" not in body and "onerror" not in body and "javascript" not in body
        assert "onclick" not in body and "<iframe" not in body and "<style" not in body
    item = json.loads(docs["feeds/all.json"])["items"][0]
    assert "<script" not in item["content_html"] and "onerror" not in item["content_html"]
    assert b"\x07" not in b"".join(docs.values()) and b"Bell" not in b"".join(docs.values())


# --- the checker catches what it is for --------------------------------------------------------


@pytest.fixture
def sample(config: Config) -> Docs:
    conf = configured(config, limit=3, archive_size=10)
    pdf = "application/pdf"
    releases = [
        make(n, title=f"A & B {n}", attachments=(Attachment(f"{BASE}/{n}.pdf", pdf, n),))
        for n in range(1, 21)
    ]
    docs = render(Snapshot(conf, NOW, releases))
    assert violations(docs) == {}
    return docs


@pytest.mark.parametrize(
    ("path", "old", "new", "expected"),
    [
        ("feeds/all.rss", b"A &#x26; B", b"A &amp; B", "instead of a hex reference"),
        ("feeds/all.atom", b"A &#x26; B", b"A &amp; B", "instead of a hex reference"),
        ("feeds/all.rss", b' rel="self"', b' rel="alternate"', "rel=self"),
        (
            "feeds/all.rss",
            b"<link>https://press.example.org/news/releases/",
            b"<link>/",
            "absolute",
        ),
        ("feeds/all.rss", b'isPermaLink="false"', b'isPermaLink="true"', "isPermaLink"),
        ("feeds/all.rss", b"+0000</pubDate>", b"</pubDate>", "RFC 822"),
        ("feeds/all.rss", b"Thu, 26 Nov", b"Mon, 26 Nov", "day of the week"),
        ("feeds/all.rss", b'length="1" ', b"", "enclosure: length"),
        ("feeds/all.rss", b"<pubDate>", b"<enclosure url='x' length='1'/><pubDate>", "enclosures"),
        ("feeds/all.rss", b"&#x3C;p&gt;Body", b"&#x3C;p onerror=x&gt;Body", "event handler"),
        ("feeds/all.rss", b"&#x3C;p&gt;Body", b"&#x3C;script&gt;Body", "<script"),
        ("feeds/all.atom", b"&#x3C;p&gt;Body", b'&#x3C;a href="/rel"&gt;Body', "absolute URL"),
        ("feeds/all.atom", b"press.example.org,2026:r001", b"Press.example.org,26:r001", "tag:"),
        ("feeds/all.atom", b"<summary>", b"<rights>", "summary"),
        ("feeds/all.atom", b"+00:00</updated>", b"</updated>", "RFC 3339"),
        ("feeds/all.atom", b"2026:r002</id>", b"2026:r001</id>", "used by 2"),
        (
            "feeds/all.atom",
            b'rel="enclosure" type="application/pdf"',
            b'rel="alternate" type="text/html"',
            "alternate links",
        ),
        ("feeds/archive/all/1.atom", b' rel="current"', b' rel="related"', "rel=current"),
        ("feeds/archive/all/1.rss", b'rel="next-archive"', b'rel="related"', "next-archive"),
        ("feeds/all.atom", b"</feed>", b"<entry>", "well-formed"),
        ("feeds/all.json", b'"date_published": "2026', b'"date_published": "26', "RFC 3339"),
        ("feeds/all.json", b'"feed_url": "https://', b'"feed_url": "//', "absolute"),
        ("feeds/all.json", b'"content_html"', b'"body"', "content_html or content_text"),
        ("feeds/all.json", b"jsonfeed.org/version/1.1", b"jsonfeed.org/version/1", "version"),
    ],
)
def test_feedcheck_reports_what_the_validator_would(
    sample: Docs, path: str, old: bytes, new: bytes, expected: str
) -> None:
    assert old in sample[path]
    problems = CHECKS[path.rsplit(".", 1)[1]](sample[path].replace(old, new, 1))
    assert any(expected in problem for problem in problems), problems


def test_feedcheck_reports_a_missing_author_in_atom(sample: Docs) -> None:
    body = sample["feeds/all.atom"]
    start, end = body.index(b"<author>"), body.index(b"</author>") + len(b"</author>")
    problems = check_atom(body[:start] + body[end:])
    assert "entry 1: no author, and none on the feed" in problems


def test_feedcheck_reports_a_channel_link_pointing_at_the_feed(sample: Docs) -> None:
    body = sample["feeds/all.rss"].replace(
        b"<link>https://press.example.org/news/topics/all/</link>",
        b"<link>https://press.example.org/news/feeds/all.rss</link>",
    )
    assert "channel/link: points at the feed itself, not its HTML page" in check_rss(body)


def test_feedcheck_refuses_entities(sample: Docs) -> None:
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE rss [<!ENTITY x "y">]>\n<rss/>'
    assert any("DOCTYPE" in p for p in check_rss(body))


# --- entries written as text are what feedgen makes -------------------------------------------


def reference(config: Config, snap: Snapshot) -> Docs:
    """Every RSS and Atom document of the snapshot, wholly built by feedgen (tests/feedref)."""
    settings = config.feeds
    return {
        page.path(fmt): feedref.render(config, page, fmt)
        for stream in snap.scope.streams
        for page in split(stream, settings.limit, settings.archive_size)
        for fmt in ("rss", "atom")
    }


def test_every_xml_document_is_byte_for_byte_what_feedgen_makes(config: Config) -> None:
    conf = configured(
        config,
        limit=3,
        archive_size=10,
        hubs=[HUB],
        rights="© Test & Co",
        icon=f"{BASE}/i.png",
        logo=f"{BASE}/l.png",
    )
    snap = Snapshot(conf, NOW, [*varied(25), RICH])
    docs = render(snap)
    expected = reference(conf, snap)
    assert set(expected) == {p for p in docs if not p.endswith(".json")}
    assert {path: docs[path] for path in expected} == expected


_XML_TEXT = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\ufffe\uffff").filter(
        lambda c: c in "\t\n\r" or ord(c) >= 0x20
    ),
    max_size=40,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    title=_XML_TEXT.filter(bool),
    summary=_XML_TEXT,
    body=_XML_TEXT,
    author=_XML_TEXT,
    dateline=_XML_TEXT,
    file_title=_XML_TEXT,
    url=_XML_TEXT,
    lang=st.sampled_from(["en", "tr"]),
)
def test_any_text_is_written_as_feedgen_writes_it(
    config: Config,
    title: str,
    summary: str,
    body: str,
    author: str,
    dateline: str,
    file_title: str,
    url: str,
    lang: str,
) -> None:
    release = make(
        1,
        title=title,
        summary=summary,
        body_html=body,
        author=author or None,
        dateline=dateline or None,
        url=f"{BASE}/{url}",
        lang=lang,
        attachments=(Attachment(f"{BASE}/{url}.pdf", "application/pdf", 7, file_title),),
    )
    snap = Snapshot(config, NOW, [release])
    expected = reference(config, snap)
    assert {path: body for path, body in render(snap).items() if path in expected} == expected


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x1f", "\ufffe", "\uffff"])
def test_text_xml_cannot_hold_is_refused_as_lxml_refuses_it(config: Config, bad: str) -> None:
    docs = feeds.documents(Snapshot(config, NOW, [make(1, title=f"Bell {bad}")]))
    rss = next(doc for doc in docs if doc.path == "feeds/all.rss")
    with pytest.raises(ValueError, match="XML compatible"):
        rss.render()


def test_a_new_archive_leaves_the_fingerprints_of_older_archives_alone(config: Config) -> None:
    """Only the newest archive links on to the current document: when another archive
    appears, the older ones keep their bytes and their fingerprints."""
    conf = configured(config, limit=3, archive_size=10)
    before = fingerprints(Snapshot(conf, NOW, many(29)))
    after = fingerprints(Snapshot(conf, NOW, [make(0, id="r000", published=NOW), *many(29)]))
    changed = {path for path in before if before[path] != after.get(path)}
    assert "feeds/archive/all/1.atom" not in changed
    assert {"feeds/archive/all/2.atom", "feeds/all.atom"} <= changed
    assert "feeds/archive/all/3.atom" in after
