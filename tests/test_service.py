"""What the service owes at a given instant: the current period within misfire_grace,
nothing later than that (its releases fold into the next digest)."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syndicate.config import Config
from syndicate.digest.outbox import create
from syndicate.ingest import ingest
from syndicate.service import due_digests, due_period, waiting
from syndicate.store import Store
from syndicate.store import digests as store_digests
from tests.conftest import BASE_CONFIG, WriteConfig, write_release

MONDAY_8 = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)  # Monday 08:00 in Istanbul


@pytest.fixture
def config(project: Path, write_config: WriteConfig) -> Config:
    (project / "config" / "lists").mkdir()
    (project / "config" / "lists" / "w.yaml").write_text("subscribers: [desk@example.com]\n")
    return write_config(
        BASE_CONFIG
        + textwrap.dedent("""\
        lists:
          weekly:
            title: Weekly
            schedule: "0 8 * * mon"
            timezone: Europe/Istanbul
            subscribers: lists/w.yaml
            misfire_grace: 6h
        """)
    )


@pytest.mark.parametrize(
    ("late", "due"),
    [(timedelta(0), True), (timedelta(hours=6), True), (timedelta(hours=6, seconds=1), False)],
)
def test_a_late_start_sends_within_the_grace_only(
    config: Config, late: timedelta, due: bool
) -> None:
    assert due_period(config, "weekly", MONDAY_8 + late) == (MONDAY_8 if due else None)


def test_a_period_missed_past_its_grace_folds_into_the_next(
    project: Path, config: Config, store: Store
) -> None:
    write_release(project / "content", "a.md", "title: A\npublished: 2026-11-10")
    ingest(config, store, MONDAY_8)
    create(config, store, "weekly", MONDAY_8 - timedelta(days=14), MONDAY_8)  # up to 9 Nov
    write_release(project / "content", "b.md", "title: B\npublished: 2026-11-20")
    ingest(config, store, MONDAY_8)
    assert due_digests(config, store, "weekly", MONDAY_8 + timedelta(hours=7)) == []
    [digest] = due_digests(config, store, "weekly", MONDAY_8 + timedelta(days=7))
    with store.connect() as conn:
        assert store_digests.members(conn, digest.id) == (["a", "b"], [])


def test_due_digests_are_created_once_and_wait_to_be_sent(
    project: Path, config: Config, store: Store
) -> None:
    write_release(project / "content", "a.md", "title: A\npublished: 2026-11-20")
    ingest(config, store, MONDAY_8)
    [first] = due_digests(config, store, "weekly", MONDAY_8 + timedelta(minutes=1))
    [again] = due_digests(config, store, "weekly", MONDAY_8 + timedelta(minutes=2))
    assert first == again
    assert waiting(config, store) == ([first], [])
