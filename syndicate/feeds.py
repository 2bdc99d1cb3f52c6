"""Store → per-topic RSS 2.0 and Atom 1.0 and JSON Feed 1.1 documents, with RFC 5005 archives
so a reader can backfill the whole history.

Entries are ordered by the moment they became public, so a release whose embargo lifts today
is new today even if it was written last week. Archive n holds entries (n-1)*size+1 … n*size
counting from the oldest, so a full archive never changes unless one of its releases does.
The current document holds the latest `limit` entries, or more when more have not yet been
archived: no entry is ever out of a reader's reach.

feedgen makes each document's envelope (the channel or feed element and everything in it
but the entries). The entries, most of the bytes, are written here as text: exactly the
bytes feedgen and lxml would serialise for them (tests/feedref.py is that reference, and the
tests compare both), at a tenth of the cost.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from feedgen.ext.base import BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from syndicate import __version__
from syndicate.config import Config
from syndicate.model import Release
from syndicate.output import Document, Page, Scope, Snapshot, Stream, as_scope, split, topic_heading
from syndicate.sanitize import defuse_script_text
from syndicate.text import END_TAG
from syndicate.urls import FORMATS, MEDIA_TYPES, absolute, archive, domain, feed, topic_page

VERSION = f"feeds-6/{__version__}"  # bump when the rendered bytes change for the same input
ATOM_NS = "http://www.w3.org/2005/Atom"
HISTORY_NS = "http://purl.org/syndication/history/1.0"
# The `updated` of a feed without entries: fixed, so its bytes stay the same, and after 1990,
# before which the W3C validator calls a date implausible.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
GENERATOR_URI = "https://pypi.org/project/syndicate/"

__all__ = ["Page", "documents", "pages", "tag_uri"]


def pages(
    topic: str, lang: str | None, releases: Sequence[Release], limit: int, size: int
) -> list[Page]:
    """Split a topic's releases into the current document and its archives (pure)."""
    oldest_first = sorted(releases, key=lambda r: (r.public_from, r.id))
    return split(Stream(topic, lang, len(oldest_first), 0, oldest_first), limit, size)


def tag_uri(base_url: str, release: Release) -> str:
    """The entry id readers key on: stable when the title or URL changes (RFC 4151)."""
    return _tag(domain(base_url), release)


def _tag(domain: str, release: Release) -> str:
    return f"tag:{domain},{release.published.year}:{release.id}"


def documents(source: Snapshot | Scope) -> Iterator[Document]:
    """The feed documents of the scope's streams: each topic (and 'all'), per language when
    there are several; the current document of each, and its archives from the first one the
    scope holds."""
    scope = as_scope(source)
    context = _Context(scope.config)
    settings = scope.config.feeds
    for stream in scope.streams:
        for page in split(stream, settings.limit, settings.archive_size):
            base = _fingerprint(scope, context, page)
            for fmt in FORMATS:
                render = partial(_render, context, page, fmt)
                yield Document(page.path(fmt), f"{base}:{fmt}", render)


class _Context:
    """What every document of one build shares, worked out once."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.base = config.site.base_url
        self.domain = domain(self.base)
        self.scheme = absolute(self.base, "topics/")
        self.titles = {slug: topic.title for slug, topic in config.topics.items()}
        self.settings = json.dumps(
            [
                VERSION,
                config.site.model_dump(mode="json"),
                config.feeds.model_dump(mode="json"),
                list(self.titles.items()),
            ],
            sort_keys=True,
            default=str,
        )
        self.checked: set[str] = set()
        self.topic_settings = {
            slug: json.dumps(topic.model_dump(mode="json"), sort_keys=True)
            for slug, topic in config.topics.items()
        }

    def check(self, release: Release) -> None:
        """Refuse, as lxml would, text that XML cannot hold; once per release and build."""
        if release.id in self.checked:
            return
        a = release.attachments
        texts = [release.id, release.title, release.url, release.lang, release.summary]
        texts += [release.body_html, release.author or "", release.dateline or ""]
        texts += [field for x in a for field in (x.url, x.media_type, x.title)]
        if any(_INVALID.search(text) for text in texts):
            raise ValueError(
                "All strings must be XML compatible: Unicode or ASCII, no NULL bytes or "
                f"control characters (release {release.id!r})"
            )
        self.checked.add(release.id)

    def categories(self, release: Release) -> list[tuple[str, str]]:
        """(slug, title) of the release's topics that are still configured: a topic removed
        from the config stays in the store until the next reclassification."""
        titles = self.titles
        return [(slug, titles[slug]) for slug in release.categories if slug in titles]

    def tag(self, release: Release) -> str:  # tag_uri, with the domain worked out once
        return _tag(self.domain, release)


def _fingerprint(scope: Scope, context: _Context, page: Page) -> str:
    digest = hashlib.sha256(context.settings.encode())
    where = [page.topic, page.lang, page.number, page.navigation]
    digest.update(f"\0{context.topic_settings.get(page.topic)}\0{where}".encode())
    for r in page.entries:
        digest.update(
            f"\n{r.id}|{scope.content_hash(r)}|{r.categories}|{r.public_from}|{r.updated}".encode()
        )
    return digest.hexdigest()


def _render(context: _Context, page: Page, fmt: str) -> bytes:
    if fmt == "json":
        return _json_feed(context, page)
    updated = _distinct_updated(page.entries)
    newest = max(updated.values(), default=EPOCH)
    generator = _envelope(context, page, fmt, newest)
    if fmt == "rss":
        envelope, closing = generator.rss_str(pretty=True), b"  </channel>\n</rss>\n"
        entry = _rss_item
    else:
        envelope, closing = generator.atom_str(pretty=True), b"</feed>\n"
        entry = _atom_entry
    envelope = _hex_references(envelope)
    if not envelope.endswith(closing):  # feedgen's layout changed: nowhere to put entries
        raise RuntimeError(f"unexpected {fmt} envelope from feedgen")
    language = page.lang or context.config.site.language
    body = "".join(entry(context, r, updated[r.id], language) for r in page.entries)
    return envelope[: -len(closing)] + body.encode() + closing


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


def _title(config: Config, page: Page) -> tuple[str, str]:
    site = config.site
    name, description = topic_heading(config, page.topic)
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


def _envelope(context: _Context, page: Page, fmt: str, updated: datetime) -> FeedGenerator:
    """Everything of the document but its entries. `updated`: the newest entry change, never
    the build time, so an unchanged feed stays byte-identical."""
    config = context.config
    site, base = config.site, config.site.base_url
    title, description = _title(config, page)
    home = absolute(base, topic_page(page.topic))
    generator = FeedGenerator()
    generator.load_extension("dc", atom=False, rss=True)
    generator.register_extension("history", _History)
    # Every document its own id: the per-language feeds share their HTML page with the others.
    generator.id(absolute(base, page.path("atom")))
    generator.title(title)
    generator.subtitle(description)
    generator.author({"name": site.title, "uri": f"{base}/"})
    generator.language(page.lang or site.language)
    generator.updated(updated)
    generator.lastBuildDate(updated)
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


# --- entries as text ----------------------------------------------------------------------------
# lxml escapes '&', '<', '>' and CR in text, and also '"', TAB and LF in attribute values;
# _hex_references then writes '&amp;' and '&lt;' as hex references. Here both steps are one.

_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _text(value: str) -> str:
    """Text content as lxml writes it, hex references included (_Context.check vouches that
    it holds nothing XML refuses)."""
    value = value.replace("&", "&#x26;").replace("<", "&#x3C;").replace(">", "&gt;")
    return value.replace("\r", "&#13;") if "\r" in value else value


def _attr(value: str) -> str:
    value = _text(value).replace('"', "&quot;")
    if "\t" in value or "\n" in value:
        value = value.replace("\t", "&#9;").replace("\n", "&#10;")
    return value


def _element(indent: str, name: str, text: str | None, attributes: str = "") -> str:
    """One element with text content, as lxml pretty-prints it (no text: self-closing)."""
    if not text:
        return f"{indent}<{name}{attributes}/>\n"
    return f"{indent}<{name}{attributes}>{_text(text)}</{name}>\n"


def _rfc2822(moment: datetime) -> str:
    """feedgen's RFC 822 date: strftime('%a, %d %b %Y %H:%M:%S %z') in the C locale."""
    return (
        f"{_DAYS[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} "
        f"{moment.year} {moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} "
        f"{moment.strftime('%z')}"
    )


def _atom_entry(context: _Context, release: Release, updated: datetime, language: str) -> str:
    """What feedgen's atom_entry() plus the _Entry extension of old made: its links carry
    every attribute (feedgen writes only href), and xml:lang when the entry's language is
    not the feed's."""
    context.check(release)
    if not release.title:
        raise ValueError("Required fields not set")
    lang = f' xml:lang="{_attr(release.lang)}"' if release.lang != language else ""
    out = [
        f"  <entry{lang}>\n",
        _element("    ", "id", context.tag(release)),
        _element("    ", "title", release.title),
        f"    <updated>{updated.isoformat()}</updated>\n",
    ]
    if release.author:
        out.append(f"    <author>\n      <name>{_text(release.author)}</name>\n    </author>\n")
    if release.body_html:
        out.append(_element("    ", "content", release.body_html, ' type="html"'))
    out.append(f'    <link href="{_attr(release.url)}" rel="alternate" type="text/html"/>\n')
    for a in release.attachments:
        title = f' title="{_attr(a.title)}"' if a.title else ""
        out.append(
            f'    <link href="{_attr(a.url)}" rel="enclosure" type="{_attr(a.media_type)}" '
            f'length="{a.length}"{title}/>\n'
        )
    # Text, unless it holds what reads as an end tag ('</b>', from escaped markup in a body):
    # validators take such text for HTML, so it goes as escaped HTML.
    summary = _summary(release)
    if END_TAG.search(summary):
        escaped = defuse_script_text(html.escape(summary, quote=False))
        out.append(_element("    ", "summary", escaped, ' type="html"'))
    else:
        out.append(_element("    ", "summary", summary))
    scheme = _attr(context.scheme)
    for slug, title in context.categories(release):
        label = f' label="{_attr(title)}"' if title else ""
        out.append(f'    <category term="{_attr(slug)}" scheme="{scheme}"{label}/>\n')
    out.append(f"    <published>{release.public_from.isoformat()}</published>\n")
    out.append("  </entry>\n")
    return "".join(out)


def _rss_item(context: _Context, release: Release, updated: datetime, language: str) -> str:
    """What feedgen's rss_entry() plus its Dublin Core extension made."""
    context.check(release)
    out = ["    <item>\n"]
    if release.title:
        out.append(_element("      ", "title", release.title))
    if release.url:
        out.append(_element("      ", "link", release.url))
    # An RSS description is HTML: a plain-text summary must not turn '<s>' into markup there.
    description = defuse_script_text(html.escape(_summary(release), quote=False))
    if description:
        out.append(_element("      ", "description", description))
        if release.body_html:
            out.append(_element("      ", "content:encoded", release.body_html))
    elif release.body_html:
        out.append(_element("      ", "description", release.body_html))
    elif not release.title:
        raise ValueError("Required fields not set")
    out.append(_element("      ", "guid", context.tag(release), ' isPermaLink="false"'))
    scheme = _attr(context.scheme)
    for slug, title in context.categories(release):
        out.append(_element("      ", "category", title or slug, f' domain="{scheme}"'))
    if release.attachments:  # RSS allows one enclosure per item
        first = release.attachments[0]
        out.append(
            f'      <enclosure url="{_attr(first.url)}" length="{first.length}" '
            f'type="{_attr(first.media_type)}"/>\n'
        )
    out.append(f"      <pubDate>{_rfc2822(release.public_from)}</pubDate>\n")
    if release.author:
        out.append(_element("      ", "dc:creator", release.author))
    if release.lang != language:
        out.append(_element("      ", "dc:language", release.lang))
    out.append("    </item>\n")
    return "".join(out)


# --- JSON Feed ----------------------------------------------------------------------------------


def _json_feed(context: _Context, page: Page) -> bytes:
    config = context.config
    site, base = config.site, config.site.base_url
    title, description = _title(config, page)
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
    document["items"] = [_json_item(context, r) for r in page.entries]
    # Compact: an indented dump runs in pure Python and costs more than the feed itself.
    return (json.dumps(document, ensure_ascii=False) + "\n").encode()


def _json_item(context: _Context, release: Release) -> dict[str, Any]:
    categories = context.categories(release)
    item: dict[str, Any] = {
        "id": context.tag(release),
        "url": release.url,
        "title": release.title,
        "summary": _summary(release),
        "date_published": release.public_from.isoformat(),
        "date_modified": _changed(release).isoformat(),
        "language": release.lang,
        "tags": [title for _, title in categories],
        "_syndicate": {
            "topics": [slug for slug, _ in categories],
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
