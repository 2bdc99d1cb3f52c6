"""Clock faults: the list's time zone changes its offset (DST). A weekly digest must fall due
once a week, at the configured local time, across the spring-forward and fall-back weekends.

The periods are computed the way the service computes them: `latest_fire(now)` at instants
stepping through the transition (every 30 minutes from the Saturday before to the Tuesday
after, every 3 hours for two weeks either side, and each fire instant itself and a microsecond
either side), plus the chain of `next_fire` the scheduler's trigger follows.

What the code does with the two odd local times:
- Spring forward (02:00 → 03:00): 02:30 does not exist that Sunday. The digest falls due
  once, at the first instant the clock has passed 02:30: 03:30 local, an hour late (vixie
  cron would send it at 03:00). Once and at most an hour late is right for a digest.
- Fall back (03:00 → 02:00 in Berlin, 02:00 → 01:00 in New York): a time in the repeated hour
  occurs twice. It falls due once, at its first occurrence (cron's rule).
"""

from __future__ import annotations

import itertools
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import FrameType
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest

from syndicate.config import Config, MailingList
from syndicate.digest.schedule import latest_fire, next_fire, previous_fire
from tests.figures import report

pytestmark = pytest.mark.faults

T = TypeVar("T")
CALL_LIMIT = 0.5  # seconds; one schedule computation takes well under a millisecond

WEEKDAYS = {"mon": 0, "sun": 6}


@dataclass(frozen=True)
class Transition:
    zone: str
    day: date  # the Sunday the clocks change
    name: str  # "spring" or "fall"


TRANSITIONS = [
    Transition("Europe/Berlin", date(2026, 3, 29), "spring"),  # 02:00 → 03:00
    Transition("Europe/Berlin", date(2026, 10, 25), "fall"),  # 03:00 → 02:00
    Transition("America/New_York", date(2026, 3, 8), "spring"),  # 02:00 → 03:00
    Transition("America/New_York", date(2026, 11, 1), "fall"),  # 02:00 → 01:00
]


def cases() -> Iterator[object]:
    for t in TRANSITIONS:
        crons = ["0 8 * * mon", "30 2 * * sun"]
        if t.zone == "America/New_York":
            crons.append("30 1 * * sun")  # New York repeats 01:00-02:00, not 02:00-03:00
        for cron in crons:
            yield pytest.param(t, cron, id=f"{t.zone}-{t.name}-{cron}")


def expected_fires(t: Transition, cron: str) -> list[datetime]:
    """Once a week on the cron's weekday, at the first instant the local clock shows (or, in
    the spring gap, has passed) the cron's time: fold=0, as zoneinfo resolves it. Three weeks
    either side of the change."""
    minute, hour, _, _, weekday = cron.split()
    zone = ZoneInfo(t.zone)
    days = [t.day + timedelta(days=n) for n in range(-21, 22)]
    return [
        datetime.combine(day, time(int(hour), int(minute)), zone).astimezone(UTC)
        for day in days
        if day.weekday() == WEEKDAYS[weekday]
    ]


def instants(t: Transition, fires: list[datetime]) -> list[datetime]:
    """Every 30 minutes from the Saturday before to the Tuesday after the change, every three
    hours for two weeks either side, and each fire instant and a microsecond either side."""
    midnight = datetime.combine(t.day, time(0), UTC)
    start, end = midnight - timedelta(days=14), midnight + timedelta(days=14)
    fine = [midnight - timedelta(days=1) + k * timedelta(minutes=30) for k in range(4 * 24 * 2)]
    coarse = [start + k * timedelta(hours=3) for k in range(8 * 28)]
    tick = timedelta(microseconds=1)
    exact = [f + d for f in fires if start <= f <= end for d in (-tick, timedelta(0), tick)]
    return sorted({*fine, *coarse, *exact})


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in this (main) thread if the block runs longer than `seconds`: a
    schedule computation that loops forever fails the test instead of hanging the run.

    The timer does not raise by itself: a signal handler's exception lands on whatever
    instruction was running, and the backward jump of a `while True:` loop has no line
    number, which breaks pytest's traceback (tb_lineno is None). It turns tracing on
    instead, and the next Python call raises, at a line."""
    previous_trace = sys.gettrace()

    def stop(_frame: FrameType, event: str, _arg: object) -> None:
        if event == "call":
            raise TimeoutError(f"schedule computation still running after {seconds} s")

    def expire(_signum: int, _frame: FrameType | None) -> None:
        sys.settrace(stop)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        sys.settrace(previous_trace)


def limited(call: Callable[[], T]) -> T:
    with time_limit(CALL_LIMIT):
        return call()


@pytest.mark.parametrize(("t", "cron"), list(cases()))
def test_a_weekly_digest_falls_due_once_a_week_at_its_local_time_across_dst(
    config: Config, t: Transition, cron: str
) -> None:
    mailing = MailingList.model_validate({"title": "W", "schedule": cron, "timezone": t.zone})
    zone = ZoneInfo(t.zone)
    fires = expected_fires(t, cron)
    moments = instants(t, fires)

    # The periods the service sees at each instant: the latest expected fire not after it.
    seen: list[datetime] = []
    for now in moments:
        period = limited(lambda now=now: latest_fire(config, mailing, now))  # type: ignore[misc]
        assert period is not None
        want = max(f for f in fires if f <= now)
        assert (now, period.astimezone(UTC)) == (now, want)
        if not seen or seen[-1] != want:
            seen.append(want)
    assert seen == sorted(set(seen)), "a period came back after a later one"
    assert seen == [f for f in fires if moments[0] - timedelta(days=7) < f <= moments[-1]]
    assert len(seen) >= 4

    # The scheduler's trigger: from one fire to the next, once a week, none skipped.
    chain = [fires[0]]
    while chain[-1] < fires[-1]:
        chain.append(limited(lambda: next_fire(config, mailing, chain[-1]).astimezone(UTC)))
    assert chain == fires

    # A first digest covers one interval back: the previous fire, neither more nor less.
    for before, period in itertools.pairwise(fires):
        back = limited(lambda p=period: previous_fire(config, mailing, p))  # type: ignore[misc]
        assert back.astimezone(UTC) == before

    # Local time: the cron's, except on the spring-forward Sunday for a time in the gap.
    minute, hour, *_ = cron.split()
    wanted = time(int(hour), int(minute))
    for fire in fires:
        local = fire.astimezone(zone)
        in_gap = local.date() == t.day and t.name == "spring" and local.time() != wanted
        if in_gap:
            assert local.time() == time(int(hour) + 1, int(minute))  # once, an hour late
        else:
            assert local.time() == wanted
    gap = any(f.astimezone(zone).time() != wanted for f in fires)
    when = f"local {wanted:%H:%M}" + (f" (03:30 on the {t.day:%d %b} gap)" if gap else "")
    report(
        "clock-dst",
        f"{t.zone} {t.name} {t.day:%Y}, '{cron}': {len(seen)} weekly periods over "
        f"{len(moments)} instants, each once, none lost, at {when}",
    )


def test_the_current_period_after_a_repeated_fire_time_is_found(config: Config) -> None:
    # Berlin, Sunday 25 October 2026: 02:30 CEST is 00:30 UTC, 02:30 CET is 01:30 UTC. Once
    # stepping in local time lost the fold and latest_fire looped here for a week.
    mailing = MailingList.model_validate(
        {"title": "W", "schedule": "30 2 * * sun", "timezone": "Europe/Berlin"}
    )
    now = datetime(2026, 10, 26, 9, 0, tzinfo=UTC)  # the Monday after
    period = limited(lambda: latest_fire(config, mailing, now))
    assert period is not None
    assert period.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_a_weekly_time_in_the_repeated_hour_fires_once(config: Config) -> None:
    # APScheduler's trigger fires again at the second 02:30 (01:30 UTC); the repeat is not a
    # new period.
    mailing = MailingList.model_validate(
        {"title": "W", "schedule": "30 2 * * sun", "timezone": "Europe/Berlin"}
    )
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert next_fire(config, mailing, first).astimezone(UTC) == first + timedelta(days=7, hours=1)
