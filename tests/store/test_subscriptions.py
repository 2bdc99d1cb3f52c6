"""Self-service state in the store, on SQLite and PostgreSQL: requests, activation, the
hourly confirmation slot, topic choices, and lifting suppressions with a record."""

from __future__ import annotations

from datetime import timedelta

from syndicate.store import Store
from syndicate.store import subscriptions as subs
from syndicate.store import suppressions as supp
from syndicate.store.subscriptions import State
from syndicate.store.suppressions import EVERY_LIST, Reason
from tests.conftest import NOW

HOUR = timedelta(hours=1)


def test_a_request_is_pending_and_keeps_the_newest_topics_until_confirmed(store: Store) -> None:
    with store.begin() as conn:
        subs.request(conn, "weekly", "Reader@example.org", ["a"], NOW)
        subs.request(conn, "weekly", "reader@example.org", ["b"], NOW + HOUR)
    with store.connect() as conn:
        row = subs.get(conn, "weekly", "READER@example.org")
    assert row is not None
    assert (row.state, row.topics, row.requested_at) == (State.PENDING, ("b",), NOW + HOUR)
    with store.begin() as conn:
        assert subs.activate(conn, "weekly", "reader@example.org", NOW + 2 * HOUR)
        assert not subs.activate(conn, "weekly", "reader@example.org", NOW + 3 * HOUR)
        subs.request(conn, "weekly", "reader@example.org", ["c"], NOW + 4 * HOUR)
    with store.connect() as conn:
        active = subs.get(conn, "weekly", "reader@example.org")
        assert [s.email for s in subs.of_list(conn, "weekly")] == ["reader@example.org"]
    assert active is not None
    assert (active.state, active.topics, active.confirmed_at) == (
        State.ACTIVE,
        ("b",),
        NOW + 2 * HOUR,
    )


def test_one_confirmation_slot_an_hour_per_address(store: Store) -> None:
    with store.begin() as conn:
        assert subs.claim_confirmation(conn, "r@example.org", NOW, HOUR)
        assert not subs.claim_confirmation(conn, "R@example.org", NOW + HOUR / 2, HOUR)
        assert subs.claim_confirmation(conn, "r@example.org", NOW + HOUR, HOUR)
        subs.release_confirmation(conn, "r@example.org", NOW + HOUR)
        assert subs.claim_confirmation(conn, "r@example.org", NOW + HOUR, HOUR)


def test_topic_choices_replace_each_other(store: Store) -> None:
    with store.begin() as conn:
        subs.choose_topics(conn, "weekly", "Desk@example.com", ["a", "b"], NOW)
        subs.choose_topics(conn, "weekly", "desk@example.com", ["b"], NOW + HOUR)
    with store.connect() as conn:
        assert subs.topic_choice(conn, "weekly", "desk@example.com") == ("b",)
        assert subs.topic_choice(conn, "alerts", "desk@example.com") is None
        assert subs.topic_choices_of(conn, "weekly") == {"desk@example.com": ("b",)}


def test_lift_removes_older_suppressions_and_records_each(store: Store) -> None:
    with store.begin() as conn:
        supp.suppress(conn, "r@example.org", "weekly", Reason.BOUNCED, "smtp", NOW)
        lifted = subs.lift(
            conn, "r@example.org", "weekly", ["weekly"], before=NOW + HOUR, by="ana", now=NOW
        )
    assert [(r.by, r.lifted.reason, r.lifted.list_slug) for r in lifted] == [
        ("ana", "bounced", "weekly")
    ]
    with store.connect() as conn:
        assert supp.among(conn, "weekly", ["r@example.org"]) == set()
        assert subs.history(conn, "r@example.org") == lifted


def test_a_suppression_newer_than_the_request_stays(store: Store) -> None:
    with store.begin() as conn:
        supp.suppress(conn, "r@example.org", "weekly", Reason.UNSUBSCRIBED, "page", NOW + HOUR)
        assert subs.lift(conn, "r@example.org", "weekly", [], before=NOW, by="x", now=NOW) == []
    with store.connect() as conn:
        assert supp.among(conn, "weekly", ["r@example.org"]) == {"r@example.org"}


def test_lifting_every_list_narrows_it_to_the_other_lists(store: Store) -> None:
    with store.begin() as conn:
        supp.suppress(conn, "r@example.org", EVERY_LIST, Reason.UNSUBSCRIBED, "page", NOW)
        subs.lift(
            conn,
            "r@example.org",
            "alerts",
            ["weekly", "alerts", "monthly"],
            before=NOW + HOUR,
            by="self",
            now=NOW + HOUR,
        )
    with store.connect() as conn:
        assert supp.among(conn, "alerts", ["r@example.org"]) == set()
        for other in ("weekly", "monthly"):
            [row] = supp.of(conn, other, ["r@example.org"]).values()
            assert (row.list_slug, row.reason, row.created_at) == (other, "unsubscribed", NOW)
