"""The pure upsert decider: what an incoming release changes in the store."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from syndicate.ingest.upsert import Candidate, Outcome, decide
from syndicate.model import Release
from syndicate.store.releases import Stored

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
PUBLISHED = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
ORIGIN = "markdown:../content"


def release(**changes: object) -> Release:
    base = Release(
        id="r1",
        title="Title",
        published=PUBLISHED,
        url="https://press.example.org/news/releases/r1/",
        lang="en",
        summary="Summary.",
        body_html="<p>Summary.</p>",
        categories=("trafficking",),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def stored(r: Release, origin: str = ORIGIN, ref: str | None = "r1.md") -> Stored:
    return Stored(r, r.content_hash(), origin, ref)


def candidate(r: Release, *, origin: str = ORIGIN, defaulted: bool = False) -> Candidate:
    return Candidate(r, origin, "r1.md", defaulted)


def test_unknown_id_is_new_and_written_as_given() -> None:
    decision = decide(candidate(release()), None, NOW)
    assert decision.outcome is Outcome.NEW
    assert decision.write is not None and decision.write.new
    assert decision.write.release.updated is None


def test_same_content_is_unchanged_and_writes_nothing() -> None:
    decision = decide(candidate(release()), stored(release()), NOW)
    assert decision.outcome is Outcome.UNCHANGED
    assert decision.write is None


def test_changed_body_is_an_update_that_sets_updated_and_keeps_published() -> None:
    decision = decide(candidate(release(body_html="<p>Corrected.</p>")), stored(release()), NOW)
    assert decision.outcome is Outcome.UPDATED
    assert decision.write is not None
    assert decision.write.release.updated == NOW
    assert decision.write.release.published == PUBLISHED


def test_explicit_updated_from_the_source_wins_over_now() -> None:
    given = PUBLISHED + timedelta(days=1)
    decision = decide(candidate(release(title="New", updated=given)), stored(release()), NOW)
    assert decision.write is not None and decision.write.release.updated == given


def test_unchanged_content_keeps_the_stored_updated_time() -> None:
    earlier = PUBLISHED + timedelta(hours=2)
    decision = decide(candidate(release(categories=())), stored(release(updated=earlier)), NOW)
    assert decision.outcome is Outcome.UNCHANGED
    assert decision.write is not None  # categories changed: bookkeeping only
    assert decision.write.release.updated == earlier


def test_defaulted_publication_time_keeps_the_first_ingest_time() -> None:
    reingested = release(published=NOW)
    decision = decide(candidate(reingested, defaulted=True), stored(release()), NOW)
    assert decision.outcome is Outcome.UNCHANGED


def test_retracted_flag_is_a_retraction() -> None:
    decision = decide(candidate(release(retracted=True)), stored(release()), NOW)
    assert decision.outcome is Outcome.RETRACTED
    assert decision.write is not None and decision.write.release.retracted


def test_a_retracted_release_that_comes_back_is_an_update() -> None:
    decision = decide(candidate(release()), stored(release(retracted=True)), NOW)
    assert decision.outcome is Outcome.UPDATED
    assert decision.write is not None and not decision.write.release.retracted


def test_an_id_owned_by_another_source_is_rejected_with_the_owner_named() -> None:
    decision = decide(candidate(release(), origin="json:export.json"), stored(release()), NOW)
    assert decision.outcome is Outcome.REJECTED
    assert ORIGIN in decision.reason
    assert decision.write is None


def test_another_source_may_take_over_a_retracted_id() -> None:
    old = stored(release(retracted=True))
    decision = decide(candidate(release(), origin="json:export.json"), old, NOW)
    assert decision.outcome is Outcome.UPDATED
    assert decision.write is not None and decision.write.origin == "json:export.json"
