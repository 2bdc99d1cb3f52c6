"""What changed since the last build, and so what an incremental build regenerates.

The last build's state is the note of its index page (output.BuildState): the config and code
it was made with, its `now`, the store's newest write then (`hwm`), the releases per topic
and language, and the sitemap dates. Each release page notes where its release appeared
(output.placement_note). A build then asks the store only for the releases written since
(after `hwm`, or up to LOOKBACK before the last build, for writes that committed late) and
those whose embargo lifted since, and compares each with its note. For every stream (topic
and language) a changed release is in, now or before, it regenerates the current documents
and the archives from the first one a release that came, went or moved reaches, plus the
archive of each release edited in place; the release's page; the index, the sitemap index
and the sitemap parts holding the changes. Everything else keeps its manifest entry.

An incremental build makes exactly the files a full build would (tests/test_incremental.py
holds it to that). Whatever it cannot vouch for falls back to a full build: no finished
manifest, another config or code version, a clock that went back, a language appearing or
disappearing, counts that disagree with the store (the first build of each day checks
them), or more to reload than the whole store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Connection

from syndicate import pages
from syndicate.config import Config
from syndicate.manifest import Manifest
from syndicate.model import Release
from syndicate.output import (
    LATEST,
    BuildState,
    Noted,
    Scope,
    SitemapSlice,
    Stream,
    current_start,
    languages_of,
    listing_lastmod,
    placement_note,
    site_key,
    w3c,
)
from syndicate.store import Store
from syndicate.store import releases as store_releases
from syndicate.store.releases import Placement
from syndicate.urls import (
    ALL,
    FORMATS,
    INDEX,
    archive,
    file_for,
    release_page,
    sitemap_releases,
    topic_archive,
)

# A write stamped this long before the last build but committed after it (a long ingest, a
# clock a little behind on another machine) is still found.
LOOKBACK = timedelta(hours=1)
# An incremental build that would load more releases than this share of the public ones
# (changes to old releases shift every later archive) leaves it to a full build, which
# loads each release once.
RELOAD_LIMIT = 1.0

Key = tuple[datetime, str]  # (public_from, id): feed order
StreamId = tuple[str, str | None]  # (topic, language or None)


@dataclass(frozen=True, slots=True)
class Change:
    """A release whose output differs from the last build's: where it was then (None: in no
    file) and where it is now (None: in no file)."""

    id: str
    old: Noted | None
    new: Placement | None


@dataclass(frozen=True)
class Plan:
    """An incremental build: the scope to generate and the files to remove."""

    scope: Scope
    removed: list[str]
    changes: list[Change]


def state_of(manifest: Manifest) -> BuildState | None:
    if not manifest.trusted:
        return None
    entry = manifest.get(file_for(INDEX))
    return BuildState.parse(entry[1]) if entry else None


def decide_changes(
    found: list[Placement], notes: Mapping[str, str | None], config: Config, now: datetime
) -> list[Change] | None:
    """The releases among `found` whose note differs from what they are now (pure). None
    when a note cannot be read: the manifest is not to be trusted."""
    result = []
    for placement in found:
        new = None
        if placement.is_public(now):
            new = placement_note(
                placement.public_from,
                placement.lang,
                config.configured_topics(placement.categories),
                placement.content_hash,
                placement.updated,
            )
        old = notes.get(placement.id)
        if new == old:
            continue
        try:
            noted = Noted.parse(old) if old is not None else None
        except ValueError:
            return None
        result.append(Change(placement.id, noted, placement if new is not None else None))
    return result


def _places(change: Change, config: Config) -> list[tuple[Key, str, tuple[str, ...]]]:
    """(feed key, language, configured topics) of where the release was and is."""
    places = []
    if change.old is not None:
        places.append(((change.old.public_from, change.id), change.old.lang, change.old.categories))
    if change.new is not None:
        new = change.new
        places.append(
            ((new.public_from, change.id), new.lang, config.configured_topics(new.categories))
        )
    return places


def recount(
    counts: Mapping[str, Mapping[str, int]], changes: list[Change], config: Config
) -> dict[str, dict[str, int]] | None:
    """The releases per topic and language after the changes (pure); None if a count would
    go below zero (the state is wrong)."""
    result = {topic: dict(langs) for topic, langs in counts.items()}
    for change in changes:
        for sign, place in zip(_sides(change), _places(change, config), strict=True):
            _, lang, topics = place
            for topic in (ALL, *topics):
                langs = result.setdefault(topic, {})
                langs[lang] = langs.get(lang, 0) + sign
    for langs in result.values():
        for lang, n in list(langs.items()):
            if n < 0:
                return None
            if n == 0:
                del langs[lang]
    return result


def _sides(change: Change) -> list[int]:
    """-1 for where the release was, +1 for where it is, in the order of _places."""
    return ([-1] if change.old is not None else []) + ([1] if change.new is not None else [])


@dataclass
class Touch:
    """How the changes reach one stream: `shift`, the earliest key where a release came in,
    went out or moved (every later archive shifts); `edited`, the keys of releases edited in
    place (only their archives change)."""

    shift: Key | None = None
    edited: set[Key] = field(default_factory=set)


def touches(changes: list[Change], config: Config, languages: bool) -> dict[StreamId, Touch]:
    """Every stream a change is or was in, and how it is touched (pure)."""
    found: dict[StreamId, Touch] = {}
    for change in changes:
        then: dict[StreamId, Key] = {}  # where the release was: stream → its key there
        since: dict[StreamId, Key] = {}  # where it is
        for side, (key, lang, topics) in zip(_sides(change), _places(change, config), strict=True):
            for topic in (ALL, *topics):
                for stream in [(topic, None), *([(topic, lang)] if languages else [])]:
                    (then if side < 0 else since)[stream] = key
        for stream in then.keys() | since.keys():
            touch = found.setdefault(stream, Touch())
            before, after = then.get(stream), since.get(stream)
            if before is not None and before == after:
                touch.edited.add(before)
                continue
            for moved in (before, after):
                if moved is not None and (touch.shift is None or moved < touch.shift):
                    touch.shift = moved
    return found


def _total(counts: Mapping[str, Mapping[str, int]], stream: StreamId) -> int:
    topic, lang = stream
    langs = counts.get(topic, {})
    return langs.get(lang, 0) if lang is not None else sum(langs.values())


def plan(config: Config, store: Store, now: datetime, manifest: Manifest) -> Plan | None:
    """What to regenerate since the build that left `manifest`; None: build everything."""
    state = state_of(manifest)
    if state is None or state.key != site_key(config) or now < state.now:
        return None
    order = list(config.topics)
    with store.connect() as conn:
        found = store_releases.changes(
            conn,
            changed_from=state.now - LOOKBACK,
            changed_after=state.hwm,
            public_after=state.now,
            public_until=now,
            order=order,
        )
        notes = {}
        for placement in found:
            entry = manifest.get(file_for(release_page(placement.id)))
            notes[placement.id] = entry[1] if entry else None
        changes = decide_changes(found, notes, config, now)
        if changes is None:
            return None
        counts = recount(state.counts, changes, config)
        if counts is None or languages_of(counts) != languages_of(state.counts):
            return None
        new_day = now.astimezone(UTC).date() != state.now.astimezone(UTC).date()
        if new_day and not _counts_hold(conn, config, now, counts):
            return None
        return _Planner(conn, config, now, state, counts).plan(changes)


def _counts_hold(
    conn: Connection, config: Config, now: datetime, counts: Mapping[str, Mapping[str, int]]
) -> bool:
    """Whether the counts kept change by change agree with the store. The first build of
    each day (UTC) asks: it reads the whole table, and catches a write the change search
    missed (one stamped long before the last build); a disagreement makes a full build."""
    found = store_releases.public_counts(conn, now)
    return all(found.get(t, {}) == counts.get(t, {}) for t in [ALL, *config.topics])


@dataclass
class _Span:
    """What of one stream to regenerate: from rank `start` on, and whole archives before."""

    start: int
    shift_rank: int | None
    extra: dict[int, Key]  # archive number → the key of an edited release in it
    extra_ranks: dict[int, int]  # archive number → that release's rank


class _Planner:
    """The store reads of an incremental build, once the changes are known."""

    def __init__(
        self,
        conn: Connection,
        config: Config,
        now: datetime,
        state: BuildState,
        counts: dict[str, dict[str, int]],
    ) -> None:
        self.conn, self.config, self.now, self.state, self.counts = conn, config, now, state, counts
        self.order = list(config.topics)
        self.limit, self.size = config.feeds.limit, config.feeds.archive_size
        self.removed: list[str] = []
        self.hashes: dict[str, str] = {}
        self.loaded: dict[str, Release] = {}
        self._ranks: dict[tuple[StreamId, Key], int] = {}

    def rank(self, stream: StreamId, key: Key) -> int:
        """The rank (0: oldest) at which `key` is or would be in the stream; one count query
        per stream and key (`sitemap` asks again what `span` asked of all releases)."""
        found = self._ranks.get((stream, key))
        if found is None:
            topic, lang = stream
            after = store_releases.count_from(self.conn, self.now, key, topic=topic, lang=lang)
            found = self._ranks[stream, key] = _total(self.counts, stream) - after
        return found

    def span(self, stream: StreamId, touch: Touch) -> _Span:
        topic, lang = stream
        size = self.size
        total, before = _total(self.counts, stream), _total(self.state.counts, stream)
        full, was = total // size, before // size
        start = current_start(total, self.limit, size)
        first: int | None = None
        shift_rank = None
        if touch.shift is not None:
            shift_rank = self.rank(stream, touch.shift)
            first = shift_rank // size + 1
        if full != was and min(full, was) >= 1:  # that archive gains or loses its newest link
            first = min(first or full, min(full, was))
        if first is not None:
            start = min(start, (first - 1) * size)
        extra: dict[int, Key] = {}
        extra_ranks: dict[int, int] = {}
        for key in sorted(touch.edited):
            rank = self.rank(stream, key)
            number = rank // size + 1
            if number <= full and (number - 1) * size < start and number not in extra:
                extra[number], extra_ranks[number] = key, rank
        for number in range(full + 1, was + 1):
            self.removed += [archive(topic, number, fmt, lang) for fmt in FORMATS]
            if lang is None:
                self.removed.append(file_for(topic_archive(topic, number)))
        return _Span(start, shift_rank, extra, extra_ranks)

    def take(self, rows: list[tuple[Release, str]]) -> list[Release]:
        self.hashes.update((release.id, h) for release, h in rows)
        self.loaded.update((release.id, release) for release, _ in rows)
        return [release for release, _ in rows]

    def stream(self, stream: StreamId, span: _Span) -> Stream | None:
        topic, lang = stream
        total, size = _total(self.counts, stream), self.size
        rows = store_releases.newest(
            self.conn, self.now, total - span.start, topic=topic, lang=lang, order=self.order
        )
        if len(rows) != total - span.start:
            return None
        extra = {}
        for number, key in span.extra.items():
            offset = span.extra_ranks[number] - (number - 1) * size
            chunk = store_releases.around(
                self.conn,
                self.now,
                key,
                offset,
                size - offset,
                topic=topic,
                lang=lang,
                order=self.order,
            )
            if len(chunk) != size:
                return None
            extra[number] = self.take(chunk)
        return Stream(topic, lang, total, span.start, self.take(rows[::-1]), extra)

    def plan(self, changes: list[Change]) -> Plan | None:
        config, conn, now = self.config, self.conn, self.now
        languages = languages_of(self.counts)
        touched = touches(changes, config, bool(languages))
        spans: dict[StreamId, _Span] = {}
        for stream_id, touch in touched.items():
            spans[stream_id] = self.span(stream_id, touch)
        everything = _total(self.counts, (ALL, None))
        reload = sum(
            _total(self.counts, s) - span.start + len(span.extra) * self.size
            for s, span in spans.items()
        )
        if reload > everything * RELOAD_LIMIT:
            return None

        streams = []
        for lang in [None, *languages]:
            for topic in [ALL, *config.topics]:
                if (topic, lang) in spans:
                    stream = self.stream((topic, lang), spans[(topic, lang)])
                    if stream is None:
                        return None
                    streams.append(stream)

        release_pages: list[Release] = []
        for change in changes:
            if change.new is not None:
                release = self.loaded.get(change.id)
                if release is None:
                    return None
                release_pages.append(release)
            elif change.old is not None:
                self.removed.append(file_for(release_page(change.id)))

        latest = self.take(store_releases.newest(conn, now, LATEST, order=self.order))
        lastmods = dict(self.state.lastmods)
        lastmods[""] = listing_lastmod(latest)
        for stream in streams:
            if stream.lang is None:
                first = current_start(stream.total, self.limit, self.size)
                lastmods[stream.topic] = listing_lastmod(stream.releases[first - stream.start :])

        scope = Scope(
            config=config,
            now=now,
            streams=streams,
            releases=release_pages,
            latest=latest,
            counts=self.counts,
            lastmods=lastmods,
            sitemap=self.sitemap(spans.get((ALL, None)), touched.get((ALL, None))),
            hashes=self.hashes,
            complete=False,
            hwm=store_releases.max_changed_at(conn),
        )
        return Plan(scope, self.removed, changes)

    def sitemap(self, span: _Span | None, touch: Touch | None) -> SitemapSlice:
        """The sitemap parts of release pages to regenerate: from the one holding the first
        release that came, went or moved, and the one of each release edited in place."""
        total = _total(self.counts, (ALL, None))
        before = _total(self.state.counts, (ALL, None))
        per = pages.SITEMAP_SIZE
        parts, parts_before = -(-total // per), -(-before // per)
        start = total
        if span is not None and span.shift_rank is not None:
            start = (span.shift_rank // per) * per
        if parts != parts_before and min(parts, parts_before) >= 1:
            start = min(start, (min(parts, parts_before) - 1) * per)
        extra: dict[int, list[tuple[str, str]]] = {}
        for key in sorted(touch.edited if touch is not None else ()):
            rank = self.rank((ALL, None), key)
            number = rank // per + 1
            if (number - 1) * per < start and number not in extra:
                offset = rank - (number - 1) * per
                count = min(per, total - (number - 1) * per)
                rows = store_releases.dates_around(self.conn, self.now, key, offset, count - offset)
                extra[number] = [(rid, w3c(upd or pub)) for rid, pub, upd in rows]
        self.removed += [sitemap_releases(n) for n in range(parts + 1, parts_before + 1)]
        dates = store_releases.newest_dates(self.conn, self.now, total - start)
        entries = [(rid, w3c(upd or pub)) for rid, pub, upd in reversed(dates)]
        return SitemapSlice(total, start, entries, extra)
