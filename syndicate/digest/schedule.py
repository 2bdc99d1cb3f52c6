"""When a list's digests fall due: cron expressions evaluated in the list's time zone
(APScheduler's CronTrigger, so DST is handled the same way the scheduler handles it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from syndicate.config import Config, MailingList

_TICK = timedelta(microseconds=1)
_LOOKBACK_LIMIT = timedelta(days=800)


def zone(config: Config, mailing_list: MailingList) -> ZoneInfo:
    return ZoneInfo(mailing_list.timezone or config.site.timezone)


def trigger(config: Config, mailing_list: MailingList) -> CronTrigger:
    return CronTrigger.from_crontab(mailing_list.schedule, timezone=zone(config, mailing_list))


def next_fire(config: Config, mailing_list: MailingList, after: datetime) -> datetime:
    """The first fire time strictly after `after`."""
    fire = _after(trigger(config, mailing_list), after)
    assert fire is not None  # a valid crontab always fires again
    return fire


def _after(cron: CronTrigger, after: datetime) -> datetime | None:
    """The first fire strictly after `after`. Steps are taken in UTC: a step in local wall
    time loses the fold of a repeated hour and lands an hour back, on the same fire. A wall
    time that a DST fall-back repeats fires once, at its first occurrence (cron's rule)."""
    start = after.astimezone(UTC) + _TICK
    while True:
        # No previous fire for APScheduler: it would add its own step in local time.
        fire: datetime | None = cron.get_next_fire_time(None, start)
        if fire is None or fire.utcoffset() == fire.replace(fold=0).utcoffset():
            return fire
        start = fire.astimezone(UTC) + _TICK  # the repeat of a time that already fired


def latest_fire(config: Config, mailing_list: MailingList, now: datetime) -> datetime | None:
    """The latest fire time not after `now` (the current period), or None if the schedule
    never fired in the last two years."""
    cron = trigger(config, mailing_list)
    window = timedelta(hours=1)
    while window <= _LOOKBACK_LIMIT:
        fire = _after(cron, now - window - _TICK)
        if fire is not None and fire <= now:
            while True:
                following = _after(cron, fire)
                if following is None or following > now:
                    return fire
                fire = following
        window *= 2
    return None


def previous_fire(config: Config, mailing_list: MailingList, period: datetime) -> datetime:
    """The fire time before `period`: a list's first digest covers one interval back."""
    fire = latest_fire(config, mailing_list, period - _TICK)
    return fire if fire is not None else period - _LOOKBACK_LIMIT
