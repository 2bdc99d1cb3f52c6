"""Creating digests against a real store: exactly once per period, watermarks, corrections,
missed periods folded into the next, alerts for `immediate` lists."""

from __future__ import annotations

import textwrap
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from syndicate.config import Config
from syndicate.digest.outbox import create, create_alerts
from syndicate.errors import ConfigError
from syndicate.ingest import ingest
from syndicate.store import Store
from syndicate.store import digests as store_digests
from syndicate.store import subscriptions as store_subscriptions
from syndicate.store.schema import deliveries
from tests.conftest import BASE_CONFIG, WriteConfig, write_release

MONDAY = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)  # 08:00 in Istanbul
NEXT_MONDAY = MONDAY + timedelta(days=7)
LISTS = """\
lists:
  weekly:
    title: Weekly digest
    schedule: "0 8 * * mon"
    timezone: Europe/Istanbul
    subscribers: lists/weekly.yaml
  alerts:
    title: Alerts
    schedule: immediate
    topics: [trafficking]
    subscribers: lists/alerts.yaml
    misfire_grace: 1h
"""


@pytest.fixture
def lists(project: Path, write_config: WriteConfig) -> Config:
    (project / "config" / "lists").mkdir()
    (project / "config" / "lists" / "weekly.yaml").write_text(
        textwrap.dedent("""\
        subscribers:
          - desk@example.com
          - email: reporter@example.org
            topics: [opinion]
        """)
    )
    (project / "config" / "lists" / "alerts.yaml").write_text("subscribers: [desk@example.com]\n")
    return write_config(BASE_CONFIG + LISTS)


def publish(
    project: Path, config: Config, store: Store, rid: str, when: datetime, extra: str = ""
) -> None:
    write_release(
        project / "content",
        f"{rid}.md",
        f"title: Release {rid} on trafficking\npublished: {when.isoformat()}\n{extra}",
    )
    ingest(config, store, when)


def ids(store: Store, digest_id: int) -> tuple[list[str], list[str]]:
    with store.connect() as conn:
        return store_digests.members(conn, digest_id)


def test_a_digest_holds_the_week_and_a_delivery_per_recipient(
    project: Path, lists: Config, store: Store
) -> None:
    publish(project, lists, store, "old", MONDAY - timedelta(days=8))
    publish(project, lists, store, "a", MONDAY - timedelta(days=2))
    created = create(lists, store, "weekly", MONDAY, MONDAY)
    assert created.new and created.digest is not None
    assert ids(store, created.digest.id) == (["a"], [])
    with store.connect() as conn:
        [(digest, counts)] = store_digests.status(conn, "weekly")
        assert store_digests.watermark(conn, "weekly") == MONDAY
    # reporter@ narrowed to opinion: nothing for them this week, so no delivery
    assert counts["pending"] == 1 and digest.since == MONDAY - timedelta(days=7)


def test_the_same_period_is_created_once(project: Path, lists: Config, store: Store) -> None:
    publish(project, lists, store, "a", MONDAY - timedelta(days=2))
    first = create(lists, store, "weekly", MONDAY, MONDAY)
    again = create(lists, store, "weekly", MONDAY, MONDAY + timedelta(hours=1))
    assert first.digest is not None and again.digest == first.digest and not again.new


def test_concurrent_creators_make_one_digest(project: Path, lists: Config, store: Store) -> None:
    publish(project, lists, store, "a", MONDAY - timedelta(days=2))
    results: list[object] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        results.append(create(lists, store, "weekly", MONDAY, MONDAY).digest)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with store.connect() as conn:
        [(_, counts)] = store_digests.status(conn, "weekly")
    assert counts["pending"] == 1
    assert len({getattr(r, "id", None) for r in results}) == 1


def test_the_next_digest_starts_at_the_watermark(
    project: Path, lists: Config, store: Store
) -> None:
    publish(project, lists, store, "a", MONDAY - timedelta(days=2))
    create(lists, store, "weekly", MONDAY, MONDAY)
    publish(project, lists, store, "b", MONDAY + timedelta(days=1))
    second = create(lists, store, "weekly", NEXT_MONDAY, NEXT_MONDAY)
    assert second.digest is not None and ids(store, second.digest.id) == (["b"], [])


def test_a_missed_period_folds_into_the_next(project: Path, lists: Config, store: Store) -> None:
    publish(project, lists, store, "a", MONDAY - timedelta(days=2))
    create(lists, store, "weekly", MONDAY - timedelta(days=7), MONDAY - timedelta(days=7))
    publish(project, lists, store, "b", MONDAY + timedelta(days=1))
    later = create(lists, store, "weekly", NEXT_MONDAY, NEXT_MONDAY)  # MONDAY never ran
    assert later.digest is not None and ids(store, later.digest.id) == (["a", "b"], [])


def test_an_edited_release_comes_back_as_a_correction(
    project: Path, lists: Config, store: Store
) -> None:
    publish(project, lists, store, "a", MONDAY - timedelta(days=2))
    create(lists, store, "weekly", MONDAY, MONDAY)
    publish(project, lists, store, "a", MONDAY - timedelta(days=2), "summary: Corrected.")
    second = create(lists, store, "weekly", NEXT_MONDAY, NEXT_MONDAY)
    assert second.digest is not None and ids(store, second.digest.id) == ([], ["a"])
    third = create(
        lists, store, "weekly", NEXT_MONDAY + timedelta(days=7), NEXT_MONDAY + timedelta(days=7)
    )
    assert third.digest is None


def test_an_embargo_lift_counts_as_becoming_public(
    project: Path, lists: Config, store: Store
) -> None:
    lift = MONDAY + timedelta(days=1)
    publish(project, lists, store, "e", MONDAY - timedelta(days=3), f"embargo: {lift.isoformat()}")
    assert create(lists, store, "weekly", MONDAY, MONDAY).digest is None
    second = create(lists, store, "weekly", NEXT_MONDAY, NEXT_MONDAY)
    assert second.digest is not None and ids(store, second.digest.id) == (["e"], [])


def test_nothing_new_sends_nothing_but_moves_the_watermark(lists: Config, store: Store) -> None:
    assert create(lists, store, "weekly", MONDAY, MONDAY).digest is None
    with store.connect() as conn:
        assert store_digests.watermark(conn, "weekly") == MONDAY
        assert store_digests.status(conn) == []


def test_a_broken_list_file_creates_nothing(project: Path, lists: Config, store: Store) -> None:
    publish(project, lists, store, "a", MONDAY - timedelta(days=2))
    (project / "config" / "lists" / "weekly.yaml").write_text("subscribers:\n  - nobody\n")
    with pytest.raises(ConfigError, match=r"weekly\.yaml:2"):
        create(lists, store, "weekly", MONDAY, MONDAY)
    with store.connect() as conn:
        assert store_digests.status(conn) == []
        assert store_digests.watermark(conn, "weekly") is None


def test_a_problem_late_in_a_long_list_file_creates_nothing(
    project: Path, lists: Config, store: Store
) -> None:
    """The list streams into the outbox; a bad entry after thousands of good ones still
    leaves no digest, no delivery and no watermark behind."""
    publish(project, lists, store, "a", MONDAY - timedelta(days=2))
    good = "".join(f"  - reader{n}@example.org\n" for n in range(3000))
    (project / "config" / "lists" / "weekly.yaml").write_text(
        f"subscribers:\n{good}  - reader7@example.org\n"
    )
    with pytest.raises(ConfigError, match=r"weekly\.yaml:3002: .*already listed on line 9"):
        create(lists, store, "weekly", MONDAY, MONDAY)
    with store.connect() as conn:
        assert store_digests.status(conn) == []
        assert store_digests.watermark(conn, "weekly") is None


def test_self_service_subscribers_and_topic_choices_join_the_list(
    project: Path, lists: Config, store: Store
) -> None:
    publish(project, lists, store, "a", MONDAY - timedelta(days=2))
    with store.begin() as conn:
        store_subscriptions.request(conn, "weekly", "self@example.net", [], MONDAY)
        store_subscriptions.activate(conn, "weekly", "self@example.net", MONDAY)
        store_subscriptions.request(conn, "weekly", "pending@example.net", [], MONDAY)
        store_subscriptions.request(conn, "weekly", "DESK@example.com", [], MONDAY)  # listed
        store_subscriptions.activate(conn, "weekly", "desk@example.com", MONDAY)
        store_subscriptions.choose_topics(
            conn, "weekly", "reporter@example.org", ["trafficking"], MONDAY
        )
    digest = create(lists, store, "weekly", MONDAY, MONDAY).digest
    assert digest is not None
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(deliveries.c.address, deliveries.c.topics).where(
                deliveries.c.digest_id == digest.id
            )
        ).all()
    assert sorted((a, tuple(t)) for a, t in rows) == [
        ("desk@example.com", ()),
        ("reporter@example.org", ("trafficking",)),
        ("self@example.net", ()),
    ]


def test_alerts_send_each_new_release_once_and_never_late(
    project: Path, lists: Config, store: Store
) -> None:
    start = MONDAY
    assert create_alerts(lists, store, "alerts", start) == []  # the first look sends no history
    publish(project, lists, store, "fresh", start + timedelta(minutes=10))
    publish(project, lists, store, "stale", start + timedelta(minutes=5))
    now = start + timedelta(hours=1, minutes=7)
    created = create_alerts(lists, store, "alerts", now)
    sent = {c.plan.new[0].id for c in created if c.digest is not None}
    assert sent == {"fresh"}  # 'stale' is 1h02 old: past misfire_grace, skipped
    assert create_alerts(lists, store, "alerts", now + timedelta(minutes=1)) == []


def test_recipients_with_nothing_in_their_topics_get_no_delivery(
    project: Path, lists: Config, store: Store
) -> None:
    publish(project, lists, store, "a", MONDAY - timedelta(days=2))  # trafficking, not opinion
    created = create(lists, store, "weekly", MONDAY, MONDAY)
    assert created.digest is not None
    with store.connect() as conn:
        claimed = store_digests.claim(conn, created.digest.id, 10, MONDAY)
    assert [d.address for d in claimed] == ["desk@example.com"]


def test_the_same_instant_in_another_zone_is_the_same_period(
    project: Path, lists: Config, store: Store
) -> None:
    publish(project, lists, store, "a", MONDAY - timedelta(days=2))
    first = create(lists, store, "weekly", MONDAY, MONDAY)
    local = MONDAY.astimezone(ZoneInfo("Europe/Istanbul"))
    again = create(lists, store, "weekly", local, MONDAY)
    assert first.digest is not None and again.digest == first.digest
