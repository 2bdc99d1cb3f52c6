"""Release queries. Functions take a Connection so callers choose the transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from syndicate.model import Attachment, Kind, Release
from syndicate.store.schema import release_topics, releases

_BATCH = 500
_NEAR = 2000  # count_from: how far from the newest end a walk along the feed order pays


@dataclass(frozen=True, slots=True)
class Stored:
    """A release with the bookkeeping the upsert decider needs."""

    release: Release
    content_hash: str
    origin: str
    origin_ref: str | None


@dataclass(frozen=True, slots=True)
class Write:
    """One row to insert (`new`) or overwrite, with its effective topics."""

    release: Release
    origin: str
    origin_ref: str | None
    new: bool


# The JSON columns as the driver gives them: SQLite's text is decoded here, where the
# common empty list costs nothing (a snapshot of every release reads 200,000 of them).
# Bookkeeping a Release does not hold is left out.
_COLUMNS = [
    sa.type_coerce(c, sa.Text).label(c.name) if isinstance(c.type, sa.JSON) else c
    for c in releases.c
    if c.name not in ("public_from", "first_seen", "changed_at")
]


def _json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return [] if value == "[]" else json.loads(value)


def _to_release(row: RowMapping, categories: Sequence[str]) -> Release:
    return Release(
        id=row["id"],
        title=row["title"],
        published=row["published"],
        updated=row["updated"],
        embargo=row["embargo"],
        dateline=row["dateline"],
        lang=row["lang"],
        kind=Kind(row["kind"]),
        author=row["author"],
        summary=row["summary"],
        body_html=row["body_html"],
        url=row["url"],
        topics=tuple(_json(row["topics"])),
        categories=tuple(categories),
        attachments=tuple(Attachment(**a) for a in _json(row["attachments"])),
        retracted=row["retracted"],
    )


def _row(write: Write, now: datetime) -> dict[str, Any]:
    r = write.release
    return {
        "id": r.id,
        "title": r.title,
        "published": r.published,
        "updated": r.updated,
        "embargo": r.embargo,
        "public_from": r.public_from,
        "dateline": r.dateline,
        "lang": r.lang,
        "kind": str(r.kind),
        "author": r.author,
        "summary": r.summary,
        "body_html": r.body_html,
        "url": r.url,
        "topics": list(r.topics),
        "attachments": [asdict(a) for a in r.attachments],
        "retracted": r.retracted,
        "content_hash": r.content_hash(),
        "origin": write.origin,
        "origin_ref": write.origin_ref,
        "changed_at": now,
    }


def _categories(conn: Connection, ids: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    ids = list(ids)
    if len(ids) > 20 * _BATCH:  # most of the table: one pass over it beats many lookups
        wanted = set(ids)
        query = sa.select(release_topics.c.release_id, release_topics.c.topic)
        for release_id, topic in conn.execute(query):
            if release_id in wanted:
                out.setdefault(release_id, []).append(topic)
        return out
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        query = sa.select(release_topics.c.release_id, release_topics.c.topic).where(
            release_topics.c.release_id.in_(chunk)
        )
        for release_id, topic in conn.execute(query):
            out.setdefault(release_id, []).append(topic)
    return out


def _ordered(categories: Iterable[str], rank: Mapping[str, int]) -> list[str]:
    """Config order first, then slugs the config no longer has, alphabetically."""
    return sorted(categories, key=lambda s: (rank.get(s, len(rank)), s))


def _load(conn: Connection, query: sa.Select[Any], order: Sequence[str] = ()) -> list[Release]:
    """Rows to releases; categories come back in the order of `order` (config order)."""
    return [release for release, _ in _load_hashed(conn, query, order)]


def _load_hashed(
    conn: Connection, query: sa.Select[Any], order: Sequence[str] = ()
) -> list[tuple[Release, str]]:
    """Rows to (release, stored content hash)."""
    rows = conn.execute(query).mappings().all()
    cats = _categories(conn, (row["id"] for row in rows))
    rank = {slug: i for i, slug in enumerate(order)}
    known: dict[tuple[str, ...], list[str]] = {}  # the same few combinations recur

    def ordered(found: list[str]) -> list[str]:
        key = tuple(found)
        result = known.get(key)
        if result is None:
            result = known[key] = _ordered(found, rank)
        return result

    return [
        (_to_release(row, ordered(cats.get(row["id"], []))), row["content_hash"]) for row in rows
    ]


def lock_for_upsert(conn: Connection) -> None:
    """Make the caller's transaction the only writer of releases until it ends, so what it
    reads (get_many) is still true when it writes. Readers are not blocked. On SQLite the
    write transaction holds the database's write lock already (Store.begin)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("LOCK TABLE releases IN SHARE ROW EXCLUSIVE MODE"))


def get_many(conn: Connection, ids: Sequence[str]) -> dict[str, Stored]:
    found: dict[str, Stored] = {}
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        rows = conn.execute(sa.select(*_COLUMNS).where(releases.c.id.in_(chunk))).mappings().all()
        cats = _categories(conn, chunk)
        for row in rows:
            found[row["id"]] = Stored(
                _to_release(row, cats.get(row["id"], [])),
                row["content_hash"],
                row["origin"],
                row["origin_ref"],
            )
    return found


def get(conn: Connection, release_id: str, order: Sequence[str] = ()) -> Release | None:
    found = _load(conn, sa.select(*_COLUMNS).where(releases.c.id == release_id), order)
    return found[0] if found else None


def write(conn: Connection, writes: Sequence[Write], now: datetime) -> None:
    """Insert or overwrite rows and replace their effective topics."""
    for item in writes:
        row = _row(item, now)
        if item.new:
            conn.execute(releases.insert().values(first_seen=now, **row))
        else:
            conn.execute(releases.update().where(releases.c.id == item.release.id).values(**row))
    set_categories(conn, {w.release.id: w.release.categories for w in writes})


def set_categories(
    conn: Connection, categories: Mapping[str, Sequence[str]], now: datetime | None = None
) -> None:
    """Replace the effective topics of these releases. Given `now` (a reclassification), it
    is also their `changed_at`: incremental builds find what changed by that column."""
    ids = list(categories)
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        conn.execute(release_topics.delete().where(release_topics.c.release_id.in_(chunk)))
        if now is not None:
            conn.execute(releases.update().where(releases.c.id.in_(chunk)).values(changed_at=now))
    rows = [{"release_id": rid, "topic": t} for rid, topics in categories.items() for t in topics]
    if rows:
        conn.execute(release_topics.insert(), rows)


def retract(conn: Connection, ids: Sequence[str], now: datetime) -> None:
    """Keep a tombstone: the row stays, hidden everywhere."""
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        conn.execute(
            releases.update().where(releases.c.id.in_(chunk)).values(retracted=True, changed_at=now)
        )


def live_refs(conn: Connection, origin: str) -> dict[str, str | None]:
    """id → origin_ref of the releases of `origin` that are not retracted."""
    query = sa.select(releases.c.id, releases.c.origin_ref).where(
        releases.c.origin == origin, releases.c.retracted.is_(False)
    )
    return {row.id: row.origin_ref for row in conn.execute(query)}


def _select(topic: str | None, lang: str | None) -> sa.Select[Any]:
    return _stream(sa.select(*_COLUMNS), topic, lang)


def _public(query: sa.Select[Any], now: datetime) -> sa.Select[Any]:
    return query.where(releases.c.retracted.is_(False), releases.c.public_from <= now)


def latest(
    conn: Connection,
    now: datetime,
    *,
    topic: str | None = None,
    lang: str | None = None,
    limit: int | None = None,
    order: Sequence[str] = (),
) -> list[Release]:
    """Public releases at `now`, newest first; `topic` None or 'all' means every release."""
    query = (
        _public(_select(topic, lang), now)
        .order_by(releases.c.published.desc(), releases.c.id.desc())
        .limit(limit)
    )
    return _load(conn, query, order)


def everything(
    conn: Connection, *, topic: str | None = None, order: Sequence[str] = ()
) -> list[Release]:
    """Every stored release, embargoed and retracted included, newest first."""
    query = _select(topic, None).order_by(releases.c.published.desc(), releases.c.id.desc())
    return _load(conn, query, order)


def public_between(
    conn: Connection,
    start: datetime,
    end: datetime,
    *,
    topic: str | None = None,
    order: Sequence[str] = (),
) -> list[Release]:
    """Releases that became public in (start, end], oldest first: what a digest covers."""
    query = (
        _select(topic, None)
        .where(
            releases.c.retracted.is_(False),
            releases.c.public_from > start,
            releases.c.public_from <= end,
        )
        .order_by(releases.c.public_from, releases.c.id)
    )
    return _load(conn, query, order)


def topic_counts(conn: Connection, now: datetime) -> dict[str, int]:
    """Public releases per effective topic, plus 'all'."""
    query = _public(
        sa.select(release_topics.c.topic, sa.func.count()).join(
            releases, release_topics.c.release_id == releases.c.id
        ),
        now,
    ).group_by(release_topics.c.topic)
    counts: dict[str, int] = {row[0]: row[1] for row in conn.execute(query)}
    counts["all"] = conn.execute(
        _public(sa.select(sa.func.count()).select_from(releases), now)
    ).scalar_one()
    return counts


def iter_all(conn: Connection) -> Iterator[Release]:
    """Every release, in batches, for reclassification."""
    last = ""
    while True:
        batch = _load(
            conn,
            sa.select(*_COLUMNS).where(releases.c.id > last).order_by(releases.c.id).limit(_BATCH),
        )
        if not batch:
            return
        yield from batch
        last = batch[-1].id


def next_public_from(conn: Connection, now: datetime) -> datetime | None:
    """The next instant a stored release becomes public (an embargo lift or a scheduled
    publication): when the site must be rebuilt, to the second."""
    query = sa.select(sa.func.min(releases.c.public_from)).where(
        releases.c.retracted.is_(False), releases.c.public_from > now
    )
    lift: datetime | None = conn.execute(query).scalar_one_or_none()
    return lift


def by_ids(conn: Connection, ids: Sequence[str], order: Sequence[str] = ()) -> list[Release]:
    """The stored releases with these ids (any state), oldest public first."""
    found: list[Release] = []
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        found += _load(conn, sa.select(*_COLUMNS).where(releases.c.id.in_(chunk)), order)
    return sorted(found, key=lambda r: (r.public_from, r.id))


# --- for incremental builds: what changed, and the newest part of a feed's stream ---------------


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a release appears in the public output, and a token of its content: what an
    incremental build compares with what it recorded at the last build."""

    id: str
    public_from: datetime
    published: datetime
    lang: str
    categories: tuple[str, ...]
    content_hash: str
    updated: datetime | None
    retracted: bool

    def is_public(self, now: datetime) -> bool:
        return not self.retracted and self.public_from <= now


def max_changed_at(conn: Connection) -> datetime | None:
    """The newest write to any release (an upsert, a retraction, a reclassification)."""
    newest: datetime | None = conn.execute(sa.select(sa.func.max(releases.c.changed_at))).scalar()
    return newest


def changes(
    conn: Connection,
    *,
    changed_from: datetime,
    changed_after: datetime | None,
    public_after: datetime,
    public_until: datetime,
    order: Sequence[str] = (),
) -> list[Placement]:
    """Releases written at or after `changed_from` or after `changed_after`, and those that
    became public in (public_after, public_until]: every release whose output may differ
    from the last build's. Both columns are indexed."""
    written = releases.c.changed_at >= changed_from
    if changed_after is not None:
        written = sa.or_(written, releases.c.changed_at > changed_after)
    lifted = sa.and_(releases.c.public_from > public_after, releases.c.public_from <= public_until)
    query = sa.select(
        releases.c.id,
        releases.c.public_from,
        releases.c.published,
        releases.c.lang,
        releases.c.content_hash,
        releases.c.updated,
        releases.c.retracted,
    ).where(sa.or_(written, lifted))
    rows = conn.execute(query).all()
    cats = _categories(conn, (row.id for row in rows))
    rank = {slug: i for i, slug in enumerate(order)}
    return [
        Placement(
            row.id,
            row.public_from,
            row.published,
            row.lang,
            tuple(_ordered(cats.get(row.id, []), rank)),
            row.content_hash,
            row.updated,
            row.retracted,
        )
        for row in rows
    ]


def _stream(query: sa.Select[Any], topic: str | None, lang: str | None) -> sa.Select[Any]:
    """`query` narrowed to one stream: a topic ("all" or None: every release) and a language."""
    if topic is not None and topic != "all":
        query = query.join(release_topics, release_topics.c.release_id == releases.c.id).where(
            release_topics.c.topic == topic
        )
    if lang is not None:
        query = query.where(releases.c.lang == lang)
    return query


def public_hashed(
    conn: Connection, now: datetime, order: Sequence[str] = ()
) -> list[tuple[Release, str]]:
    """Every public release at `now` with its stored content hash, oldest public first."""
    query = _public(sa.select(*_COLUMNS), now).order_by(releases.c.public_from, releases.c.id)
    return _load_hashed(conn, query, order)


def public_counts(conn: Connection, now: datetime) -> dict[str, dict[str, int]]:
    """Public releases at `now` per effective topic (and 'all') and language."""
    counts: dict[str, dict[str, int]] = {}
    everything = _public(sa.select(releases.c.lang, sa.func.count()), now).group_by(releases.c.lang)
    counts["all"] = {row[0]: row[1] for row in conn.execute(everything)}
    per_topic = _public(
        sa.select(release_topics.c.topic, releases.c.lang, sa.func.count()).join(
            releases, release_topics.c.release_id == releases.c.id
        ),
        now,
    ).group_by(release_topics.c.topic, releases.c.lang)
    for topic, lang, n in conn.execute(per_topic):
        counts.setdefault(topic, {})[lang] = n
    return counts


def count_from(
    conn: Connection,
    now: datetime,
    key: tuple[datetime, str],
    *,
    topic: str | None = None,
    lang: str | None = None,
) -> int:
    """How many public releases of a stream come at or after `key` (public_from, id) in
    feed order. Near the newest end (a new release) it walks the few releases after `key`,
    checking each one's topic; else it counts the topic's releases."""
    if topic is not None and topic != "all":
        member = sa.exists().where(
            release_topics.c.topic == topic, release_topics.c.release_id == releases.c.id
        )
        tail = _stream(sa.select(releases.c.id), None, lang).where(member, _at_or_after(key))
        near = _public(tail, now).limit(_NEAR).subquery()
        found: int = conn.execute(sa.select(sa.func.count()).select_from(near)).scalar_one()
        if found < _NEAR:
            return found
    query = _public(
        _stream(sa.select(sa.func.count()).select_from(releases), topic, lang), now
    ).where(_at_or_after(key))
    counted: int = conn.execute(query).scalar_one()
    return counted


def newest(
    conn: Connection,
    now: datetime,
    count: int,
    *,
    topic: str | None = None,
    lang: str | None = None,
    order: Sequence[str] = (),
) -> list[tuple[Release, str]]:
    """The `count` newest public releases of a stream in feed order (newest public_from,
    then highest id, first), with their stored content hashes."""
    if count <= 0:
        return []
    query = (
        _public(_select(topic, lang), now)
        .order_by(releases.c.public_from.desc(), releases.c.id.desc())
        .limit(count)
    )
    return _load_hashed(conn, query, order)


def _before(key: tuple[datetime, str]) -> Any:
    public_from, release_id = key
    return sa.or_(
        releases.c.public_from < public_from,
        sa.and_(releases.c.public_from == public_from, releases.c.id < release_id),
    )


def _at_or_after(key: tuple[datetime, str]) -> Any:
    public_from, release_id = key
    return sa.and_(
        releases.c.public_from >= public_from,
        sa.or_(releases.c.public_from > public_from, releases.c.id >= release_id),
    )


def around(
    conn: Connection,
    now: datetime,
    key: tuple[datetime, str],
    before: int,
    after: int,
    *,
    topic: str | None = None,
    lang: str | None = None,
    order: Sequence[str] = (),
) -> list[tuple[Release, str]]:
    """The `before` public releases of a stream just before `key` in feed order and the
    `after` ones from `key` on, oldest first, with their content hashes: one archive around
    a release, read from its place in the index however old it is."""
    base = _public(_select(topic, lang), now)
    earlier = (
        base.where(_before(key))
        .order_by(releases.c.public_from.desc(), releases.c.id.desc())
        .limit(before)
    )
    later = base.where(_at_or_after(key)).order_by(releases.c.public_from, releases.c.id)
    found = _load_hashed(conn, earlier, order)[::-1] if before > 0 else []
    return found + (_load_hashed(conn, later.limit(after), order) if after > 0 else [])


def dates_around(
    conn: Connection, now: datetime, key: tuple[datetime, str], before: int, after: int
) -> list[tuple[str, datetime, datetime | None]]:
    """(id, published, updated) of the public releases around `key`, as `around` finds them."""
    columns = sa.select(releases.c.id, releases.c.published, releases.c.updated)
    earlier = (
        _public(columns, now)
        .where(_before(key))
        .order_by(releases.c.public_from.desc(), releases.c.id.desc())
        .limit(before)
    )
    later = (
        _public(columns, now)
        .where(_at_or_after(key))
        .order_by(releases.c.public_from, releases.c.id)
        .limit(after)
    )
    rows = list(conn.execute(earlier))[::-1] if before > 0 else []
    rows += list(conn.execute(later)) if after > 0 else []
    return [(row.id, row.published, row.updated) for row in rows]


def newest_dates(
    conn: Connection, now: datetime, count: int
) -> list[tuple[str, datetime, datetime | None]]:
    """(id, published, updated) of the `count` newest public releases in feed order: what a
    sitemap lists, without loading the releases."""
    if count <= 0:
        return []
    query = (
        _public(sa.select(releases.c.id, releases.c.published, releases.c.updated), now)
        .order_by(releases.c.public_from.desc(), releases.c.id.desc())
        .limit(count)
    )
    return [(row.id, row.published, row.updated) for row in conn.execute(query)]
