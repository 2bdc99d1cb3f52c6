"""Release queries against a real SQLite file."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from syndicate.errors import StoreError
from syndicate.model import Attachment, Kind, Release
from syndicate.store import Store
from syndicate.store import releases as store_releases
from syndicate.store.releases import Write
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
