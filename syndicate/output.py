"""What a build works from and what it produces.

A `Snapshot` is every public release at an instant, in memory: what a full build reads. A
`Scope` is what one build (re)generates and the facts its documents need: for a full build,
every stream (a topic's releases, in every language or in one) from its oldest release; for an
incremental build (syndicate.changes), only the streams a change reached, from the first
archive it touched. A `Document` is one output file: a path, a fingerprint of its inputs, a
way to render its bytes, and a note the manifest keeps for the next incremental build.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, cached_property
from importlib.metadata import version
from pathlib import Path
from typing import Any

from syndicate.config import Config
from syndicate.model import Release
from syndicate.store import Store
from syndicate.store import releases as store_releases
from syndicate.urls import ALL, archive, feed

LATEST = 10  # releases on the index page
STATE_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Document:
    """One output file. `fingerprint` changes whenever the rendered bytes could; a build skips
    rendering a document whose fingerprint and file are unchanged. `note` is kept in the
    manifest beside the fingerprint, for the next incremental build (a release page notes
    where its release appeared; the index notes the build's state)."""

    path: str
    fingerprint: str
    render: Callable[[], bytes]
    note: str = ""


def feed_order(release: Release) -> tuple[datetime, str]:
    """Feeds, archives and listings order releases by the moment they became public."""
    return release.public_from, release.id


@dataclass(frozen=True, slots=True)
class Stream:
    """The public releases of a topic (or 'all'), in every language (`lang` None) or in one,
    oldest first: ranks `start` … `total`-1 of the whole stream. A full build holds every
    rank; an incremental one only the newest part, from the first chunk it regenerates."""

    topic: str
    lang: str | None
    total: int
    start: int
    releases: Sequence[Release]
    # Archives before `start` to regenerate too (a release in them was edited in place):
    # archive number → its releases, oldest first.
    extra: Mapping[int, Sequence[Release]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Page:
    """One chunk of a stream: the current document (`number` None) or archive `number`
    (1 = oldest), with its entries newest first; `archives`: how many archives the stream has.
    A feed document in each format, and for `lang` None a page of the topic's listing."""

    topic: str
    lang: str | None
    entries: Sequence[Release]
    number: int | None
    archives: int

    def path(self, fmt: str) -> str:
        if self.number is None:
            return feed(self.topic, fmt, self.lang)
        return archive(self.topic, self.number, fmt, self.lang)

    @property
    def navigation(self) -> str:
        """What of the archive chain the page's links show: the current page links the newest
        archive; an archive links its neighbours, and the newest one the current page. An
        older archive stays the same when a newer one appears."""
        if self.number is None:
            return f"archives={self.archives}"
        return "newest" if self.number == self.archives else "older"


def current_start(total: int, limit: int, size: int) -> int:
    """The rank of the oldest release in the current page: the latest `limit`, or more when
    more have not been archived yet."""
    full = total // size
    return max(0, total - max(limit, total - full * size))


def split(stream: Stream, limit: int, size: int) -> list[Page]:
    """The current page, then the archives (oldest first) that the stream holds: archive n
    holds ranks (n-1)·size … n·size-1, so a full archive keeps its entries unless one of
    them changes (pure)."""
    full = stream.total // size

    def ranks(first: int, end: int) -> list[Release]:
        return list(stream.releases[first - stream.start : end - stream.start])[::-1]

    first = current_start(stream.total, limit, size)
    if first < stream.start:
        raise ValueError(f"stream {stream.topic}/{stream.lang} lacks its current entries")
    result = [Page(stream.topic, stream.lang, ranks(first, stream.total), None, full)]
    for number, chunk in sorted(stream.extra.items()):
        if len(chunk) != size or number > full:
            raise ValueError(f"archive {number} of {stream.topic}/{stream.lang} is not whole")
        result.append(Page(stream.topic, stream.lang, list(chunk)[::-1], number, full))
    for number in range(1, full + 1):
        if (number - 1) * size >= stream.start:
            chunk = ranks((number - 1) * size, number * size)
            result.append(Page(stream.topic, stream.lang, chunk, number, full))
    return result


def changed(release: Release) -> datetime:
    """When a page about the release last changed, as sitemaps date it."""
    return release.updated or release.published


def w3c(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def listing_lastmod(releases: Iterable[Release]) -> str | None:
    """A listing's sitemap lastmod: the newest change among the releases it shows."""
    newest = max((changed(r) for r in releases), default=None)
    return w3c(newest) if newest else None


def placement_note(
    public_from: datetime,
    lang: str,
    categories: Iterable[str],
    content_hash: str,
    updated: datetime | None,
) -> str:
    """What a release page notes of its release: where it appears (its place in the feeds,
    its language, its configured topics) and a token of its content. An incremental build
    compares it with the store to tell what changed, and takes the release out of where it
    was."""
    when = updated.isoformat() if updated else ""
    return f"{public_from.isoformat()}\t{lang}\t{' '.join(categories)}\t{content_hash}\t{when}"


def aware(text: str) -> datetime:
    """A time the build wrote into its manifest; ValueError (an unreadable manifest: a full
    build) for one without its UTC offset, which would not compare with the store's."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment


@dataclass(frozen=True, slots=True)
class Noted:
    """A placement note read back."""

    public_from: datetime
    lang: str
    categories: tuple[str, ...]

    @classmethod
    def parse(cls, note: str) -> Noted:
        public_from, lang, categories, _, _ = note.split("\t")
        return cls(aware(public_from), lang, tuple(categories.split()))


@dataclass(frozen=True, slots=True)
class SitemapSlice:
    """The releases a sitemap lists, oldest public first: (release id, lastmod) of ranks
    `start` … `total`-1 of every public release."""

    total: int
    start: int
    entries: Sequence[tuple[str, str]]
    extra: Mapping[int, Sequence[tuple[str, str]]] = field(default_factory=dict)  # earlier parts


@dataclass(frozen=True, slots=True)
class BuildState:
    """What the index page notes about the build that made it: enough for the next build to
    find what changed since (releases written after `hwm` or lately before `now`, embargoes
    lifted after `now`) and to update the counts and sitemap dates of the topics it touches.
    A pure function of the config, the code, the store and `now`."""

    key: str
    now: datetime
    hwm: datetime | None
    counts: Mapping[str, Mapping[str, int]]  # topic → language → public releases
    lastmods: Mapping[str, str | None]  # "" (the index) and each topic page → sitemap lastmod

    def note(self) -> str:
        return json.dumps(
            {
                "format": STATE_FORMAT,
                "key": self.key,
                "now": self.now.isoformat(),
                "hwm": self.hwm.isoformat() if self.hwm else None,
                "counts": self.counts,
                "lastmods": self.lastmods,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, note: str) -> BuildState | None:
        try:
            data = json.loads(note)
            if data.get("format") != STATE_FORMAT:
                return None
            return cls(
                str(data["key"]),
                aware(data["now"]),
                aware(data["hwm"]) if data["hwm"] else None,
                {t: {lang: int(n) for lang, n in c.items()} for t, c in data["counts"].items()},
                {t: (str(m) if m else None) for t, m in data["lastmods"].items()},
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


def languages_of(counts: Mapping[str, Mapping[str, int]]) -> list[str]:
    """The languages that get feeds of their own: none unless releases come in several."""
    found = sorted(lang for lang, n in counts.get(ALL, {}).items() if n > 0)
    return found if len(found) > 1 else []


@dataclass(frozen=True)
class Scope:
    """What a build makes. `streams`: the feed streams to (re)generate, each from the first
    chunk that may differ (those with `lang` None also make the topic's listing pages);
    `releases`: the release pages to (re)generate; `complete`: also the documents that depend
    on the config alone (OPML, 404 page, stylesheet). The index, the sitemap index and its
    pages part are always made; the sitemap's release parts from `sitemap.start` on."""

    config: Config
    now: datetime
    streams: Sequence[Stream]
    releases: Sequence[Release]
    latest: Sequence[Release]
    counts: Mapping[str, Mapping[str, int]]
    lastmods: Mapping[str, str | None]
    sitemap: SitemapSlice
    hashes: Mapping[str, str]
    complete: bool
    hwm: datetime | None = None

    @cached_property
    def languages(self) -> list[str]:
        return languages_of(self.counts)

    @property
    def topics(self) -> list[str]:
        """'all' first, then the configured topics in config order."""
        return [ALL, *self.config.topics]

    def content_hash(self, release: Release) -> str:
        known = self.hashes.get(release.id)
        return known if known is not None else release.content_hash()

    def state(self) -> BuildState:
        return BuildState(site_key(self.config), self.now, self.hwm, self.counts, self.lastmods)


@dataclass(frozen=True)
class Snapshot:
    """Every release public at `now` (others given are left out), with the content hashes the
    store keeps and its newest write (`hwm`)."""

    config: Config
    now: datetime
    releases: Sequence[Release]
    hashes: dict[str, str] = field(default_factory=dict)
    hwm: datetime | None = None

    @cached_property
    def scope(self) -> Scope:
        """The whole site."""
        config, now = self.config, self.now
        public = sorted((r for r in self.releases if r.is_public(now)), key=feed_order)
        topics = [ALL, *config.topics]
        members: dict[str, list[Release]] = {slug: [] for slug in topics}
        counts: dict[str, dict[str, int]] = {slug: {} for slug in topics}
        for release in public:
            for slug in (ALL, *release.categories):
                found = members.get(slug)
                if found is not None:
                    found.append(release)
                    counts[slug][release.lang] = counts[slug].get(release.lang, 0) + 1
        settings = config.feeds
        streams = []
        for lang in [None, *languages_of(counts)]:
            for slug in topics:
                chosen = [r for r in members[slug] if lang is None or r.lang == lang]
                streams.append(Stream(slug, lang, len(chosen), 0, chosen))
        latest = public[-LATEST:][::-1]
        lastmods: dict[str, str | None] = {"": listing_lastmod(latest)}
        for stream in streams[: len(topics)]:
            first = current_start(stream.total, settings.limit, settings.archive_size)
            lastmods[stream.topic] = listing_lastmod(stream.releases[first:])
        entries = [(r.id, w3c(changed(r))) for r in public]
        return Scope(
            config=config,
            now=now,
            streams=streams,
            releases=public[::-1],
            latest=latest,
            counts=counts,
            lastmods=lastmods,
            sitemap=SitemapSlice(len(public), 0, entries),
            hashes=self.hashes,
            complete=True,
            hwm=self.hwm,
        )


def as_scope(source: Snapshot | Scope) -> Scope:
    return source.scope if isinstance(source, Snapshot) else source


ALL_TITLE = "All releases"
ALL_DESCRIPTION = "Every release, whatever its topic."


def topic_heading(config: Config, slug: str) -> tuple[str, str]:
    """(title, description) of a topic, 'all' included: one wording for feeds and pages."""
    topic = config.topics.get(slug)
    if topic is None:
        return ALL_TITLE, ALL_DESCRIPTION
    return topic.title, topic.description


def snapshot(config: Config, store: Store, now: datetime) -> Snapshot:
    with store.connect() as conn:
        hashed = store_releases.public_hashed(conn, now, order=list(config.topics))
        hwm = store_releases.max_changed_at(conn)
    return Snapshot(config, now, [r for r, _ in hashed], {r.id: h for r, h in hashed}, hwm)


# --- what the output depends on besides the store ---------------------------------------------

# The code that shapes the output: a change to any of them makes the next build a full one.
_CODE = ("output.py", "feeds.py", "pages.py", "urls.py", "sanitize.py", "changes.py", "model.py")
_LIBRARIES = ("feedgen", "lxml", "jinja2", "markupsafe")
TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "site"


@cache
def code_version() -> str:
    digest = hashlib.sha256(", ".join(f"{n} {version(n)}" for n in _LIBRARIES).encode())
    here = Path(__file__).resolve().parent
    for name in _CODE:
        digest.update(b"\0" + (here / name).read_bytes())
    for path in sorted(TEMPLATES.rglob("*")):
        if path.is_file():
            digest.update(f"\0{path.relative_to(TEMPLATES).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def site_key(config: Config) -> str:
    """The config and code a build's output depends on: when it differs from the last
    build's, every document may differ, and the next build is a full one."""
    parts: list[Any] = [
        code_version(),
        config.site.model_dump(mode="json"),
        config.feeds.model_dump(mode="json"),
        {slug: topic.model_dump(mode="json") for slug, topic in config.topics.items()},
        [(slug, lst.self_service, list(lst.topics)) for slug, lst in config.lists.items()],
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
