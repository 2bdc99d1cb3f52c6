"""The public pages: structure, links, escaping, embargo, and fingerprints that tell a build
exactly which pages to render again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.etree  # type: ignore[import-untyped, unused-ignore]
import lxml.html  # type: ignore[import-untyped, unused-ignore]
import pytest

from syndicate import pages, urls
from syndicate.config import Config, load_config
from syndicate.ingest import ingest
from syndicate.model import Attachment, Kind, Release
from syndicate.output import Document, Snapshot, snapshot
from syndicate.store import Store
from tests.conftest import BASE_CONFIG, NOW, ROOT, WriteConfig, write_release

BASE = "https://press.example.org/news"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TOPICS = ["all", "trafficking", "turkiye", "ankara", "opinion"]
HTML = Any  # lxml elements are untyped
SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def release(
    rid: str,
    title: str | None = None,
    *,
    hours: int = 0,
    categories: tuple[str, ...] = (),
    **fields: Any,
) -> Release:
    return Release(
        id=rid,
        title=title or rid.replace("-", " ").capitalize(),
        published=T0 + timedelta(hours=hours),
        url=f"{BASE}/releases/{rid}/",
        lang=fields.pop("lang", "en"),
        categories=categories,
        **fields,
    )


def make(config: Config, *releases: Release) -> Snapshot:
    """A snapshot as the store gives it: newest first."""
    ordered = sorted(releases, key=lambda r: (r.published, r.id), reverse=True)
    return Snapshot(config, NOW, ordered)


def sample(config: Config) -> Snapshot:
    return make(
        config,
        release(
            "traffickers-caught",
            "Traffickers caught",
            categories=("trafficking", "ankara"),
            dateline="Ankara",
            summary="Police and IOM act together.",
            body_html="<p>Police and IOM act together.</p>",
        ),
        release(
            "an-op-ed",
            hours=1,
            kind=Kind.OP_ED,
            author="A. Author",
            categories=("opinion",),
            summary="An opinion.",
        ),
        release(
            "with-files",
            hours=2,
            updated=T0 + timedelta(days=1),
            categories=("turkiye", "trafficking"),
            body_html='<p>Read <a href="https://example.org/r.pdf">the <em>report</em></a>.</p>',
            attachments=(
                Attachment("https://press.example.org/files/r.pdf", "application/pdf", 2_400_000),
                Attachment("https://press.example.org/files/p.jpg", "image/jpeg", 0, "Photo"),
            ),
        ),
    )


def build(snap: Snapshot) -> dict[str, Document]:
    return {doc.path: doc for doc in pages.documents(snap)}


def render(snap: Snapshot) -> dict[str, bytes]:
    return {path: doc.render() for path, doc in build(snap).items()}


def fingerprints(snap: Snapshot) -> dict[str, str]:
    return {path: doc.fingerprint for path, doc in build(snap).items()}


def html(data: bytes) -> HTML:
    return lxml.html.document_fromstring(data)


def xml(data: bytes) -> HTML:
    return lxml.etree.fromstring(data)


def html_pages(site: dict[str, bytes]) -> dict[str, HTML]:
    return {path: html(data) for path, data in site.items() if path.endswith(".html")}


def texts(page: HTML, path: str) -> list[str]:
    """The text of every element at the XPath `path`, white space collapsed."""
    return [" ".join(e.text_content().split()) for e in page.xpath(path)]


def alternates(page: HTML) -> list[tuple[str, str]]:
    return [(e.get("type"), e.get("href")) for e in page.xpath('//link[@rel="alternate"]')]


def feeds_of(topic: str, fmts: tuple[str, ...] = urls.FORMATS) -> list[tuple[str, str]]:
    return [(urls.MEDIA_TYPES[f], f"{BASE}/{urls.feed(topic, f)}") for f in fmts]


def relative_links(page: HTML) -> list[str]:
    links = [e.get("href") for e in page.iter() if e.get("href") is not None]
    links += [e.get("src") for e in page.iter() if e.get("src") is not None]
    return [link for link in links if not urlsplit(link).scheme]


def assert_consistent(site: dict[str, bytes]) -> None:
    """Every page parses, and every relative link reaches a generated document."""
    for path, page in html_pages(site).items():
        ids = {e.get("id") for e in page.iter() if e.get("id")}
        for link in relative_links(page):
            if link.startswith("#"):
                assert link[1:] in ids, (path, link)
                continue
            target = urlsplit(urljoin(f"http://site/{path}", link)).path.removeprefix("/")
            assert urls.file_for(target) in site, (path, link)
    for path in (urls.OPML, urls.SITEMAP):
        xml(site[path])


# --- the set of documents -------------------------------------------------------------------


def test_one_document_per_page(config: Config) -> None:
    assert set(build(sample(config))) == {
        "index.html",
        *(f"topics/{t}/index.html" for t in TOPICS),
        "releases/traffickers-caught/index.html",
        "releases/an-op-ed/index.html",
        "releases/with-files/index.html",
        "feeds.opml",
        "sitemap.xml",
        "sitemaps/pages.xml",
        "sitemaps/releases-1.xml",
        "404.html",
        "style.css",
    }


def test_every_html_page_is_html5_with_language_viewport_and_stylesheet(config: Config) -> None:
    site = render(sample(config))
    for path, page in html_pages(site).items():
        assert site[path].startswith(b"<!DOCTYPE html>\n"), path
        assert page.get("lang") == "en", path
        assert page.xpath('//meta[@name="viewport"]'), path
        assert page.xpath('//link[@rel="stylesheet"]'), path
        assert len(page.xpath("//main")) == 1 and len(page.xpath("//h1")) == 1, path
        assert not page.xpath("//script"), path


def test_every_relative_link_resolves_to_a_generated_document(config: Config) -> None:
    site = render(sample(config))
    assert_consistent(site)
    for path, page in html_pages(site).items():
        if path != urls.NOT_FOUND:
            assert any(not link.startswith("#") for link in relative_links(page)), path


def test_links_that_leave_the_page_tree_are_absolute(config: Config) -> None:
    """Feeds, the OPML file and canonical URLs are what readers store: never relative."""
    for path, page in html_pages(render(sample(config))).items():
        for link in page.xpath('//link[@rel="alternate" or @rel="canonical"]'):
            assert link.get("href").startswith(f"{BASE}/"), path
        for anchor in page.xpath("//a"):
            href = anchor.get("href")
            if "feeds/" in href or href.endswith(".opml"):
                assert href.startswith(f"{BASE}/"), (path, href)


def test_not_found_page_links_home_with_absolute_urls_only(config: Config) -> None:
    """It is served at any depth, where a relative link would lead nowhere."""
    page = html(render(sample(config))[urls.NOT_FOUND])
    links = [e.get("href") for e in page.iter() if e.get("href")]
    assert all(link.startswith((f"{BASE}/", "#")) for link in links)
    assert f"{BASE}/" in links
    assert page.xpath('//link[@rel="stylesheet"]')[0].get("href") == f"{BASE}/style.css"


def test_stylesheet_is_the_template_file(config: Config) -> None:
    css = render(sample(config))[urls.STYLESHEET]
    assert css == (ROOT / "templates" / "site" / "style.css").read_bytes()


# --- index ----------------------------------------------------------------------------------


def test_index_lists_all_first_then_the_configured_topics_with_counts(config: Config) -> None:
    page = html(render(sample(config))["index.html"])
    assert texts(page, "//ul[@class='topics']/li//h3") == [
        "All releases",
        "Human trafficking",
        "Türkiye",
        "From Ankara",
        "Opinion",
    ]
    assert texts(page, "//ul[@class='topics']/li/p[@class='meta']") == [
        "3 releases",
        "2 releases",
        "1 release",
        "1 release",
        "1 release",
    ]
    hrefs = [a.get("href") for a in page.xpath("//ul[@class='topics']/li//h3/a")]
    assert hrefs == [f"topics/{t}/" for t in TOPICS]


def test_index_gives_every_topic_its_three_feed_links(config: Config) -> None:
    page = html(render(sample(config))["index.html"])
    for item, topic in zip(page.xpath("//ul[@class='topics']/li"), TOPICS, strict=True):
        links = [(a.get("type"), a.get("href")) for a in item.xpath(".//ul[@class='feeds']//a")]
        assert links == feeds_of(topic)


def test_index_links_the_opml_of_all_topics(config: Config) -> None:
    page = html(render(sample(config))["index.html"])
    [link] = [a for a in page.xpath("//main//a") if a.get("href") == f"{BASE}/feeds.opml"]
    assert link.text_content() == "all topics in your feed reader"


def test_index_shows_the_latest_ten_releases_newest_first(config: Config) -> None:
    snap = make(config, *(release(f"r{n}", hours=n) for n in range(12)))
    page = html(render(snap)["index.html"])
    assert texts(page, "//ol[@class='releases']//h3") == [f"R{n}" for n in range(11, 1, -1)]
    assert "topics/all/" in [a.get("href") for a in page.xpath("//main//a")]


def test_index_autodiscovers_the_all_feeds_and_every_topic_atom_feed(config: Config) -> None:
    page = html(render(sample(config))["index.html"])
    expected = feeds_of("all") + [f for t in TOPICS[1:] for f in feeds_of(t, ("atom",))]
    assert alternates(page) == expected


# --- topic pages ----------------------------------------------------------------------------


def test_topic_page_lists_its_own_releases_newest_first(config: Config) -> None:
    page = html(render(sample(config))["topics/trafficking/index.html"])
    assert texts(page, "//h1") == ["Human trafficking"]
    assert texts(page, "//ol[@class='releases']//h3") == ["With files", "Traffickers caught"]
    hrefs = [a.get("href") for a in page.xpath("//ol[@class='releases']//h3/a")]
    assert hrefs == ["../../releases/with-files/", "../../releases/traffickers-caught/"]


def test_topic_page_shows_date_dateline_kind_and_summary(config: Config) -> None:
    page = html(render(sample(config))["topics/all/index.html"])
    items = {texts(li, ".//h3")[0]: li for li in page.xpath("//ol[@class='releases']/li")}
    assert texts(items["Traffickers caught"], ".//p") == [
        "20 November 2026 · Ankara",
        "Police and IOM act together.",
    ]
    assert texts(items["An op ed"], ".//p[@class='meta']") == ["20 November 2026 · Op-ed"]
    [time] = items["An op ed"].xpath(".//time")
    assert time.get("datetime") == "2026-11-20T13:00:00+03:00"


def test_topic_page_shows_its_description_and_autodiscovers_its_three_feeds(
    write_config: WriteConfig,
) -> None:
    config = write_config(
        """\
        site: {title: T, base_url: "https://press.example.org/news"}
        topics:
          trafficking: {title: Human trafficking, description: Prevention and help.}
        """
    )
    page = html(render(make(config))["topics/trafficking/index.html"])
    assert texts(page, "//p[@class='lede']") == ["Prevention and help."]
    assert alternates(page) == feeds_of("trafficking")
    assert texts(page, "//*[@id='releases']/following-sibling::p") == ["No releases yet."]


def test_topic_page_links_feeds_per_language_only_when_the_site_has_several(
    config: Config,
) -> None:
    single = html(render(sample(config))["topics/trafficking/index.html"])
    assert not single.xpath("//ul[@class='languages']")
    snap = make(
        config,
        *sample(config).releases,
        release("turkce", lang="tr", categories=("turkiye",)),
    )
    site = html_pages(render(snap))
    links = [
        a.get("href")
        for a in site["topics/turkiye/index.html"].xpath("//ul[@class='languages']//a")
    ]
    assert links == [
        f"{BASE}/{urls.feed('turkiye', f, lang)}" for lang in ("en", "tr") for f in urls.FORMATS
    ]
    opinion = site["topics/opinion/index.html"].xpath("//ul[@class='languages']//a")
    assert [a.get("href") for a in opinion] == [
        f"{BASE}/{urls.feed('opinion', f, 'en')}" for f in urls.FORMATS
    ]


# --- release pages --------------------------------------------------------------------------


def test_release_page_shows_title_dates_dateline_author_and_kind(config: Config) -> None:
    site = render(sample(config))
    files = html(site["releases/with-files/index.html"])
    assert texts(files, "//h1") == ["With files"]
    assert texts(files, "//dl[@class='meta']/dt") == ["Published", "Updated", "Type"]
    assert texts(files, "//dl[@class='meta']/dd") == [
        "20 November 2026, 14:00 UTC+3",
        "21 November 2026, 12:00 UTC+3",
        "Press release",
    ]
    times = [t.get("datetime") for t in files.xpath("//dl[@class='meta']//time")]
    assert times == ["2026-11-20T14:00:00+03:00", "2026-11-21T12:00:00+03:00"]
    op_ed = html(site["releases/an-op-ed/index.html"])
    assert texts(op_ed, "//dl[@class='meta']/dd")[1:] == ["A. Author", "Op-ed"]
    caught = html(site["releases/traffickers-caught/index.html"])
    assert texts(caught, "//dl[@class='meta']/dt") == ["Published", "Dateline", "Type"]


def test_release_page_keeps_the_sanitised_body_as_markup(config: Config) -> None:
    page = html(render(sample(config))["releases/with-files/index.html"])
    [body] = page.xpath("//div[@class='body']")
    [link] = body.xpath(".//a")
    assert link.get("href") == "https://example.org/r.pdf"
    assert texts(link, ".//em") == ["report"]


def test_release_page_lists_attachments_with_title_type_and_size(config: Config) -> None:
    page = html(render(sample(config))["releases/with-files/index.html"])
    assert texts(page, "//ul[@class='attachments']/li") == [
        "r.pdf (PDF, 2.4 MB)",
        "Photo (JPEG image)",
    ]
    types = [a.get("type") for a in page.xpath("//ul[@class='attachments']//a")]
    assert types == ["application/pdf", "image/jpeg"]


def test_release_page_links_its_topics_and_names_its_canonical_url(config: Config) -> None:
    page = html(render(sample(config))["releases/with-files/index.html"])
    hrefs = [a.get("href") for a in page.xpath("//ul[@class='tags']//a")]
    assert hrefs == ["../../topics/trafficking/", "../../topics/turkiye/", "../../topics/all/"]
    [canonical] = page.xpath('//link[@rel="canonical"]')
    assert canonical.get("href") == f"{BASE}/releases/with-files/"


def test_release_page_autodiscovers_the_all_feeds_and_its_topics_feeds(config: Config) -> None:
    page = html(render(sample(config))["releases/with-files/index.html"])
    assert alternates(page) == feeds_of("all") + feeds_of("trafficking") + feeds_of("turkiye")


def test_a_category_no_longer_configured_is_not_linked(config: Config) -> None:
    snap = make(config, release("old", categories=("removed-topic", "opinion")))
    page = html(render(snap)["releases/old/index.html"])
    assert texts(page, "//ul[@class='tags']//a") == ["Opinion", "All releases"]
    assert "removed-topic" not in lxml.html.tostring(page).decode()


def test_dates_are_shown_in_the_site_time_zone(config: Config) -> None:
    """22:30 UTC on the 20th is already the 21st in Istanbul."""
    late = replace(release("late"), published=datetime(2026, 11, 20, 22, 30, tzinfo=UTC))
    site = render(make(config, late))
    listed = html(site["topics/all/index.html"]).xpath("//ol[@class='releases']//time")[0]
    assert (listed.text, listed.get("datetime")) == (
        "21 November 2026",
        "2026-11-21T01:30:00+03:00",
    )
    assert texts(html(site["releases/late/index.html"]), "//dl[@class='meta']/dd")[0] == (
        "21 November 2026, 01:30 UTC+3"
    )


def test_a_release_in_another_language_is_marked_with_its_language(config: Config) -> None:
    snap = make(config, release("turkce", "Türkçe başlık", lang="tr", body_html="<p>Metin</p>"))
    site = render(snap)
    page = html(site["releases/turkce/index.html"])
    assert page.get("lang") == "en"
    assert page.xpath("//h1")[0].get("lang") == "tr"
    assert page.xpath("//div[@class='body']")[0].get("lang") == "tr"
    [heading] = html(site["index.html"]).xpath("//ol[@class='releases']//h3")
    assert heading.get("lang") == "tr"


# --- escaping -------------------------------------------------------------------------------

NASTY = "<script>alert(\"x\")</script> & 'quotes' </title>"


def test_markup_in_titles_and_config_is_escaped_everywhere(write_config: WriteConfig) -> None:
    # Config titles hold no end tags (the config refuses them: feeds would carry them as HTML).
    config = write_config(
        """\
        site:
          title: 'Press & "Co" <b>Office'
          base_url: "https://press.example.org/news"
          rights: "<script>x ©"
        topics:
          evil:
            title: "<script>alert(1) & co"
            description: "Tags <i>like this & that"
        """
    )
    snap = make(
        config,
        release(
            "nasty",
            NASTY,
            categories=("evil",),
            dateline=NASTY,
            author=NASTY,
            summary=NASTY,
            attachments=(Attachment(f"{BASE}/f.pdf", "application/pdf", 10, NASTY),),
        ),
    )
    site = render(snap)
    for path, data in site.items():
        assert b"<script" not in data, path
        assert b"<b>" not in data and b"<i>" not in data, path
    assert_consistent(site)
    page = html(site["releases/nasty/index.html"])
    assert texts(page, "//h1") == [" ".join(NASTY.split())]
    assert page.xpath("//title")[0].text == f'{NASTY} — Press & "Co" <b>Office'
    assert texts(page, "//ul[@class='attachments']//a") == [" ".join(NASTY.split())]
    titles = [e.get("title") for e in page.xpath('//link[@rel="alternate"]')]
    assert 'Press & "Co" <b>Office — <script>alert(1) & co (RSS)' in titles
    topic = html(site["topics/evil/index.html"])
    assert texts(topic, "//p[@class='lede']") == ["Tags <i>like this & that"]
    outlines = xml(site[urls.OPML]).findall(".//outline")
    assert outlines[1].get("text") == 'Press & "Co" <b>Office — <script>alert(1) & co'


# --- OPML and sitemap -----------------------------------------------------------------------


def test_opml_lists_every_topic_feed_with_absolute_urls(config: Config) -> None:
    opml = xml(render(sample(config))[urls.OPML])
    assert opml.tag == "opml" and opml.get("version") == "2.0"
    assert opml.findtext("head/title") == "Test Press Office"
    outlines = opml.findall("body/outline")
    assert [(o.get("xmlUrl"), o.get("htmlUrl")) for o in outlines] == [
        (f"{BASE}/feeds/{t}.rss", f"{BASE}/topics/{t}/") for t in TOPICS
    ]
    assert {o.get("type") for o in outlines} == {"rss"}
    assert (
        outlines[1].get("text")
        == outlines[1].get("title")
        == ("Test Press Office — Human trafficking")
    )


def sitemap_entries(site: dict[str, bytes]) -> dict[str, str | None]:
    """loc → lastmod of every sitemap the sitemap index lists."""
    index = xml(site[urls.SITEMAP])
    assert index.tag == f"{SITEMAP_NS}sitemapindex"
    entries: dict[str, str | None] = {}
    for loc in index.findall(f"{SITEMAP_NS}sitemap/{SITEMAP_NS}loc"):
        part = xml(site[loc.text.removeprefix(f"{BASE}/")])
        assert part.tag == f"{SITEMAP_NS}urlset"
        for u in part.findall(f"{SITEMAP_NS}url"):
            entries[u.findtext(f"{SITEMAP_NS}loc")] = u.findtext(f"{SITEMAP_NS}lastmod")
    return entries


def test_sitemap_lists_every_page_with_absolute_urls_and_lastmod(config: Config) -> None:
    entries = sitemap_entries(render(sample(config)))
    assert set(entries) == {
        f"{BASE}/",
        *(f"{BASE}/topics/{t}/" for t in TOPICS),
        *(f"{BASE}/releases/{r}/" for r in ("traffickers-caught", "an-op-ed", "with-files")),
    }
    assert entries[f"{BASE}/releases/an-op-ed/"] == "2026-11-20T10:00:00Z"
    assert entries[f"{BASE}/releases/with-files/"] == "2026-11-21T09:00:00Z"  # updated
    assert entries[f"{BASE}/topics/opinion/"] == "2026-11-20T10:00:00Z"
    assert entries[f"{BASE}/"] == "2026-11-21T09:00:00Z"


def test_release_sitemaps_hold_a_fixed_number_each_from_the_oldest(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "SITEMAP_SIZE", 2)
    snap = make(config, *(release(f"r{n}", hours=n) for n in range(5)))
    site = render(snap)
    index = xml(site[urls.SITEMAP]).findall(f"{SITEMAP_NS}sitemap/{SITEMAP_NS}loc")
    assert [loc.text for loc in index] == [
        f"{BASE}/sitemaps/pages.xml",
        *(f"{BASE}/sitemaps/releases-{n}.xml" for n in (1, 2, 3)),
    ]
    parts = [
        [u.findtext(f"{SITEMAP_NS}loc") for u in xml(site[f"sitemaps/releases-{n}.xml"])]
        for n in (1, 2, 3)
    ]
    assert parts == [[f"{BASE}/releases/r{n}/" for n in chunk] for chunk in ([0, 1], [2, 3], [4])]


def test_an_empty_site_builds_with_no_lastmod_on_empty_listings(config: Config) -> None:
    site = render(make(config))
    assert_consistent(site)
    assert set(sitemap_entries(site).values()) == {None}
    assert "sitemaps/releases-1.xml" not in site
    assert texts(html(site["index.html"]), "//*[@id='latest']/following-sibling::p") == [
        "No releases yet."
    ]


# --- fingerprints ---------------------------------------------------------------------------


def test_documents_are_not_rendered_until_asked(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_rendering() -> None:
        raise AssertionError("rendered")

    monkeypatch.setattr(pages, "_environment", no_rendering)
    docs = build(sample(config))
    assert all(len(doc.fingerprint) == 64 for doc in docs.values())
    with pytest.raises(AssertionError, match="rendered"):
        docs["index.html"].render()


Variant = Callable[[Config, list[Release]], tuple[Config, list[Release]]]


def _site(config: Config, **changes: Any) -> Config:
    return config.model_copy(update={"site": config.site.model_copy(update=changes)})


def _topic(config: Config, slug: str, **changes: Any) -> Config:
    topics = dict(config.topics)
    topics[slug] = topics[slug].model_copy(update=changes)
    return config.model_copy(update={"topics": topics})


def _edit(rid: str, **changes: Any) -> Callable[[list[Release]], list[Release]]:
    return lambda rs: [replace(r, **changes) if r.id == rid else r for r in rs]


VARIANTS: dict[str, Variant] = {
    "same data": lambda c, rs: (c, rs),
    "title": lambda c, rs: (c, _edit("an-op-ed", title="New title")(rs)),
    "body": lambda c, rs: (c, _edit("with-files", body_html="<p>New</p>")(rs)),
    "updated": lambda c, rs: (c, _edit("an-op-ed", updated=T0 + timedelta(days=3))(rs)),
    "categories": lambda c, rs: (c, _edit("an-op-ed", categories=("opinion", "ankara"))(rs)),
    "language": lambda c, rs: (c, _edit("an-op-ed", lang="tr")(rs)),
    "new release": lambda c, rs: (c, [release("newer", hours=9, categories=("ankara",)), *rs]),
    "release gone": lambda c, rs: (c, [r for r in rs if r.id != "traffickers-caught"]),
    "site title": lambda c, rs: (_site(c, title="Renamed"), rs),
    "base url": lambda c, rs: (_site(c, base_url="https://other.example/"), rs),
    "time zone": lambda c, rs: (_site(c, timezone="UTC"), rs),
    "rights": lambda c, rs: (_site(c, rights="© Us"), rs),
    "logo": lambda c, rs: (_site(c, logo="https://press.example.org/logo.png"), rs),
    "topic title": lambda c, rs: (_topic(c, "opinion", title="Views"), rs),
    "topic description": lambda c, rs: (_topic(c, "ankara", description="Capital"), rs),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_an_unchanged_fingerprint_means_unchanged_bytes(config: Config, variant: str) -> None:
    """The promise a build relies on to skip rendering: no false 'unchanged'."""
    before = sample(config)
    changed_config, releases = VARIANTS[variant](config, list(before.releases))
    after = make(changed_config, *releases)
    old, new = build(before), build(after)
    for path in old.keys() & new.keys():
        if old[path].fingerprint == new[path].fingerprint:
            assert old[path].render() == new[path].render(), path
        else:
            assert variant != "same data", path


def test_renaming_a_topic_changes_only_the_pages_that_show_its_title(config: Config) -> None:
    before = fingerprints(sample(config))
    after = fingerprints(make(_topic(config, "opinion", title="Views"), *sample(config).releases))
    changed = {path for path in before if before[path] != after[path]}
    assert changed == {
        "index.html",
        "topics/opinion/index.html",
        "releases/an-op-ed/index.html",
        "feeds.opml",
    }


# --- built from a real store ----------------------------------------------------------------

LATER = NOW + timedelta(hours=1)


def ingest_three(project: Path, config: Config, store: Store) -> None:
    content = project / "content"
    write_release(content, "caught.md", "title: Traffickers caught\npublished: 2026-11-20")
    write_release(content, "views.md", "title: Our view\npublished: 2026-11-21\nkind: op-ed")
    write_release(content, "capital.md", "title: News\npublished: 2026-11-22\ndateline: Ankara")
    ingest(config, store, NOW)


def test_fingerprints_are_stable_across_snapshots_of_the_same_store(
    project: Path, config: Config, store: Store
) -> None:
    ingest_three(project, config, store)
    first, second = snapshot(config, store, NOW), snapshot(config, store, LATER)
    assert fingerprints(first) == fingerprints(second)
    assert render(first) == render(second)


def test_editing_one_release_changes_only_the_pages_that_show_it(
    project: Path, config: Config, store: Store
) -> None:
    ingest_three(project, config, store)
    before = fingerprints(snapshot(config, store, NOW))
    write_release(
        project / "content",
        "caught.md",
        "title: Traffickers caught (corrected)\npublished: 2026-11-20",
    )
    ingest(config, store, LATER)
    after = fingerprints(snapshot(config, store, LATER))
    changed = {path for path in before if before[path] != after[path]}
    assert changed == {
        "releases/caught/index.html",
        "topics/all/index.html",
        "topics/trafficking/index.html",
        "index.html",
        "sitemaps/pages.xml",
        "sitemaps/releases-1.xml",
    }


def test_an_embargoed_release_appears_nowhere_until_its_embargo_passes(
    project: Path, config: Config, store: Store
) -> None:
    content = project / "content"
    write_release(content, "open.md", "title: Open\npublished: 2026-11-20")
    write_release(
        content,
        "secret.md",
        "title: Secret trafficking figures\npublished: 2026-11-20\nembargo: 2026-11-27T09:00",
    )
    ingest(config, store, NOW)
    lift = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)  # 09:00 in Istanbul
    before = render(snapshot(config, store, lift - timedelta(seconds=1)))
    assert [path for path, data in before.items() if b"secret" in data.lower()] == []
    after = render(snapshot(config, store, lift))
    showing = {path for path, data in after.items() if b"secret" in data.lower()}
    assert showing == {
        "releases/secret/index.html",
        "index.html",
        "topics/all/index.html",
        "topics/trafficking/index.html",
        "sitemaps/releases-1.xml",
    }


def test_a_retracted_release_appears_nowhere(project: Path, config: Config, store: Store) -> None:
    content = project / "content"
    write_release(content, "kept.md", "title: Kept\npublished: 2026-11-20")
    gone = write_release(content, "withdrawn.md", "title: Trafficking story\npublished: 2026-11-21")
    ingest(config, store, NOW)
    shown = render(snapshot(config, store, NOW))
    assert (
        "releases/withdrawn/index.html" in shown
        and b"withdrawn" in shown["sitemaps/releases-1.xml"]
    )
    gone.unlink()
    ingest(config, store, LATER)
    site = render(snapshot(config, store, LATER))
    assert [path for path, data in site.items() if b"withdrawn" in data] == []
    assert "releases/kept/index.html" in site


def test_the_sample_config_and_content_build_a_consistent_site(store: Store) -> None:
    config = load_config(ROOT / "config" / "syndicate.yaml", environ={})
    report = ingest(config, store, NOW)
    assert report.rejected == []
    site = render(snapshot(config, store, NOW))
    assert_consistent(site)
    releases = [path for path in site if path.startswith("releases/")]
    assert len(releases) == len(list((ROOT / "content" / "releases").glob("*.md")))
    outlines = xml(site[urls.OPML]).findall("body/outline")
    assert len(outlines) == 1 + len(config.topics)


def test_topic_pages_link_the_subscribe_form_when_a_list_carries_the_topic(
    project: Path, write_config: WriteConfig
) -> None:
    (project / "config" / "lists").mkdir()
    config = write_config(
        BASE_CONFIG
        + "lists:\n  weekly: {title: Weekly, schedule: '0 8 * * mon', topics: [trafficking]}\n"
    )
    rendered = render(sample(config))

    def subscribe_links(slug: str) -> list[str]:
        page = html(rendered[urls.file_for(urls.topic_page(slug))])
        return [str(a.get("href")) for a in page.xpath("//p[@class='subscribe']/a")]

    assert subscribe_links("trafficking") == [f"{BASE}/subscribe?topic=trafficking"]
    assert subscribe_links("all") == [f"{BASE}/subscribe"]
    assert subscribe_links("opinion") == []


def test_no_subscribe_link_without_lists(config: Config) -> None:
    page = html(render(sample(config))[urls.file_for(urls.topic_page("trafficking"))])
    assert page.xpath("//p[@class='subscribe']") == []


# --- long topics: the current releases, then archive pages -------------------------------------


def resolved(page: str, link: str) -> str:
    return urlsplit(urljoin(f"http://site/{page}", link)).path.removeprefix("/")


def paged(config: Config, count: int) -> Snapshot:
    """`count` releases, one an hour, with feeds of 3 and archives of 10."""
    conf = config.model_copy(
        update={"feeds": config.feeds.model_copy(update={"limit": 3, "archive_size": 10})}
    )
    return make(
        conf, *(release(f"r{n:02d}", hours=n, categories=("opinion",)) for n in range(count))
    )


def test_a_topic_page_lists_what_its_current_feed_holds_and_links_older_releases(
    config: Config,
) -> None:
    site = render(paged(config, 25))
    page = html(site["topics/opinion/index.html"])
    assert texts(page, "//ol[@class='releases']//h3") == [f"R{n:02d}" for n in range(24, 19, -1)]
    [older] = page.xpath("//p[@class='older']/a")
    assert resolved("topics/opinion/", older.get("href")) == "topics/opinion/archive/2/"
    assert_consistent(site)


def test_archive_pages_hold_the_feed_archives_releases_and_chain_to_the_topic_page(
    config: Config,
) -> None:
    site = render(paged(config, 25))
    first, second = (html(site[f"topics/opinion/archive/{n}/index.html"]) for n in (1, 2))
    assert texts(first, "//ol[@class='releases']//h3") == [f"R{n:02d}" for n in range(9, -1, -1)]
    assert texts(second, "//ol[@class='releases']//h3") == [f"R{n:02d}" for n in range(19, 9, -1)]
    assert texts(first, "//h1") == ["Opinion: releases 1–10"]
    links = {
        n: [resolved(f"topics/opinion/archive/{n}/", a.get("href")) for a in page.xpath("//nav//a")]
        for n, page in ((1, first), (2, second))
    }
    assert links == {
        1: ["topics/opinion/archive/2/"],
        2: ["topics/opinion/", "topics/opinion/archive/1/"],
    }
    assert "topics/opinion/archive/3/index.html" not in site


def test_a_short_topic_has_no_archive_pages(config: Config) -> None:
    site = render(paged(config, 9))
    assert not [path for path in site if "/archive/" in path and path.startswith("topics/")]
    assert not html(site["topics/opinion/index.html"]).xpath("//p[@class='older']")


def test_a_new_archive_page_leaves_older_ones_alone(config: Config) -> None:
    before, after = fingerprints(paged(config, 29)), fingerprints(paged(config, 30))
    changed = {path for path in after if before.get(path) != after[path]}
    assert "topics/opinion/archive/1/index.html" not in changed
    assert {"topics/opinion/archive/2/index.html", "topics/opinion/archive/3/index.html"} <= changed
