"""Store → per-topic RSS 2.0 and Atom 1.0 (feedgen) and JSON Feed 1.1 documents, with
RFC 5005 archives so a reader can backfill the whole history.

Entries are ordered by the moment they became public, so a release whose embargo lifts today
is new today even if it was written last week. Archive n holds entries (n-1)*size+1 … n*size
counting from the oldest, so a full archive never changes unless one of its releases does.
The current document holds the latest `limit` entries, or more when more have not yet been
archived: no entry is ever out of a reader's reach.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedEntry, FeedGenerator
from lxml import etree

from syndicate import __version__
from syndicate.model import Release
from syndicate.output import Document, Snapshot, topic_heading
from syndicate.sanitize import defuse_script_text
from syndicate.urls import FORMATS, MEDIA_TYPES, absolute, archive, domain, feed, topic_page

VERSION = f"feeds-4/{__version__}"  # bump when the rendered bytes change for the same input
ATOM_NS = "http://www.w3.org/2005/Atom"
HISTORY_NS = "http://purl.org/syndication/history/1.0"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# The `updated` of a feed without entries: fixed, so its bytes stay the same, and after 1990,
# before which the W3C validator calls a date implausible.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
GENERATOR_URI = "https://pypi.org/project/syndicate/"
_END_TAG = re.compile(r"</[A-Za-z][A-Za-z0-9]*>")


@dataclass(frozen=True, slots=True)
class Page:
    """One feed document: its entries (newest first) and its place in the archive chain."""

    topic: str
    lang: str | None
    entries: Sequence[Release]
    number: int | None  # None: the current document; else the archive number (1 = oldest)
    archives: int  # how many archive documents this topic has

    def path(self, fmt: str) -> str:
        if self.number is None:
            return feed(self.topic, fmt, self.lang)
        return archive(self.topic, self.number, fmt, self.lang)


def pages(
    topic: str, lang: str | None, releases: Sequence[Release], limit: int, size: int
) -> list[Page]:
    """Split a topic's releases into the current document and its archives (pure)."""
    oldest_first = sorted(releases, key=lambda r: (r.public_from, r.id))
    full = len(oldest_first) // size
    chunks = [oldest_first[i * size : (i + 1) * size] for i in range(full)]
    current = oldest_first[-max(limit, len(oldest_first) - full * size) :] if oldest_first else []
    result = [Page(topic, lang, current[::-1], None, full)]
    result += [Page(topic, lang, chunk[::-1], n, full) for n, chunk in enumerate(chunks, 1)]
    return result


def tag_uri(base_url: str, release: Release) -> str:
    """The entry id readers key on: stable when the title or URL changes (RFC 4151)."""
    return f"tag:{domain(base_url)},{release.published.year}:{release.id}"


def documents(snapshot: Snapshot) -> Iterator[Document]:
    """Every feed document: each topic (and 'all'), per language when there are several."""
    settings = snapshot.config.feeds
    now = snapshot.now
    if not all(r.is_public(now) for r in snapshot.releases):  # never trust a caller with an embargo
        snapshot = dataclasses.replace(
            snapshot, releases=[r for r in snapshot.releases if r.is_public(now)]
        )
    for lang in [None, *snapshot.languages]:
        for topic in snapshot.topics:
            releases = [r for r in snapshot.topic(topic) if lang is None or r.lang == lang]
            for page in pages(topic, lang, releases, settings.limit, settings.archive_size):
                base = _fingerprint(snapshot, page)
                for fmt in FORMATS:
                    yield Document(page.path(fmt), f"{base}:{fmt}", _renderer(snapshot, page, fmt))


def _fingerprint(snapshot: Snapshot, page: Page) -> str:
    config = snapshot.config
    topic = config.topics.get(page.topic)
    digest = hashlib.sha256()
    parts: list[Any] = [
        VERSION,
        config.site.model_dump(mode="json"),
        config.feeds.model_dump(mode="json"),
        topic.model_dump(mode="json") if topic else None,
        page.topic,
        page.lang,
        page.number,
        page.archives,
        [(t, c.title) for t, c in config.topics.items()],
    ]
    digest.update(json.dumps(parts, sort_keys=True, default=str).encode())
    for r in page.entries:
        digest.update(
            f"\n{r.id}|{snapshot.content_hash(r)}|{r.categories}|{r.public_from}|"
            f"{r.updated}".encode()
        )
    return digest.hexdigest()


def _renderer(snapshot: Snapshot, page: Page, fmt: str) -> Any:
    def render() -> bytes:
        if fmt == "json":
            return _json_feed(snapshot, page)
        generator = _feedgen(snapshot, page, fmt)
        xml = generator.rss_str(pretty=True) if fmt == "rss" else generator.atom_str(pretty=True)
        return _hex_references(xml)

    return render


def _hex_references(xml: bytes) -> bytes:
    """'&' and '<' in text as &#x26; and &#x3C;: the same XML, but feed validators stop
    taking escaped text in plain-text elements (titles) for HTML."""
    return xml.replace(b"&amp;", b"&#x26;").replace(b"&lt;", b"&#x3C;")


class _History(BaseExtension):  # type: ignore[misc]
    """RFC 5005 archive links and the fh:archive marker; RSS gets its links as atom:link."""

    def __init__(self) -> None:
        self.links: list[dict[str, str]] = []
        self.is_archive = False

    def extend_ns(self) -> dict[str, str]:
        return {"fh": HISTORY_NS} if self.is_archive else {}

    def extend_rss(self, rss: etree._Element) -> etree._Element:
        channel = rss[0]
        for link in self.links:
            etree.SubElement(channel, f"{{{ATOM_NS}}}link", link)
        if self.is_archive:
            etree.SubElement(channel, f"{{{HISTORY_NS}}}archive")
        return rss

    def extend_atom(self, atom: etree._Element) -> etree._Element:
        if self.is_archive:
            etree.SubElement(atom, f"{{{HISTORY_NS}}}archive")
        return atom


class _Entry(BaseEntryExtension):  # type: ignore[misc]
    """What feedgen 1.0.0 leaves out of an Atom entry: the attributes of its links (it writes
    only href, so an enclosure would become a second alternate link) and xml:lang when the
    entry's language differs from the feed's."""

    lang: str | None = None

    def __init__(self) -> None:
        self.links: list[dict[str, str]] = []

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        for element, link in zip(entry.iterfind("link"), self.links, strict=True):
            element.attrib.update(link)
        if self.lang:
            entry.set(XML_LANG, self.lang)
        return entry


def _title(snapshot: Snapshot, page: Page) -> tuple[str, str]:
    site = snapshot.config.site
    name, description = topic_heading(snapshot.config, page.topic)
    description = description or f"{name} from {site.title}"
    suffix = f" ({page.lang})" if page.lang else ""
    return f"{site.title} — {name}{suffix}", description


def _changed(release: Release) -> datetime:
    """When readers last saw the entry change: a correction made while the release was still
    under embargo dates from the lift, never from before its publication."""
    if release.updated is None:
        return release.public_from
    return max(release.updated, release.public_from)


def _archive_links(base: str, page: Page, fmt: str) -> list[dict[str, str]]:
    media = MEDIA_TYPES[fmt]
    links = []
    if page.number is not None:
        links.append(
            {
                "rel": "current",
                "href": absolute(base, feed(page.topic, fmt, page.lang)),
                "type": media,
            }
        )
    previous = page.archives if page.number is None else page.number - 1
    if previous >= 1:
        links.append(
            {
                "rel": "prev-archive",
                "href": absolute(base, archive(page.topic, previous, fmt, page.lang)),
                "type": media,
            }
        )
    if page.number is not None:
        # The newest archive leads on to the current document: the W3C validator warns about an
        # archive with neither a prev- nor a next-archive link, which a lone archive would be.
        following = (
            feed(page.topic, fmt, page.lang)
            if page.number == page.archives
            else archive(page.topic, page.number + 1, fmt, page.lang)
        )
        links.append({"rel": "next-archive", "href": absolute(base, following), "type": media})
    return links


def _feedgen(snapshot: Snapshot, page: Page, fmt: str) -> FeedGenerator:
    config = snapshot.config
    site, base = config.site, config.site.base_url
    title, description = _title(snapshot, page)
    home = absolute(base, topic_page(page.topic))
    generator = FeedGenerator()
    generator.load_extension("dc", atom=False, rss=True)
    generator.register_extension("history", _History, _Entry)
    # Every document its own id: the per-language feeds share their HTML page with the others.
    generator.id(absolute(base, page.path("atom")))
    generator.title(title)
    generator.subtitle(description)
    generator.author({"name": site.title, "uri": f"{base}/"})
    generator.language(page.lang or site.language)
    # The newest entry change, never the build time: an unchanged feed stays byte-identical.
    updated = _distinct_updated(page.entries)
    generator.updated(max(updated.values(), default=EPOCH))
    generator.lastBuildDate(max(updated.values(), default=EPOCH))
    generator.generator("syndicate", __version__, GENERATOR_URI)
    if site.rights:
        generator.rights(site.rights)
    if site.icon:
        generator.icon(site.icon)
    if site.logo:
        generator.logo(site.logo)
    # The RSS channel <link> is the last link added: self first, the HTML page last.
    generator.link(href=absolute(base, page.path(fmt)), rel="self", type=MEDIA_TYPES[fmt])
    history = generator.history
    for hub in config.feeds.websub_hubs:
        generator.link(href=hub, rel="hub")
        history.links.append({"rel": "hub", "href": hub})
    for link in _archive_links(base, page, fmt):
        generator.link(**link)
        history.links.append(link)
    history.is_archive = page.number is not None
    generator.link(href=home, rel="alternate", type="text/html")
    for release in page.entries:
        entry = generator.add_entry(order="append")
        _entry(entry, release, updated[release.id], snapshot, page, fmt)
    return generator


def _distinct_updated(entries: Sequence[Release]) -> dict[str, datetime]:
    """Each entry's `updated`, one microsecond apart where several changed at the same
    instant (a bulk import, releases dated by day): Atom readers and validators take two
    entries with the same `updated` for one entry twice. The earliest id keeps the instant."""
    taken: set[datetime] = set()
    result = {}
    for release in sorted(entries, key=lambda r: (_changed(r), r.id)):
        moment = _changed(release)
        while moment in taken:
            moment += timedelta(microseconds=1)
        taken.add(moment)
        result[release.id] = moment
    return result


def _summary(release: Release) -> str:
    if release.dateline and release.summary:
        return f"{release.dateline} – {release.summary}"
    return release.summary or release.title


def _entry(
    entry: FeedEntry,
    release: Release,
    updated: datetime,
    snapshot: Snapshot,
    page: Page,
    fmt: str,
) -> None:
    config = snapshot.config
    base = config.site.base_url
    entry.id(tag_uri(base, release))
    entry.guid(tag_uri(base, release), permalink=False)
    entry.title(release.title)
    links = [{"href": release.url, "rel": "alternate", "type": "text/html"}]
    if fmt == "atom":
        links += [
            {
                "href": a.url,
                "rel": "enclosure",
                "type": a.media_type,
                "length": str(a.length),
                **({"title": a.title} if a.title else {}),
            }
            for a in release.attachments
        ]
    entry.link(links)
    entry.history.links = links
    entry.published(release.public_from)
    entry.updated(updated)
    # An RSS description is HTML: a plain-text summary must not turn '<s>' into markup there.
    # In Atom it is text, unless it holds what reads as an end tag ('</b>', from escaped
    # markup in a body): validators take such text for HTML, so it goes as escaped HTML.
    summary = _summary(release)
    if fmt == "rss":
        entry.summary(defuse_script_text(html.escape(summary, quote=False)))
    elif _END_TAG.search(summary):
        entry.summary(defuse_script_text(html.escape(summary, quote=False)), type="html")
    else:
        entry.summary(summary)
    if release.body_html:
        entry.content(release.body_html, type="html")
    if release.author:
        entry.author({"name": release.author})
        entry.dc.dc_creator(release.author)
    for slug, title in _categories(release, snapshot):
        entry.category(term=slug, label=title, scheme=absolute(base, "topics/"))
    if fmt == "rss" and release.attachments:  # RSS allows one enclosure per item
        first = release.attachments[0]
        entry.enclosure(first.url, str(first.length), first.media_type)
    language = page.lang or config.site.language
    if release.lang != language:
        entry.history.lang = release.lang
        entry.dc.dc_language(release.lang)


def _categories(release: Release, snapshot: Snapshot) -> list[tuple[str, str]]:
    """(slug, title) of the release's topics that are still configured: a topic removed from
    the config stays in the store until the next reclassification."""
    topics = snapshot.config.topics
    return [(slug, topics[slug].title) for slug in release.categories if slug in topics]


def _json_feed(snapshot: Snapshot, page: Page) -> bytes:
    config = snapshot.config
    site, base = config.site, config.site.base_url
    title, description = _title(snapshot, page)
    document: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "home_page_url": absolute(base, topic_page(page.topic)),
        "feed_url": absolute(base, page.path("json")),
        "description": description,
        "language": page.lang or site.language,
        "authors": [{"name": site.title, "url": f"{base}/"}],
    }
    if site.icon:
        document["icon"] = site.icon
    if config.feeds.websub_hubs:
        document["hubs"] = [{"type": "WebSub", "url": hub} for hub in config.feeds.websub_hubs]
    older = page.archives if page.number is None else page.number - 1
    if older >= 1:  # JSON Feed pages towards older items with next_url
        document["next_url"] = absolute(base, archive(page.topic, older, "json", page.lang))
    if page.number is not None:
        document["expired"] = False
    document["items"] = [_json_item(r, snapshot) for r in page.entries]
    # Compact: an indented dump runs in pure Python and costs more than the feed itself.
    return (json.dumps(document, ensure_ascii=False) + "\n").encode()


def _json_item(release: Release, snapshot: Snapshot) -> dict[str, Any]:
    config = snapshot.config
    item: dict[str, Any] = {
        "id": tag_uri(config.site.base_url, release),
        "url": release.url,
        "title": release.title,
        "summary": _summary(release),
        "date_published": release.public_from.isoformat(),
        "date_modified": _changed(release).isoformat(),
        "language": release.lang,
        "tags": [title for _, title in _categories(release, snapshot)],
        "_syndicate": {
            "topics": [slug for slug, _ in _categories(release, snapshot)],
            "kind": str(release.kind),
            "dateline": release.dateline,
        },
    }
    if release.body_html:
        item["content_html"] = release.body_html
    else:
        item["content_text"] = release.summary or release.title
    if release.author:
        item["authors"] = [{"name": release.author}]
    if release.attachments:
        item["attachments"] = [
            {
                "url": a.url,
                "mime_type": a.media_type,
                "size_in_bytes": a.length,
                **({"title": a.title} if a.title else {}),
            }
            for a in release.attachments
        ]
    return item
