"""The public pages: an index of topics, a page per topic (the releases of its current feed)
and per feed archive, a permalink per release, the OPML list of every feed, a sitemap index
and its sitemaps, a 404 page and the stylesheet, rendered with Jinja.

Each page is decided first (which template, which inputs) and rendered only on demand. The
template receives exactly the inputs its fingerprint hashes, plus pure helpers of them, so a
page whose fingerprint did not change cannot render differently and a build may skip it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from functools import cache, lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo

from jinja2 import DictLoader, Environment, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from syndicate import urls
from syndicate.config import Config
from syndicate.model import Attachment, Kind, Release
from syndicate.output import (
    Document,
    Scope,
    Snapshot,
    as_scope,
    placement_note,
    split,
    topic_heading,
)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "site"
STYLESHEET_SOURCE = "style.css"
SITEMAP_SIZE = 2000  # release pages per sitemap

FORMAT_NAMES = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}
KIND_LABELS = {
    Kind.PRESS_RELEASE: "Press release",
    Kind.OP_ED: "Op-ed",
    Kind.STATEMENT: "Statement",
    Kind.NEWS: "News",
}
MEDIA_LABELS = {
    "application/pdf": "PDF",
    "application/msword": "Word",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word",
    "application/vnd.ms-excel": "Excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Excel",
    "application/zip": "ZIP",
}
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True, slots=True)
class SiteView:
    """The parts of `site:` that pages show; nothing else of the config reaches a template."""

    title: str
    base_url: str
    language: str
    timezone: str
    rights: str | None
    icon: str | None
    logo: str | None


@dataclass(frozen=True, slots=True)
class TopicView:
    slug: str
    title: str
    description: str


@dataclass(frozen=True, slots=True)
class TopicCard:
    """A topic as the index lists it."""

    topic: TopicView
    count: int


def documents(source: Snapshot | Scope) -> Iterator[Document]:
    """The pages of the scope, cheap to fingerprint; bytes are rendered on demand. The index
    notes the build's state; each release page notes where its release appeared."""
    scope = as_scope(source)
    config = scope.config
    site = _site(config)
    topics = _topics(config)
    keys = _Keys(scope)

    def page(path: str, template: str, note: str = "", **inputs: Any) -> Document:
        return _document(keys, urls.file_for(path), template, path, note, site=site, **inputs)

    offered = {t for lst in config.lists.values() if lst.self_service for t in lst.topics}
    cards = [TopicCard(t, sum(scope.counts.get(t.slug, {}).values())) for t in topics]
    yield page(
        urls.INDEX,
        "index.html",
        scope.state().note(),
        topics=cards,
        latest=list(scope.latest),
    )
    by_slug = {t.slug: t for t in topics}
    settings = config.feeds
    for stream in scope.streams:
        if stream.lang is not None:
            continue
        topic = by_slug[stream.topic]
        present = scope.counts.get(topic.slug, {})
        for chunk in split(stream, settings.limit, settings.archive_size):
            if chunk.number is None:
                yield page(
                    urls.topic_page(topic.slug),
                    "topic.html",
                    topic=topic,
                    releases=list(chunk.entries),
                    languages=[lang for lang in scope.languages if present.get(lang)],
                    subscribe=_subscribe_url(config.site.base_url, topic.slug, offered),
                    older=urls.topic_archive(topic.slug, chunk.archives) if chunk.archives else "",
                )
                continue
            number = chunk.number
            yield page(
                urls.topic_archive(topic.slug, number),
                "archive.html",
                topic=topic,
                releases=list(chunk.entries),
                number=number,
                first=(number - 1) * settings.archive_size + 1,
                last=number * settings.archive_size,
                newer=(
                    urls.topic_page(topic.slug)
                    if number == chunk.archives
                    else urls.topic_archive(topic.slug, number + 1)
                ),
                older=urls.topic_archive(topic.slug, number - 1) if number > 1 else "",
            )
    for release in scope.releases:
        note = placement_note(
            release.public_from,
            release.lang,
            config.configured_topics(release.categories),
            scope.content_hash(release),
            release.updated,
        )
        yield page(
            urls.release_page(release.id),
            "release.html",
            note,
            release=release,
            all_topic=topics[0],
            topics=[t for t in topics[1:] if t.slug in release.categories],
        )
    if scope.complete:
        yield page(urls.OPML, "feeds.opml", topics=topics)
    yield from _sitemaps(scope, topics, page)
    if scope.complete:
        yield page(urls.NOT_FOUND, "404.html", all_topic=topics[0], absolute_links=True)
        yield _stylesheet()


def _sitemaps(
    scope: Scope, topics: Sequence[TopicView], page: Callable[..., Document]
) -> Iterator[Document]:
    """The sitemap index, the sitemap of the index and topic pages, and the sitemaps of the
    release pages: SITEMAP_SIZE each, from the oldest, so a new release changes only the last
    one (a sitemap may hold 50,000 URLs)."""
    sitemap = scope.sitemap
    parts = -(-sitemap.total // SITEMAP_SIZE)
    listed = [urls.SITEMAP_PAGES, *(urls.sitemap_releases(n) for n in range(1, parts + 1))]
    yield page(urls.SITEMAP, "sitemap-index.xml", parts=listed)
    entries = [(urls.INDEX, scope.lastmods.get(""))]
    entries += [(urls.topic_page(t.slug), scope.lastmods.get(t.slug)) for t in topics]
    yield page(urls.SITEMAP_PAGES, "sitemap.xml", entries=entries)
    chunks = dict(sitemap.extra)
    for number in range(1, parts + 1):
        first = (number - 1) * SITEMAP_SIZE
        if first >= sitemap.start:
            end = number * SITEMAP_SIZE - sitemap.start
            chunks[number] = sitemap.entries[first - sitemap.start : end]
    for number, chunk in sorted(chunks.items()):
        listing = [(urls.release_page(rid), lastmod) for rid, lastmod in chunk]
        yield page(urls.sitemap_releases(number), "sitemap.xml", entries=listing)


def _subscribe_url(base_url: str, slug: str, offered: set[str]) -> str:
    """The email subscribe form (served by the web app at the base URL), with this topic
    ticked; "" when no list carries the topic."""
    if slug == urls.ALL:
        return f"{base_url}/subscribe" if offered else ""
    if slug in offered or urls.ALL in offered:
        return f"{base_url}/subscribe?topic={quote(slug)}"
    return ""


def _site(config: Config) -> SiteView:
    s = config.site
    return SiteView(s.title, s.base_url, s.language, s.timezone, s.rights, s.icon, s.logo)


def _topics(config: Config) -> list[TopicView]:
    """'all' first, then the configured topics in config order."""
    return [TopicView(slug, *topic_heading(config, slug)) for slug in [urls.ALL, *config.topics]]


# --- fingerprints ---------------------------------------------------------------------------


class _Keys:
    """Canonical text of fingerprint inputs. The site, the topics and each release recur in
    thousands of documents, so their text is made once per build (held with the object, so
    an id is never reused while memoised)."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.memo: dict[int, tuple[object, str]] = {}

    def __call__(self, value: Any) -> str:
        kind = type(value)  # exact types first: this runs millions of times on a large site
        if kind is str or kind is int or kind is bool or value is None:
            return repr(value)  # unambiguous, and far cheaper than json.dumps
        if kind is list or kind is tuple:
            return "[" + ",".join(map(self, value)) + "]"
        if kind is datetime:
            moment: datetime = value
            return moment.isoformat()
        known = self.memo.get(id(value))
        if known is None:
            known = self.memo[id(value)] = (value, self._object(value))
        return known[1]

    def _object(self, value: Any) -> str:
        if isinstance(value, Release):
            # A release stands for itself by its content hash plus what that hash leaves out.
            content = self.scope.content_hash(value)
            updated = self(value.updated)
            return f"Release({value.id!r},{content!r},{updated},{value.categories!r})"
        if is_dataclass(value) and not isinstance(value, type):
            parts = [getattr(value, f.name) for f in fields(value)]
            return type(value).__name__ + self(parts)
        if isinstance(value, list | tuple):  # subclasses of the types __call__ knows
            return self(list(value))
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, str | int | float):
            return repr(value)
        raise TypeError(f"cannot fingerprint {type(value).__name__}")


def _document(
    keys: _Keys, file: str, template: str, path: str, note: str, **inputs: Any
) -> Document:
    context = {**inputs, "path": path}
    context.setdefault("absolute_links", False)
    parts = [f"{name}={keys(context[name])}" for name in sorted(context)]
    canonical = "\0".join([_templates_version(), template, *parts])
    fingerprint = hashlib.sha256(canonical.encode()).hexdigest()

    def render() -> bytes:
        return _environment().get_template(template).render(context).encode()

    return Document(file, fingerprint, render, note)


def _stylesheet() -> Document:
    source = _sources()[STYLESHEET_SOURCE].encode()
    return Document(urls.STYLESHEET, hashlib.sha256(source).hexdigest(), lambda: source)


@cache
def _sources() -> dict[str, str]:
    """Every template, read once per process: what is rendered is exactly what is hashed."""
    return {
        path.relative_to(TEMPLATES).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(TEMPLATES.rglob("*"))
        if path.is_file()
    }


@cache
def _templates_version() -> str:
    """Hash of the templates, of the code that shapes the bytes besides them (this module and
    the URL layout) and of the Jinja and MarkupSafe versions (escaping): changing any of them
    changes every fingerprint, so no stale page survives an upgrade or a template edit."""
    libraries = ", ".join(f"{name} {version(name)}" for name in ("jinja2", "markupsafe"))
    digest = hashlib.sha256(libraries.encode())
    for module in (__file__, urls.__file__):
        digest.update(Path(module).read_bytes())
    for name, source in _sources().items():
        digest.update(f"\0{name}\0{source}".encode())
    return digest.hexdigest()


# --- rendering ------------------------------------------------------------------------------


@cache
def _environment() -> Environment:
    env = Environment(
        loader=DictLoader(_sources()),
        autoescape=select_autoescape(["html", "xml", "opml"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.globals.update(
        alternates=_alternates,
        urls=urls,
        href=_href,
        url=_url,
        media_types=urls.MEDIA_TYPES,
        formats=urls.FORMATS,
        format_names=FORMAT_NAMES,
        kind_labels=KIND_LABELS,
        default_kind=Kind.PRESS_RELEASE,
    )
    env.filters.update(
        body=_body,
        date=_date,
        datetime=_datetime,
        iso=_iso,
        size=_size,
        media=_media,
        label=_label,
        plural=_plural,
    )
    return env


@pass_context
def _alternates(context: Context, topic: TopicView, fmts: Sequence[str] = urls.FORMATS) -> Markup:
    """The feed autodiscovery links of a topic (_macros.html's feed_alternates): the same on
    every page, so rendered once per site and topic; a release page has three sets."""
    return _alternates_of(context["site"], topic, tuple(fmts))


@lru_cache(maxsize=1024)
def _alternates_of(site: SiteView, topic: TopicView, fmts: tuple[str, ...]) -> Markup:
    macros = _environment().get_template("_macros.html")
    module = macros.make_module({"site": site, "path": "", "absolute_links": True})
    feed_alternates = getattr(module, "feed_alternates")  # noqa: B009 (a template's macro)
    return Markup(str(feed_alternates(topic, list(fmts))))  # noqa: S704


@pass_context
def _href(context: Context, to: str) -> str:
    """A link to another page: relative, so the site works under any base path; absolute on
    pages such as 404.html that are served from any depth."""
    if context["absolute_links"]:
        return _url(context, to)
    return urls.relative(context["path"], to)


@pass_context
def _url(context: Context, to: str) -> str:
    """An absolute URL, for feeds, OPML, sitemap and canonical links that leave the site."""
    site: SiteView = context["site"]
    return urls.absolute(site.base_url, to)


def _body(release: Release) -> Markup:
    """The one place markup is trusted: body_html was sanitised at ingest."""
    return Markup(release.body_html)  # noqa: S704


def _local(context: Context, moment: datetime) -> datetime:
    site: SiteView = context["site"]
    return moment.astimezone(ZoneInfo(site.timezone))


@pass_context
def _date(context: Context, moment: datetime) -> str:
    local = _local(context, moment)
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}"


@pass_context
def _datetime(context: Context, moment: datetime) -> str:
    """'20 November 2026, 10:00 UTC+3': the offset, since readers may be anywhere."""
    local = _local(context, moment)
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    hours, rest = divmod(abs(minutes), 60)
    zone = f"UTC{'+' if minutes > 0 else '-'}{hours}{f':{rest:02}' if rest else ''}"
    return f"{_date(context, moment)}, {local:%H:%M} {zone if minutes else 'UTC'}"


@pass_context
def _iso(context: Context, moment: datetime) -> str:
    """For `<time datetime>`: the local time with its offset, to the second."""
    return _local(context, moment).isoformat(timespec="seconds")


def _size(length: int) -> str:
    """'' for an unknown (zero) length."""
    if length <= 0:
        return ""
    if length < 1000:
        return f"{length} bytes"
    value, unit = length / 1000, "kB"
    for bigger in ("MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def _media(media_type: str) -> str:
    if media_type in MEDIA_LABELS:
        return MEDIA_LABELS[media_type]
    major, _, minor = media_type.partition("/")
    if major in ("image", "audio", "video") and "." not in minor:
        return f"{minor.upper()} {major}"
    return media_type


def _label(attachment: Attachment) -> str:
    """The title, else the file name from the URL."""
    if attachment.title:
        return attachment.title
    name = unquote(urlsplit(attachment.url).path.rstrip("/").rpartition("/")[2])
    return name or attachment.url


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"
