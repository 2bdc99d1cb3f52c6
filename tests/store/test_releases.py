"""Release queries against a real SQLite file."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from syndicate.errors import StoreError
from syndicate.model import Attachment, Kind, Release
from syndicate.store import Store
from syndicate.store import releases as store_releases
from syndicate.store.releases import Placement, Write
from tests.conftest import NOW

ORDER = ["trafficking", "syria", "events"]


def make(rid: str, days_ago: float, *categories: str, **changes: object) -> Release:
    base = Release(
        id=rid,
        title=rid.upper(),
        published=NOW - timedelta(days=days_ago),
        url=f"https://press.example.org/releases/{rid}/",
        lang="en",
        categories=categories,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def put(store: Store, *releases: Release) -> None:
    with store.begin() as conn:
        store_releases.write(conn, [Write(r, "test", None, new=True) for r in releases], NOW)


def test_a_release_round_trips_every_field(store: Store) -> None:
    original = make(
        "full",
        1,
        "trafficking",
        "events",
        updated=NOW,
        embargo=NOW + timedelta(hours=3),
        dateline="Ankara",
        kind=Kind.OP_ED,
        author="A. Author",
        summary="Summary",
        body_html="<p>Body</p>",
        topics=("events",),
        attachments=(Attachment("https://x.org/a.pdf", "application/pdf", 1234, "Report"),),
        published=datetime(2026, 11, 25, 8, 30, 15, 250000, tzinfo=UTC),
    )
    put(store, original)
    with store.connect() as conn:
        loaded = store_releases.get(conn, "full", order=ORDER)
    assert loaded == original


def test_latest_is_newest_first_and_limited(store: Store) -> None:
    put(store, make("old", 3), make("new", 1), make("mid", 2))
    with store.connect() as conn:
        assert [r.id for r in store_releases.latest(conn, NOW)] == ["new", "mid", "old"]
        assert [r.id for r in store_releases.latest(conn, NOW, limit=2)] == ["new", "mid"]


def test_latest_per_topic_and_language(store: Store) -> None:
    put(
        store,
        make("a", 1, "trafficking"),
        make("b", 2, "syria"),
        make("c", 3, "trafficking", "syria", lang="tr"),
    )
    with store.connect() as conn:
        assert [r.id for r in store_releases.latest(conn, NOW, topic="trafficking")] == ["a", "c"]
        assert [r.id for r in store_releases.latest(conn, NOW, topic="all")] == ["a", "b", "c"]
        assert [r.id for r in store_releases.latest(conn, NOW, lang="tr")] == ["c"]


def test_embargoed_and_retracted_releases_are_not_public(store: Store) -> None:
    put(
        store,
        make("public", 1),
        make("embargoed", 1, embargo=NOW + timedelta(seconds=1)),
        make("retracted", 1, retracted=True),
    )
    with store.connect() as conn:
        assert [r.id for r in store_releases.latest(conn, NOW)] == ["public"]
        later = NOW + timedelta(seconds=1)
        assert {r.id for r in store_releases.latest(conn, later)} == {"public", "embargoed"}
        assert len(store_releases.everything(conn)) == 3


def test_public_between_covers_releases_that_became_public_in_the_window(store: Store) -> None:
    put(
        store,
        make("before", 10),
        make("inside", 5),
        make("lifted", 20, embargo=NOW - timedelta(days=4)),
        make("edge", 7),
        make("retracted", 5, retracted=True),
    )
    with store.connect() as conn:
        found = store_releases.public_between(conn, NOW - timedelta(days=7), NOW)
    assert [r.id for r in found] == ["inside", "lifted"]


def test_categories_come_back_in_config_order(store: Store) -> None:
    put(store, make("r", 1, "events", "trafficking", "syria"))
    with store.connect() as conn:
        loaded = store_releases.get(conn, "r", order=ORDER)
    assert loaded is not None and loaded.categories == ("trafficking", "syria", "events")


def test_topic_counts_count_only_public_releases(store: Store) -> None:
    put(
        store,
        make("a", 1, "trafficking"),
        make("b", 1, "trafficking", "syria"),
        make("c", 1, "syria", retracted=True),
    )
    with store.connect() as conn:
        assert store_releases.topic_counts(conn, NOW) == {"trafficking": 2, "syria": 1, "all": 2}


def test_retract_keeps_the_row(store: Store) -> None:
    put(store, make("r", 1))
    with store.begin() as conn:
        store_releases.retract(conn, ["r"], NOW)
    with store.connect() as conn:
        loaded = store_releases.get(conn, "r")
    assert loaded is not None and loaded.retracted and loaded.title == "R"


def test_iter_all_pages_through_every_release(store: Store) -> None:
    put(store, *(make(f"r{i:04d}", i) for i in range(1200)))
    with store.connect() as conn:
        ids = [r.id for r in store_releases.iter_all(conn)]
    assert len(ids) == 1200 and ids == sorted(ids)


def test_a_failed_transaction_writes_nothing(store: Store) -> None:
    with pytest.raises(StoreError, match=r"(?i)unique"), store.begin() as conn:
        store_releases.write(conn, [Write(make("x", 1), "test", None, new=True)], NOW)
        store_releases.write(conn, [Write(make("x", 1), "test", None, new=True)], NOW)
    with store.connect() as conn:
        assert store_releases.everything(conn) == []


# --- what incremental builds ask ---------------------------------------------------------------


def ids(rows: list[tuple[Release, str]]) -> list[str]:
    return [release.id for release, _ in rows]


def test_changes_finds_writes_since_a_mark_and_embargoes_lifted_in_a_window(store: Store) -> None:
    with store.begin() as conn:
        store_releases.write(conn, [Write(make("old", 9), "test", None, new=True)], NOW)
        store_releases.write(
            conn,
            [Write(make("lifting", 9, embargo=NOW + timedelta(hours=2)), "test", None, new=True)],
            NOW,
        )
        later = NOW + timedelta(hours=1)
        store_releases.write(conn, [Write(make("new", 1, "syria"), "test", None, new=True)], later)
        store_releases.retract(conn, ["old"], later + timedelta(minutes=1))
    with store.connect() as conn:
        assert store_releases.max_changed_at(conn) == later + timedelta(minutes=1)

        def found(**window: Any) -> dict[str, Placement]:
            arguments = {
                "changed_from": later,
                "changed_after": None,
                "public_after": NOW,
                "public_until": NOW,
                **window,
            }
            return {p.id: p for p in store_releases.changes(conn, **arguments, order=ORDER)}

        assert sorted(found()) == ["new", "old"]
        assert sorted(found(changed_from=later + timedelta(hours=5), changed_after=later)) == [
            "old"
        ]
        assert sorted(found(public_until=NOW + timedelta(hours=2))) == ["lifting", "new", "old"]
        new, old = found()["new"], found()["old"]
    assert new.categories == ("syria",) and new.is_public(NOW)
    assert old.retracted and not old.is_public(NOW)


def test_a_reclassification_is_a_change(store: Store) -> None:
    put(store, make("r", 1, "syria"))
    later = NOW + timedelta(hours=1)
    with store.begin() as conn:
        store_releases.set_categories(conn, {"r": ("events",)}, later)
    with store.connect() as conn:
        assert store_releases.max_changed_at(conn) == later
        loaded = store_releases.get(conn, "r")
    assert loaded is not None and loaded.categories == ("events",)


def test_streams_are_read_from_their_newest_end(store: Store) -> None:
    put(
        store,
        *(make(f"r{n}", n, "syria" if n % 2 else "events") for n in range(1, 9)),
        make("tr", 0.5, "syria", lang="tr"),
        make("hidden", 0.1, "syria", retracted=True),
    )
    with store.connect() as conn:
        assert ids(store_releases.newest(conn, NOW, 3)) == ["tr", "r1", "r2"]
        assert ids(store_releases.newest(conn, NOW, 2, topic="syria")) == ["tr", "r1"]
        assert ids(store_releases.newest(conn, NOW, 5, lang="tr")) == ["tr"]
        assert store_releases.public_counts(conn, NOW) == {
            "all": {"en": 8, "tr": 1},
            "syria": {"en": 4, "tr": 1},
            "events": {"en": 4},
        }
        r3 = store_releases.get(conn, "r3")
        assert r3 is not None
        key = (r3.public_from, r3.id)
        assert store_releases.count_from(conn, NOW, key) == 4  # r3, r2, r1, tr
        assert store_releases.count_from(conn, NOW, key, topic="syria") == 3
        assert ids(store_releases.around(conn, NOW, key, 2, 2)) == ["r5", "r4", "r3", "r2"]
        assert ids(store_releases.around(conn, NOW, key, 1, 1, topic="syria")) == ["r5", "r3"]
        dates = store_releases.dates_around(conn, NOW, key, 1, 2)
        assert [d[0] for d in dates] == ["r4", "r3", "r2"]
        newest = store_releases.newest_dates(conn, NOW, 2)
        assert [d[0] for d in newest] == ["tr", "r1"]
        hashed = store_releases.public_hashed(conn, NOW)
    assert ids(hashed) == [f"r{n}" for n in range(8, 0, -1)] + ["tr"]
    assert all(h == r.content_hash() for r, h in hashed)


def test_counting_from_far_back_in_a_topic_gives_the_same_count(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(store, *(make(f"r{n}", n, "syria" if n % 3 else "events") for n in range(1, 12)))
    with store.connect() as conn:
        r9 = store_releases.get(conn, "r9")
        assert r9 is not None
        key = (r9.public_from, r9.id)
        near = store_releases.count_from(conn, NOW, key, topic="syria")
        monkeypatch.setattr(store_releases, "_NEAR", 2)  # too far for a walk: count the topic
        assert store_releases.count_from(conn, NOW, key, topic="syria") == near == 6
