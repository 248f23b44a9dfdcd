"""Time conventions: instants are stored as naive UTC; working-day questions are asked in China's
local time (Asia/Shanghai, UTC+8, no daylight saving). The clock is always passed in."""

from __future__ import annotations

import datetime as dt

CHINA = dt.timezone(dt.timedelta(hours=8), "CST")


def local(instant_utc: dt.datetime) -> dt.datetime:
    """A naive-UTC instant as China local time (aware)."""
    return instant_utc.replace(tzinfo=dt.timezone.utc).astimezone(CHINA)


def local_date(instant_utc: dt.datetime) -> dt.date:
    return local(instant_utc).date()


def utc_from_local(day: dt.date, time: dt.time) -> dt.datetime:
    """The naive-UTC instant of ``time`` on ``day`` in China."""
    return dt.datetime.combine(day, time, CHINA).astimezone(dt.timezone.utc).replace(tzinfo=None)
