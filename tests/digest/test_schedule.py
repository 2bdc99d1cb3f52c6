"""Fire times of a list's cron schedule in its own time zone, across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from syndicate.config import Config, MailingList
from syndicate.digest.schedule import latest_fire, next_fire, previous_fire


def weekly(config: Config, zone: str, cron: str = "0 8 * * mon") -> tuple[Config, MailingList]:
    mailing = MailingList.model_validate({"title": "W", "schedule": cron, "timezone": zone})
    return config, mailing


def test_the_current_period_is_the_latest_fire_not_after_now(config: Config) -> None:
    cfg, w = weekly(config, "Europe/Istanbul")
    now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)  # a Thursday
    assert latest_fire(cfg, w, now) == datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    assert next_fire(cfg, w, now) == datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


def test_a_fire_time_is_its_own_period(config: Config) -> None:
    cfg, w = weekly(config, "Europe/Istanbul")
    fire = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    assert latest_fire(cfg, w, fire) == fire
    assert latest_fire(cfg, w, fire - timedelta(seconds=1)) == fire - timedelta(days=7)
    assert previous_fire(cfg, w, fire) == fire - timedelta(days=7)


@pytest.mark.parametrize(
    ("zone", "before", "after"),
    [
        # Berlin leaves summer time on Sunday 25 October 2026: 08:00 moves from 06:00 to 07:00 UTC
        (
            "Europe/Berlin",
            datetime(2026, 10, 19, 6, 0, tzinfo=UTC),
            datetime(2026, 10, 26, 7, 0, tzinfo=UTC),
        ),
        # New York leaves summer time on Sunday 1 November 2026: 12:00 UTC becomes 13:00 UTC
        (
            "America/New_York",
            datetime(2026, 10, 26, 12, 0, tzinfo=UTC),
            datetime(2026, 11, 2, 13, 0, tzinfo=UTC),
        ),
    ],
)
def test_weekly_digests_keep_local_time_across_dst(
    config: Config, zone: str, before: datetime, after: datetime
) -> None:
    cfg, w = weekly(config, zone)
    assert next_fire(cfg, w, before) == after
    assert latest_fire(cfg, w, after - timedelta(seconds=1)) == before


def test_a_daily_fire_in_the_skipped_spring_hour_fires_once_an_hour_later(
    config: Config,
) -> None:
    # 02:30 does not exist in Berlin on 29 March 2026 (clocks jump 02:00 → 03:00 at 01:00 UTC):
    # that day the digest goes out once, at 03:30 local time, 01:30 UTC.
    cfg, w = weekly(config, "Europe/Berlin", "30 2 * * *")
    fires = []
    moment = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    for _ in range(3):
        moment = next_fire(cfg, w, moment)
        fires.append(moment.astimezone(UTC))
    assert fires == [
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),
        datetime(2026, 3, 31, 0, 30, tzinfo=UTC),
    ]
