"""Release queries. Functions take a Connection so callers choose the transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from syndicate.model import Attachment, Kind, Release
from syndicate.store.schema import release_topics, releases

_BATCH = 500


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
        topics=tuple(row["topics"]),
        categories=tuple(categories),
        attachments=tuple(Attachment(**a) for a in row["attachments"]),
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
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        query = sa.select(release_topics.c.release_id, release_topics.c.topic).where(
            release_topics.c.release_id.in_(chunk)
        )
        for release_id, topic in conn.execute(query):
            out.setdefault(release_id, []).append(topic)
    return out


def _load(conn: Connection, query: sa.Select[Any], order: Sequence[str] = ()) -> list[Release]:
    """Rows to releases; categories come back in the order of `order` (config order)."""
    rows = conn.execute(query).mappings().all()
    cats = _categories(conn, (row["id"] for row in rows))
    rank = {slug: i for i, slug in enumerate(order)}
    return [
        _to_release(row, sorted(cats.get(row["id"], []), key=lambda s: (rank.get(s, len(rank)), s)))
        for row in rows
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
        rows = conn.execute(sa.select(releases).where(releases.c.id.in_(chunk))).mappings().all()
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
    found = _load(conn, sa.select(releases).where(releases.c.id == release_id), order)
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


def set_categories(conn: Connection, categories: Mapping[str, Sequence[str]]) -> None:
    ids = list(categories)
    for start in range(0, len(ids), _BATCH):
        conn.execute(
            release_topics.delete().where(
                release_topics.c.release_id.in_(ids[start : start + _BATCH])
            )
        )
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
    query = sa.select(releases)
    if topic is not None and topic != "all":
        query = query.join(release_topics, release_topics.c.release_id == releases.c.id).where(
            release_topics.c.topic == topic
        )
    if lang is not None:
        query = query.where(releases.c.lang == lang)
    return query


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


def public_hashes(conn: Connection, now: datetime) -> dict[str, str]:
    """id → content hash of every public release, as stored at upsert."""
    query = _public(sa.select(releases.c.id, releases.c.content_hash), now)
    return {row.id: row.content_hash for row in conn.execute(query)}


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
            sa.select(releases).where(releases.c.id > last).order_by(releases.c.id).limit(_BATCH),
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
        found += _load(conn, sa.select(releases).where(releases.c.id.in_(chunk)), order)
    return sorted(found, key=lambda r: (r.public_from, r.id))
