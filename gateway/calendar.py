"""The Chinese working-day calendar.

Official State Council schedules (holidays and make-up working days 调休) are data in
``config/calendar/YYYY.toml``. For a year without official data the ``holidays`` package answers,
and every answer says so: ``DayAnswer.source == "fallback"``; a computed deadline carries the set
of fallback years it depended on, so that every report built on it can show the flag.

>>> cal = WorkingDayCalendar.from_dir(DEFAULT_CALENDAR_DIR)
>>> cal.answer(dt.date(2026, 10, 10)).is_workday     # make-up Saturday
True
>>> cal.add_working_days(dt.date(2026, 9, 30), 1).date
datetime.date(2026, 10, 8)
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from gateway.errors import CalendarError

DEFAULT_CALENDAR_DIR = Path(__file__).resolve().parent.parent / "config" / "calendar"

OFFICIAL = "official"
FALLBACK = "fallback"


@dataclass(frozen=True)
class OfficialYear:
    """One year's official schedule: rest days (with the holiday's name) and make-up working days."""

    year: int
    source: str
    rest_days: Mapping[dt.date, str]
    make_up_workdays: frozenset[dt.date]


@dataclass(frozen=True)
class DayAnswer:
    date: dt.date
    is_workday: bool
    source: str  # OFFICIAL or FALLBACK
    why: str  # e.g. "国庆节 National Day", "调休 make-up working day", "weekend", "weekday"


@dataclass(frozen=True)
class WorkdayResult:
    """A date computed by counting working days, with the fallback years it depended on."""

    date: dt.date
    fallback_years: frozenset[int] = field(default_factory=frozenset)

    @property
    def uses_fallback(self) -> bool:
        return bool(self.fallback_years)


def parse_official_year(data: dict, *, source: str) -> OfficialYear:
    """Build an :class:`OfficialYear` from a parsed calendar TOML; raises :class:`CalendarError`
    listing every problem found."""
    problems: list[str] = []
    year = data.get("year")
    if not isinstance(year, int):
        problems.append(f"{source}: year: must be an integer, got {year!r}")
        raise CalendarError("; ".join(problems))
    rest: dict[dt.date, str] = {}
    for i, h in enumerate(data.get("holiday", [])):
        start, end, name = h.get("from"), h.get("to"), h.get("name")
        if not isinstance(start, dt.date) or not isinstance(end, dt.date) or end < start:
            problems.append(f"{source}: holiday[{i}]: needs dates from <= to, got {start!r}..{end!r}")
            continue
        if not isinstance(name, str) or not name:
            problems.append(f"{source}: holiday[{i}].name: missing")
        d = start
        while d <= end:
            if d.year != year:
                problems.append(f"{source}: holiday[{i}]: {d} is not in {year}")
            rest[d] = name or "holiday"
            d += dt.timedelta(days=1)
    workdays: set[dt.date] = set()
    for i, w in enumerate(data.get("workdays", [])):
        try:
            d = w if isinstance(w, dt.date) else dt.date.fromisoformat(str(w))
        except ValueError:
            problems.append(f"{source}: workdays[{i}]: not a date: {w!r}")
            continue
        if d.weekday() < 5:
            problems.append(f"{source}: workdays[{i}]: {d} is a weekday; make-up days are weekend days")
        if d in rest:
            problems.append(f"{source}: workdays[{i}]: {d} is also listed as a holiday")
        workdays.add(d)
    if problems:
        raise CalendarError("; ".join(problems))
    return OfficialYear(year, str(data.get("source", source)), rest, frozenset(workdays))


class WorkingDayCalendar:
    """Answers "is this a working day?" and counts working days, official data first."""

    def __init__(self, official: Iterable[OfficialYear], fallback=None) -> None:
        self._official = {y.year: y for y in official}
        self._fallback = fallback  # a holidays.China-like object, made lazily
        self._fallback_cache: dict[int, object] = {}

    @classmethod
    def from_dir(cls, directory: Path | str) -> "WorkingDayCalendar":
        years = []
        for path in sorted(Path(directory).glob("*.toml")):
            with path.open("rb") as f:
                years.append(parse_official_year(tomllib.load(f), source=str(path)))
        return cls(years)

    @property
    def official_years(self) -> frozenset[int]:
        return frozenset(self._official)

    def _fallback_for(self, year: int):
        if year not in self._fallback_cache:
            import holidays  # imported lazily: only for years without official data

            self._fallback_cache[year] = holidays.China(years=year)
        return self._fallback_cache[year]

    def answer(self, day: dt.date) -> DayAnswer:
        """Whether ``day`` is a working day, why, and where the answer came from."""
        if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
            raise CalendarError(f"not a date: {day!r}")
        official = self._official.get(day.year)
        if official is not None:
            if day in official.rest_days:
                return DayAnswer(day, False, OFFICIAL, official.rest_days[day])
            if day in official.make_up_workdays:
                return DayAnswer(day, True, OFFICIAL, "调休 make-up working day")
            weekend = day.weekday() >= 5
            return DayAnswer(day, not weekend, OFFICIAL, "weekend" if weekend else "weekday")
        cn = self._fallback_for(day.year)
        if day in getattr(cn, "weekend_workdays", ()):
            return DayAnswer(day, True, FALLBACK, "调休 make-up working day")
        if day in cn:
            return DayAnswer(day, False, FALLBACK, cn.get(day))
        weekend = day.weekday() >= 5
        return DayAnswer(day, not weekend, FALLBACK, "weekend" if weekend else "weekday")

    def is_workday(self, day: dt.date) -> bool:
        return self.answer(day).is_workday

    def add_working_days(self, day: dt.date, n: int) -> WorkdayResult:
        """The date ``n`` working days after ``day`` (before it if ``n`` is negative).

        ``n == 0`` returns ``day`` itself if it is a working day, else the next working day.
        """
        if not isinstance(n, int):
            raise CalendarError(f"number of working days must be an integer, got {n!r}")
        fallback: set[int] = set()
        step = 1 if n >= 0 else -1
        current = day
        if n == 0:
            a = self.answer(current)
            while not a.is_workday:
                if a.source == FALLBACK:
                    fallback.add(current.year)
                current += dt.timedelta(days=1)
                a = self.answer(current)
            if a.source == FALLBACK:
                fallback.add(current.year)
            return WorkdayResult(current, frozenset(fallback))
        remaining = abs(n)
        while remaining:
            current += dt.timedelta(days=step)
            a = self.answer(current)
            if a.source == FALLBACK:
                fallback.add(current.year)
            if a.is_workday:
                remaining -= 1
        return WorkdayResult(current, frozenset(fallback))

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """Working days in the half-open interval ``(start, end]``; negative if ``end < start``."""
        if end < start:
            return -self.working_days_between(end, start)
        count, d = 0, start
        while d < end:
            d += dt.timedelta(days=1)
            if self.is_workday(d):
                count += 1
        return count
