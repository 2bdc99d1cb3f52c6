"""Recording hard bounces: once per report, and a suppression from every list at the limit."""

from __future__ import annotations

from datetime import timedelta

from syndicate.model import Subscriber
from syndicate.store import Store
from syndicate.store import bounces as store_bounces
from syndicate.store import digests as store_digests
from syndicate.store import suppressions as store_suppressions
from syndicate.store.bounces import Bounce, Recorded
from syndicate.store.suppressions import EVERY_LIST, Reason
from tests.conftest import NOW


def bounce(fingerprint: str, address: str = "Gone@Example.NET") -> Bounce:
    return Bounce(
        address,
        "5.1.1",
        "550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown",
        f"DSN new/{fingerprint}.eml",
        fingerprint * 64,
    )


def test_a_bounce_is_recorded_once_per_fingerprint(store: Store) -> None:
    with store.begin() as conn:
        assert store_bounces.record(conn, bounce("a"), NOW)
        assert not store_bounces.record(conn, bounce("a"), NOW)
        assert store_bounces.count(conn, "gone@example.net") == 1


def test_bounces_are_counted_by_suppression_key(store: Store) -> None:
    with store.begin() as conn:
        store_bounces.record(conn, bounce("a", "Gone@Example.NET"), NOW)
        store_bounces.record(conn, bounce("b", " gone@example.net"), NOW)
        store_bounces.record(conn, bounce("c", "other@example.net"), NOW)
        assert store_bounces.count(conn, "GONE@example.net") == 2
        assert store_bounces.count(conn, "nobody@example.net") == 0


def test_the_address_is_suppressed_from_every_list_when_it_reaches_the_limit(
    store: Store,
) -> None:
    with store.begin() as conn:
        first = store_bounces.record_and_suppress(conn, bounce("a"), 2, NOW)
        assert first == Recorded(new=True, count=1, suppressed=False)
        assert store_suppressions.among(conn, "weekly", ["gone@example.net"]) == set()
        second = store_bounces.record_and_suppress(conn, bounce("b"), 2, NOW + timedelta(days=7))
        assert second == Recorded(new=True, count=2, suppressed=True)
        found = store_suppressions.of(conn, "weekly", ["gone@example.net"])
    row = found["gone@example.net"]
    assert (row.list_slug, row.reason) == (EVERY_LIST, Reason.BOUNCED.value)
    assert row.created_at == NOW + timedelta(days=7)
    assert row.source == "2 hard bounces, last: DSN new/b.eml (5.1.1)"


def test_a_report_fed_again_is_not_counted_again(store: Store) -> None:
    with store.begin() as conn:
        store_bounces.record_and_suppress(conn, bounce("a"), 2, NOW)
        again = store_bounces.record_and_suppress(conn, bounce("a"), 2, NOW)
        assert again == Recorded(new=False, count=1, suppressed=False)
        assert store_suppressions.among(conn, "weekly", ["gone@example.net"]) == set()


def test_an_address_already_suppressed_is_not_suppressed_again(store: Store) -> None:
    with store.begin() as conn:
        assert store_bounces.record_and_suppress(conn, bounce("a"), 1, NOW).suppressed
        later = store_bounces.record_and_suppress(conn, bounce("b"), 1, NOW + timedelta(days=1))
        assert later == Recorded(new=True, count=2, suppressed=False)
        [row] = store_suppressions.of(conn, "weekly", ["gone@example.net"]).values()
    assert row.created_at == NOW  # the first suppression stays


def test_a_rolled_back_transaction_keeps_neither_the_bounce_nor_the_suppression(
    store: Store,
) -> None:
    class Abort(Exception):
        pass

    try:
        with store.begin() as conn:
            assert store_bounces.record_and_suppress(conn, bounce("a"), 1, NOW).suppressed
            raise Abort
    except Abort:
        pass
    with store.connect() as conn:
        assert store_bounces.count(conn, "gone@example.net") == 0
        assert store_suppressions.among(conn, "weekly", ["gone@example.net"]) == set()


def test_the_address_of_a_delivery_is_found_by_its_id(store: Store) -> None:
    with store.begin() as conn:
        digest = store_digests.create(
            conn,
            list_slug="weekly",
            key="2026-11-23T05:00:00+00:00",
            period=NOW,
            since=NOW - timedelta(days=7),
            new=[],
            corrected=[],
            hashes={},
            recipients=[Subscriber("Gone@Example.NET")],
            now=NOW,
        )
        assert digest is not None
        [delivery] = store_digests.claim(conn, digest.id, 10, NOW)
        assert store_bounces.delivery_address(conn, delivery.id) == "Gone@Example.NET"
        assert store_bounces.delivery_address(conn, delivery.id + 1) is None
