"""WebSub publish pings against a real hub on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs

from syndicate.websub import publish
from tests.localhttp import Answer, Request, serve

FEEDS = [
    "https://press.example.org/news/feeds/all.atom",
    "https://press.example.org/news/feeds/all.rss",
]


def no_sleep(_: float) -> None:
    return None


def test_each_changed_feed_is_announced_to_each_hub() -> None:
    with serve(lambda r: (204, {}, b"")) as one, serve(lambda r: (202, {}, b"")) as two:
        failures = publish([one.url, two.url], FEEDS, sleep=no_sleep)
    assert failures == []
    for hub in (one, two):
        forms = [parse_qs(r.body.decode()) for r in hub.requests]
        assert [f["hub.mode"] for f in forms] == [["publish"], ["publish"]]
        assert [f["hub.url"][0] for f in forms] == FEEDS
        assert all(r.method == "POST" for r in hub.requests)


def test_a_server_error_is_retried_then_reported_without_raising() -> None:
    with serve(lambda r: (503, {}, b"")) as hub:
        failures = publish([hub.url], FEEDS[:1], attempts=3, sleep=no_sleep)
    assert len(hub.requests) == 3
    assert failures == [f"WebSub hub {hub.url}: {FEEDS[0]}: HTTP 503 Service Unavailable"]


def test_a_transient_failure_then_success_is_no_failure() -> None:
    answers: Iterator[Answer] = iter([(500, {}, b""), (204, {}, b"")])

    def respond(_: Request) -> Answer:
        return next(answers)

    with serve(respond) as hub:
        assert publish([hub.url], FEEDS[:1], sleep=no_sleep) == []
    assert len(hub.requests) == 2


def test_a_client_error_is_not_retried() -> None:
    with serve(lambda r: (400, {}, b"bad topic")) as hub:
        failures = publish([hub.url], FEEDS[:1], attempts=3, sleep=no_sleep)
    assert len(hub.requests) == 1
    assert failures == [f"WebSub hub {hub.url}: {FEEDS[0]}: HTTP 400 Bad Request"]


def test_an_unreachable_hub_is_reported() -> None:
    with serve(lambda r: (204, {}, b"")) as hub:
        gone = hub.url
    failures = publish([gone], FEEDS[:1], attempts=2, sleep=no_sleep, timeout=2)
    assert len(failures) == 1 and failures[0].startswith(f"WebSub hub {gone}: {FEEDS[0]}: ")


def test_backoff_doubles_between_attempts() -> None:
    waits: list[float] = []
    with serve(lambda r: (500, {}, b"")) as hub:
        publish([hub.url], FEEDS[:1], attempts=4, backoff=0.5, sleep=waits.append)
    assert waits == [0.5, 1.0, 2.0]


def test_nothing_to_announce_sends_nothing() -> None:
    with serve(lambda r: (204, {}, b"")) as hub:
        assert publish([hub.url], []) == []
        assert publish([], FEEDS) == []
    assert hub.requests == []


def test_a_hub_that_fails_every_retry_is_not_tried_for_the_other_feeds() -> None:
    with serve(lambda r: (503, {}, b"")) as down, serve(lambda r: (204, {}, b"")) as up:
        failures = publish([down.url, up.url], FEEDS, attempts=2, sleep=no_sleep)
    assert len(down.requests) == 2 and len(up.requests) == 2
    assert failures == [
        f"WebSub hub {down.url}: {FEEDS[0]}: HTTP 503 Service Unavailable; "
        "1 more feed(s) not announced"
    ]
