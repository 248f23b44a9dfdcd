"""Deadlines on the working-day calendar across the 2026 National Day holiday (10-01..10-07 off,
Saturday 10-10 a make-up working day) [Art. 20, 21, 22]."""

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance_support import CAL, china, dispatch, fund, item_ids, report, submit
from reconciliation.deadlines import (AT_RISK, AWAITING_FUNDS, LATE, MET, NOT_APPLICABLE, OUTSTANDING,
                                      batch_deadlines, deadline_warnings)

D = dt.date


def one(engine, cfg, batch_id, now):
    with Session(engine) as s:
        return batch_deadlines(s, cfg, CAL, batch_id, now=now)


def delivered_and_funded(engine, cfg, vault, *, delivered, funded=None, n=1):
    b = submit(engine, cfg, vault, n=n, now=delivered - dt.timedelta(hours=1))
    dispatch(engine, cfg, now=delivered)
    fund(engine, batch_id=b, at=funded or delivered - dt.timedelta(days=1))
    return b, item_ids(engine, b)


RESULTS_TABLE = [
    (china(2026, 10, 9, 10), MET),    # 1st working day after the credit
    (china(2026, 10, 10, 10), MET),   # 2nd: the make-up Saturday
    (china(2026, 10, 12, 10), MET),   # 3rd: the last day allowed
    (china(2026, 10, 13, 10), LATE),  # 4th working day: late (without the make-up Saturday it would be the 3rd)
]


def test_results_reported_on_the_fourth_working_day_are_late(engine, cfg, vault):
    """Art. 21: results within 3 working days of crediting; 10-10 (Saturday) counts, 10-11 (Sunday) does not."""
    for received, status in RESULTS_TABLE:
        b, (i,) = delivered_and_funded(engine, cfg, vault, delivered=china(2026, 9, 30, 10))
        report(engine, [i], "settled", received=received, bank_date=D(2026, 10, 8))
        d = one(engine, cfg, b, now=china(2026, 10, 20)).items[0]
        assert d.credit.due == D(2026, 10, 8) and d.credit.status == MET  # 9-30 + 1 working day, over the holiday
        assert (received, d.results.due, d.results.status) == (received, D(2026, 10, 12), status)


CREDIT_CLOCK_TABLE = [
    (china(2026, 10, 9, 15, 59), D(2026, 10, 10)),  # Friday before the 16:00 cut-off: due Saturday (make-up)
    (china(2026, 10, 9, 16, 0), D(2026, 10, 12)),   # at the cut-off: counts from Saturday 10-10, due Monday
    (china(2026, 10, 10, 11), D(2026, 10, 12)),     # delivered on the make-up Saturday: a working day
    (china(2026, 10, 3, 11), D(2026, 10, 9)),       # during the holiday: counts from 10-08
    (china(2026, 9, 30, 17), D(2026, 10, 9)),       # after the cut-off on the eve of the holiday
]


def test_credit_clock_over_holiday_cutoff_and_make_up_saturday(engine, cfg, vault):
    """Art. 20: credit within 1 working day of delivery (after the bank's cut-off: the next working day)."""
    for delivered, credit_due in CREDIT_CLOCK_TABLE:
        b, (i,) = delivered_and_funded(engine, cfg, vault, delivered=delivered)
        d = one(engine, cfg, b, now=delivered).items[0]
        assert (delivered, d.credit.due) == (delivered, credit_due)
        assert not d.fallback_years


def test_credit_done_on_the_make_up_saturday_counts(engine, cfg, vault):
    """Art. 20: work done on Saturday 2026-10-10 counts as a working day."""
    for credited_on, status in [(D(2026, 10, 10), MET), (D(2026, 10, 12), MET), (D(2026, 10, 13), LATE)]:
        b, (i,) = delivered_and_funded(engine, cfg, vault, delivered=china(2026, 10, 9, 17))
        report(engine, [i], "settled", received=china(credited_on.year, credited_on.month, credited_on.day, 18),
               bank_date=credited_on)
        d = one(engine, cfg, b, now=china(2026, 10, 30)).items[0]
        assert (credited_on, d.credit.due, d.credit.status) == (credited_on, D(2026, 10, 12), status)


def test_no_funding_no_clock_then_the_later_of_data_and_funds(engine, cfg, vault):
    """Art. 19-20: the credit clock starts with the later of data delivered and funds received."""
    b = submit(engine, cfg, vault, n=2, now=china(2026, 9, 29))
    dispatch(engine, cfg, now=china(2026, 9, 30, 10))
    d = one(engine, cfg, b, now=china(2026, 10, 20))
    assert {x.credit.status for x in d.items} == {AWAITING_FUNDS} and d.items[0].clock_start is None
    assert d.items[0].results.status == AWAITING_FUNDS
    fund(engine, batch_id=b, at=china(2026, 10, 9, 10), fen=d.tallies.amount_fen - 1)  # one fen short
    assert one(engine, cfg, b, now=china(2026, 10, 20)).items[0].credit.status == AWAITING_FUNDS
    fund(engine, batch_id=b, at=china(2026, 10, 9, 17), fen=1)  # now covered, after the cut-off
    d = one(engine, cfg, b, now=china(2026, 10, 12, 9))
    assert d.items[0].funded_on == D(2026, 10, 10) and d.items[0].clock_start == D(2026, 10, 10)
    assert d.items[0].credit.due == D(2026, 10, 12) and d.items[0].credit.status == AT_RISK
    assert d.funding["icbc-cq"]["funded_fen"] == d.tallies.amount_fen


def test_funds_value_dated_later_start_the_clock_on_the_value_date(engine, cfg, vault):
    """Art. 19-20: money is usable from its value date."""
    b = submit(engine, cfg, vault, n=1, now=china(2026, 9, 29))
    dispatch(engine, cfg, now=china(2026, 9, 29, 10))
    fund(engine, batch_id=b, at=china(2026, 9, 29, 9), value_date=D(2026, 10, 1))
    d = one(engine, cfg, b, now=china(2026, 9, 29, 12)).items[0]
    assert d.funded_on == D(2026, 10, 8) and d.credit.due == D(2026, 10, 9)


def test_open_results_status_by_day(engine, cfg, vault):
    """Art. 21: at risk = not done and due today or on the next working day."""
    b, (i,) = delivered_and_funded(engine, cfg, vault, delivered=china(2026, 9, 30, 10))
    for now, status in [
        (china(2026, 10, 8, 9), OUTSTANDING),   # due 10-12; the next working day is 10-09
        (china(2026, 10, 9, 9), OUTSTANDING),   # Friday: the next working day is Saturday 10-10, before the due date
        (china(2026, 10, 10, 9), AT_RISK),      # Saturday (make-up): the next working day is 10-12, the due date
        (china(2026, 10, 11, 9), AT_RISK),      # Sunday: still the next working day
        (china(2026, 10, 12, 9), AT_RISK),      # due today
        (china(2026, 10, 13, 9), LATE),
    ]:
        d = one(engine, cfg, b, now=now).items[0]
        assert (now, d.results.due, d.results.status) == (now, D(2026, 10, 12), status)


def test_rejected_item_has_no_credit_but_a_results_deadline(engine, cfg, vault):
    """Art. 20-21: a rejection is a result; nothing was credited."""
    b, (i, j) = delivered_and_funded(engine, cfg, vault, delivered=china(2026, 9, 30, 10), n=2)
    report(engine, [i], "rejected_by_bank", received=china(2026, 10, 13, 9), reason="AC04")
    d = {x.item_id: x for x in one(engine, cfg, b, now=china(2026, 10, 13, 12)).items}
    assert d[i].credit.status == NOT_APPLICABLE and d[i].results.status == LATE  # due 10-08 + 3 = 10-12
    assert d[j].credit.status == LATE and d[j].results.status == LATE and d[j].results.done is None


def test_refund_information_within_three_working_days_of_booking(engine, cfg, vault):
    """Art. 22: a cross-bank refund is reported within 3 working days of the bank booking it."""
    for received, status in [(china(2026, 10, 12, 20), MET), (china(2026, 10, 13, 8), LATE)]:
        b, (i,) = delivered_and_funded(engine, cfg, vault, delivered=china(2026, 9, 28, 10))
        report(engine, [i], "settled", received=china(2026, 9, 29, 10), bank_date=D(2026, 9, 29))
        report(engine, [i], "returned", received=received, bank_date=D(2026, 10, 8), reason="AC04")
        d = one(engine, cfg, b, now=china(2026, 10, 20)).items[0]
        assert (d.refund.due, d.refund.status) == (D(2026, 10, 12), status)
        assert d.credit.status == MET and d.results.status == MET


def test_fallback_calendar_is_flagged(engine, cfg, vault):
    """Art. 20: 2027 has no official schedule in config; every deadline that used it says so."""
    b, (i,) = delivered_and_funded(engine, cfg, vault, delivered=china(2026, 12, 31, 10))
    with Session(engine) as s:
        d = batch_deadlines(s, cfg, CAL, b, now=china(2026, 12, 31, 11))
        assert d.items[0].credit.due == D(2027, 1, 4)  # 1-1 New Year (fallback), then the weekend
        assert 2027 in d.items[0].fallback_years and 2027 in d.fallback_years
        w = deadline_warnings(s, cfg, CAL, now=china(2027, 1, 4, 9))
    assert w and all(2027 in x.fallback_years for x in w) and "备用日历" in w[0].zh and "fallback" in w[0].en


def test_warnings_a_working_day_before_and_after(engine, cfg, vault):
    """Art. 20-21: the daily check warns a working day before a deadline is missed."""
    b, ids = delivered_and_funded(engine, cfg, vault, delivered=china(2026, 9, 30, 10), n=3)
    with Session(engine) as s:
        before = deadline_warnings(s, cfg, CAL, now=china(2026, 9, 30, 12))
        eve = deadline_warnings(s, cfg, CAL, now=china(2026, 10, 7, 12))  # holiday; next working day 10-08
    report(engine, ids[:1], "settled", received=china(2026, 10, 8, 12), bank_date=D(2026, 10, 8))
    with Session(engine) as s:
        after = deadline_warnings(s, cfg, CAL, now=china(2026, 10, 9, 12))
    assert before == [] or all(w.severity == AT_RISK for w in before)
    assert [(w.kind, w.severity, w.items, w.due) for w in eve] == [("credit", AT_RISK, 3, D(2026, 10, 8))]
    assert [(w.kind, w.severity, w.items) for w in after] == [("credit", LATE, 2)]
    assert "超过" in after[0].zh and "overdue" in after[0].en


def test_batch_deadlines_use_a_fixed_number_of_queries(engine, cfg, vault):
    """Art. 36-37: supervision at scale: deadlines are computed set-wise, not one query per item."""
    counts = []
    for n in (2, 40):
        b, ids = delivered_and_funded(engine, cfg, vault, delivered=china(2026, 9, 30, 10), n=n)
        report(engine, ids, "settled", received=china(2026, 10, 8, 12), bank_date=D(2026, 10, 8))
        statements = []

        def count(*a, **k):
            statements.append(1)
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            d = one(engine, cfg, b, now=china(2026, 10, 20))
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        assert d.tallies.counts["credit"][MET] == n
        counts.append(len(statements))
    assert counts[0] == counts[1] <= 6


def test_a_booking_date_stated_after_the_credit_was_recorded_counts(engine, cfg, vault):
    """Art. 20: a pain.002 settles the item without a booking date, recorded on 10-13 (late for a credit due
    10-08); the camt.054 that follows says the bank booked it on 10-08. The credit is on time, counted from
    the bank's date; applying that camt again keeps one date, and nobody can change it afterwards."""
    from gateway.db.models import Item, ItemBankDate
    from reconciliation.apply import apply_outcomes
    from reconciliation.outcomes import Outcome

    b, (i,) = delivered_and_funded(engine, cfg, vault, delivered=china(2026, 9, 30, 10))
    with Session(engine) as s, s.begin():
        e2e = s.get(Item, i).end_to_end_id
        apply_outcomes(s, [Outcome(1, e2e, "settled")], now=china(2026, 10, 13, 10), vault=vault)
    d = one(engine, cfg, b, now=china(2026, 10, 20)).items[0]
    assert (d.credit.due, d.credit.done, d.credit.status) == (D(2026, 10, 8), D(2026, 10, 13), LATE)
    for _ in range(2):
        with Session(engine) as s, s.begin():
            st = apply_outcomes(s, [Outcome(1, e2e, "settled", bank_date=D(2026, 10, 8))],
                                now=china(2026, 10, 13, 11), vault=vault)
            assert (st.applied, st.unchanged, st.exceptions) == (0, 1, 0)
    d = one(engine, cfg, b, now=china(2026, 10, 20)).items[0]
    assert (d.credit.done, d.credit.status, d.credit.basis) == (D(2026, 10, 8), MET, "bank booking date")
    with Session(engine) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(ItemBankDate)) == 1
    for stmt in ("UPDATE item_bank_dates SET bank_date = '2026-10-01'", "DELETE FROM item_bank_dates"):
        with engine.connect() as c:
            try:
                c.execute(sa.text(stmt))
                c.commit()
            except sa.exc.DBAPIError:
                continue
            raise AssertionError(f"{stmt!r} was not refused")
