"""``ykt calendar …``: the Chinese working-day calendar."""

from __future__ import annotations

import datetime as dt

import click

from gateway.calendar import FALLBACK, WorkingDayCalendar


class DateType(click.ParamType):
    name = "DATE"

    def convert(self, value, param, ctx):
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date like 2026-10-10 (日期格式应为 YYYY-MM-DD)", param, ctx)


def _calendar(ctx) -> WorkingDayCalendar:
    return WorkingDayCalendar.from_dir(ctx.config_dir / "calendar")


@click.group("calendar")
def group() -> None:
    """Working days on the official Chinese calendar (holidays and make-up days 调休)."""


@group.command("is-workday")
@click.argument("day", type=DateType())
@click.pass_obj
def is_workday_cmd(ctx, day: dt.date) -> None:
    """Print yes or no for DAY, why, and whether the answer is official or from the fallback."""
    a = _calendar(ctx).answer(day)
    flag = " — no official schedule for this year, answered from the fallback" if a.source == FALLBACK else ""
    ctx.emit(f"{'yes' if a.is_workday else 'no'} ({a.why}; {a.source}){flag}",
             {"date": day.isoformat(), "workday": a.is_workday, "why": a.why, "source": a.source})


@group.command("add-days")
@click.argument("day", type=DateType())
@click.argument("n", type=int)
@click.pass_obj
def add_days_cmd(ctx, day: dt.date, n: int) -> None:
    """Print the date N working days after DAY (before it if N is negative)."""
    r = _calendar(ctx).add_working_days(day, n)
    human = r.date.isoformat()
    if r.uses_fallback:
        human += f"  (fallback calendar used for {', '.join(map(str, sorted(r.fallback_years)))})"
    ctx.emit(human, {"date": r.date.isoformat(), "fallback_years": sorted(r.fallback_years)})
