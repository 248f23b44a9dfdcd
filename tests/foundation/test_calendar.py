"""Working-day calendar: official State Council schedules first, the holidays package as a flagged fallback.

Deadlines of Art. 20 (credit within 1 working day), Art. 21 and 22 (3 working days) are counted on it.
"""

import datetime as dt

import holidays
import pytest
from click.testing import CliRunner

from gateway.calendar import DEFAULT_CALENDAR_DIR, FALLBACK, OFFICIAL, WorkingDayCalendar, parse_official_year
from gateway.cli.main import cli
from gateway.errors import CalendarError

D = dt.date


@pytest.fixture(scope="module")
def cal():
    return WorkingDayCalendar.from_dir(DEFAULT_CALENDAR_DIR)


@pytest.mark.parametrize("day, workday, why", [
    (D(2026, 10, 10), True, "调休"),  # make-up Saturday after National Day
    (D(2026, 9, 20), True, "调休"),  # make-up Sunday before it
    (D(2026, 10, 1), False, "国庆"), (D(2026, 10, 4), False, "国庆"), (D(2026, 10, 7), False, "国庆"),
    (D(2026, 10, 8), True, "weekday"),
    (D(2026, 10, 11), False, "weekend"),
    (D(2026, 2, 23), False, "春节"),  # Monday inside the nine-day Spring Festival
    (D(2026, 2, 28), True, "调休"),
    (D(2025, 10, 8), False, "国庆"),  # 2025: National Day and Mid-Autumn together
    (D(2025, 10, 11), True, "调休"),
    (D(2024, 5, 11), True, "调休"),
])
def test_official_days(cal, day, workday, why):
    a = cal.answer(day)
    assert (a.is_workday, a.source) == (workday, OFFICIAL)
    assert why in a.why


@pytest.mark.parametrize("day", [D(2026, 10, d) for d in range(1, 8)])
def test_national_day_2026_is_rest(cal, day):
    assert cal.is_workday(day) is False


@pytest.mark.parametrize("start, n, expected", [
    (D(2026, 9, 30), 1, D(2026, 10, 8)),  # Art. 20: one working day across the holiday
    (D(2026, 9, 30), 3, D(2026, 10, 10)),  # the make-up Saturday counts (Art. 21 three days)
    (D(2026, 9, 30), 4, D(2026, 10, 12)),
    (D(2026, 10, 8), -1, D(2026, 9, 30)),
    (D(2026, 10, 3), 0, D(2026, 10, 8)),
    (D(2026, 2, 13), 1, D(2026, 2, 14)),  # Saturday make-up day right before Spring Festival
])
def test_add_working_days(cal, start, n, expected):
    r = cal.add_working_days(start, n)
    assert r.date == expected and not r.uses_fallback


def test_working_days_between(cal):
    assert cal.working_days_between(D(2026, 9, 30), D(2026, 10, 12)) == 4
    assert cal.working_days_between(D(2026, 10, 12), D(2026, 9, 30)) == -4


def test_fallback_year_is_flagged(cal):
    a = cal.answer(D(2027, 10, 1))
    assert a.source == FALLBACK and a.is_workday is False
    r = cal.add_working_days(D(2026, 12, 31), 2)
    assert r.date.year == 2027 and r.fallback_years == {2027}


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_official_data_agrees_with_holidays_package(cal, year):
    """Cross-check our data against an independent source: same make-up days, every package holiday is a rest day."""
    cn = holidays.China(years=year)
    ours = {d for d in (D(year, 1, 1) + dt.timedelta(n) for n in range(366)) if d.year == year}
    assert {d for d in ours if cal.answer(d).why.startswith("调休")} == {d for d in cn.weekend_workdays if d.year == year}
    for day in cn:
        assert not cal.is_workday(day), f"{day} {cn.get(day)}"


@pytest.mark.parametrize("data, fragment", [
    ({"year": "2026"}, "year"),
    ({"year": 2026, "holiday": [{"name": "x", "from": D(2026, 1, 3), "to": D(2026, 1, 1)}]}, "from <= to"),
    ({"year": 2026, "workdays": ["2026-10-12"]}, "is a weekday"),
    ({"year": 2026, "workdays": ["not a date"]}, "not a date"),
])
def test_bad_calendar_data(data, fragment):
    with pytest.raises(CalendarError, match=fragment):
        parse_official_year(data, source="2026.toml")


def test_cli_is_workday_and_add_days():
    r = CliRunner()
    out = r.invoke(cli, ["calendar", "is-workday", "2026-10-10"])
    assert out.exit_code == 0 and out.output.startswith("yes") and "official" in out.output
    for day in range(1, 8):
        out = r.invoke(cli, ["calendar", "is-workday", f"2026-10-0{day}"])
        assert out.exit_code == 0 and out.output.startswith("no")
    out = r.invoke(cli, ["calendar", "add-days", "2026-09-30", "1"])
    assert out.exit_code == 0 and out.output.strip() == "2026-10-08"
    out = r.invoke(cli, ["calendar", "is-workday", "2027-02-01"])
    assert "fallback" in out.output
    out = r.invoke(cli, ["calendar", "is-workday", "2026-02-30"])
    assert out.exit_code == 2 and "YYYY-MM-DD" in out.output and "Traceback" not in out.output
