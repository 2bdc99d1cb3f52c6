"""The reference for feed bytes: every entry built with feedgen, as syndicate did before it
wrote entries as text. syndicate/feeds.py must produce exactly these bytes (test_feeds.py
compares them over varied and random releases)."""

from __future__ import annotations

import html
from datetime import datetime

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedEntry
from lxml import etree

from syndicate import feeds
from syndicate.config import Config
from syndicate.model import Release
from syndicate.output import Page
from syndicate.sanitize import defuse_script_text
from syndicate.text import END_TAG
from syndicate.urls import absolute

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


class _Entry(BaseEntryExtension):  # type: ignore[misc]
    """What feedgen 1.0.0 leaves out of an Atom entry: the attributes of its links (it writes
    only href) and xml:lang when the entry's language differs from the feed's."""

    lang: str | None = None

    def __init__(self) -> None:
        self.links: list[dict[str, str]] = []

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        for element, link in zip(entry.iterfind("link"), self.links, strict=True):
            element.attrib.update(link)
        if self.lang:
            entry.set(XML_LANG, self.lang)
        return entry


def render(config: Config, page: Page, fmt: str) -> bytes:
    """An RSS or Atom document wholly made by feedgen."""
    updated = feeds._distinct_updated(page.entries)
    newest = max(updated.values(), default=feeds.EPOCH)
    context = feeds._Context(config)
    generator = feeds._envelope(context, page, fmt, newest)
    generator.register_extension("entry", BaseExtension, _Entry)
    for release in page.entries:
        entry = generator.add_entry(order="append")
        _entry(entry, release, updated[release.id], config, page, fmt)
    xml = generator.rss_str(pretty=True) if fmt == "rss" else generator.atom_str(pretty=True)
    return feeds._hex_references(xml)


def _entry(
    entry: FeedEntry, release: Release, updated: datetime, config: Config, page: Page, fmt: str
) -> None:
    base = config.site.base_url
    entry.id(feeds.tag_uri(base, release))
    entry.guid(feeds.tag_uri(base, release), permalink=False)
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
    entry.entry.links = links
    entry.published(release.public_from)
    entry.updated(updated)
    summary = feeds._summary(release)
    if fmt == "rss":
        entry.summary(defuse_script_text(html.escape(summary, quote=False)))
    elif END_TAG.search(summary):
        entry.summary(defuse_script_text(html.escape(summary, quote=False)), type="html")
    else:
        entry.summary(summary)
    if release.body_html:
        entry.content(release.body_html, type="html")
    if release.author:
        entry.author({"name": release.author})
        entry.dc.dc_creator(release.author)
    topics = config.topics
    for slug in release.categories:
        if slug in topics:
            entry.category(term=slug, label=topics[slug].title, scheme=absolute(base, "topics/"))
    if fmt == "rss" and release.attachments:
        first = release.attachments[0]
        entry.enclosure(first.url, str(first.length), first.media_type)
    language = page.lang or config.site.language
    if release.lang != language:
        entry.entry.lang = release.lang
        entry.dc.dc_language(release.lang)
