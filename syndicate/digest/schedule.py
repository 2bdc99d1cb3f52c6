"""When a list's digests fall due: cron expressions evaluated in the list's time zone
(APScheduler's CronTrigger, so DST is handled the same way the scheduler handles it)."""

from __future__ import annotations

from datetime import datetime, timedelta
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
    fire: datetime = trigger(config, mailing_list).get_next_fire_time(None, after + _TICK)
    return fire


def latest_fire(config: Config, mailing_list: MailingList, now: datetime) -> datetime | None:
    """The latest fire time not after `now` (the current period), or None if the schedule
    never fired in the last two years."""
    cron = trigger(config, mailing_list)
    window = timedelta(hours=1)
    while window <= _LOOKBACK_LIMIT:
        fire = cron.get_next_fire_time(None, now - window)
        if fire is not None and fire <= now:
            while True:
                following = cron.get_next_fire_time(fire, fire + _TICK)
                if following is None or following > now:
                    return fire  # type: ignore[no-any-return]
                fire = following
        window *= 2
    return None


def previous_fire(config: Config, mailing_list: MailingList, period: datetime) -> datetime:
    """The fire time before `period`: a list's first digest covers one interval back."""
    fire = latest_fire(config, mailing_list, period - _TICK)
    return fire if fire is not None else period - _LOOKBACK_LIMIT
