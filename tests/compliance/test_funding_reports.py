"""Funding import [Art. 19], the compliance report [Art. 20-23, 36-37], emergency payments [Art. 23], and
the ``ykt funding / recon / report / emergency`` commands."""

import datetime as dt
import json
import re

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from compliance_support import CAL, KEY_LINE, china, dispatch, fund, item_ids, report, submit
from gateway.cli.main import cli
from gateway.db.models import Batch, Funding
from gateway.funding import FundingRejected, import_funding
from reconciliation.compliance import compliance_report, group_rows, svg_ageing, svg_trend, write_report
from reconciliation.emergency import EmergencyRefused, emergency_payments, record_emergency
from tests.support.rosters import resident_id

HEAD = "代发银行,金额,到账时间,起息日,流水号,批次\n"


def funding_csv(*lines):
    return (HEAD + "".join(line + "\n" for line in lines)).encode()


def batch_ref(engine, b):
    with Session(engine) as s:
        return s.get(Batch, b).ref


def test_funding_import_all_or_nothing_and_repeats(engine, cfg, vault):
    """Art. 19: every bad row named (row, column, value); nothing recorded; a repeat is skipped, a conflict refused."""
    b = submit(engine, cfg, vault, n=2, now=china(2026, 9, 29))
    dispatch(engine, cfg, now=china(2026, 9, 29, 10))
    ref = batch_ref(engine, b)
    bad = funding_csv(f"icbc-cq,3000.00,2026-09-30 09:00,2026-09-30,GK1,{ref}",
                      "nobank,1.5,2026-09-30,2026-13-01,,",
                      f"102653000019,12.345,2026-09-30 09:00,2026-09-30,GK1,{ref}",
                      "icbc-cq,10.00,2026-09-30 09:00,2026-09-30,GK9,NO-SUCH-BATCH")
    with Session(engine) as s, pytest.raises(FundingRejected) as e:
        import_funding(s, cfg, bad, source="f.csv", now=china(2026, 9, 30, 10))
    got = [(p.row, p.column, p.value) for p in e.value.problems]
    assert got == [(3, "代发银行", "nobank"), (3, "到账时间", "2026-09-30"), (3, "起息日", "2026-13-01"),
                   (3, "流水号", ""), (4, "金额", "12.345"), (4, "流水号", "GK1"), (5, "批次", "NO-SUCH-BATCH")]
    with Session(engine) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Funding)) == 0
    good = funding_csv(f"icbc-cq,3000.00,2026-09-30 09:00,2026-09-30,GK1,{ref}",
                       "102653000019,50.00,2026-09-30 17:30,2026-10-08,GK2,")
    with Session(engine) as s, s.begin():
        r = import_funding(s, cfg, good, source="f.csv", now=china(2026, 9, 30, 10))
    assert (r.recorded, r.repeated, r.total_fen, r.unattributed) == (2, 0, 305000, 1)
    with Session(engine) as s, s.begin():
        r = import_funding(s, cfg, good, source="f.csv", now=china(2026, 9, 30, 10))
    assert (r.recorded, r.repeated) == (0, 2)
    with Session(engine) as s, s.begin(), pytest.raises(FundingRejected, match="different amount"):
        import_funding(s, cfg, funding_csv(f"icbc-cq,3000.01,2026-09-30 09:00,2026-09-30,GK1,{ref}"), source="f.csv",
                       now=china(2026, 9, 30, 10))
    with Session(engine) as s:
        f = s.scalars(sa.select(Funding).where(Funding.reference == "GK1")).one()
        assert f.received_at == dt.datetime(2026, 9, 30, 1, 0) and f.batch_id == b  # China 09:00 is 01:00 UTC


def test_compliance_report_files(engine, cfg, vault, tmp_path):
    """Art. 20-23, 36-37: per bank, county, policy, batch; CSV, XLSX and one self-contained HTML page."""
    b = submit(engine, cfg, vault, n=4, now=china(2026, 9, 29))
    dispatch(engine, cfg, now=china(2026, 9, 30, 10))
    fund(engine, batch_id=b, at=china(2026, 9, 29, 10))
    ids = item_ids(engine, b)
    report(engine, ids[:2], "settled", received=china(2026, 10, 9), bank_date=dt.date(2026, 10, 8))
    report(engine, ids[2:3], "settled", received=china(2026, 10, 13), bank_date=dt.date(2026, 10, 9))
    report(engine, ids[:1], "returned", received=china(2026, 10, 13, 15), bank_date=dt.date(2026, 10, 9), reason="AC04")
    with Session(engine) as s, s.begin():
        record_emergency(s, cfg, vault, department_code="FJ-MZ", name="李四", id_number=resident_id(seq=555),
                         amount="500.00", paid_on=dt.date(2026, 10, 3), channel="cash", reason="山洪灾害临时救助",
                         approval_ref="渝民〔2026〕12号", recorded_by="clerk", now=china(2026, 10, 5))
        rep = compliance_report(s, cfg, CAL, vault, date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 10, 31),
                                now=china(2026, 10, 14, 12))
    c = rep.groups["bank"]["icbc-cq"].counts
    assert c["credit"] == {"met": 2, "late": 2, "at_risk": 0, "outstanding": 0, "awaiting_funds": 0,
                           "not_applicable": 0}  # 10-09 credit is a day late; the 4th item never credited
    assert c["results"]["met"] == 2 and c["results"]["late"] == 2
    assert [(r.status, r.due) for r in rep.refunds] == [("met", dt.date(2026, 10, 13))]  # 10-09 + 3, Saturday counts
    assert len(rep.emergency) == 1 and rep.emergency[0].name == "李*"
    paths = {p.name: p for p in write_report(rep, tmp_path / "out")}
    assert {"by_bank.csv", "by_county.csv", "by_policy.csv", "by_batch.csv", "refunds.csv", "emergency.csv",
            "compliance.xlsx", "compliance.html"} <= set(paths)
    page = paths["compliance.html"].read_text("utf-8")
    assert page.count("<svg") == 3 and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in page and "按时率" in page and "on-time" in page and "山洪灾害临时救助" in page
    assert "50.0%" in page  # credit on-time rate at ICBC
    wb = load_workbook(paths["compliance.xlsx"])
    assert {"by_bank", "by_county", "by_policy", "by_batch", "refunds", "emergency", "ageing"} <= set(wb.sheetnames)
    assert "李*" in paths["emergency.csv"].read_text("utf-8-sig") and "李四" not in page


def test_emergency_payment_is_checked_and_append_only(engine, cfg, vault):
    """Art. 23: channel and reason required; every problem listed; records cannot be edited."""
    with Session(engine) as s, pytest.raises(EmergencyRefused) as e:
        record_emergency(s, cfg, vault, department_code="NOPE", name=" ", id_number="123", amount="-1",
                         paid_on=dt.date(2030, 1, 1), channel="cheque", reason="", approval_ref="",
                         recorded_by="x", now=china(2026, 10, 5))
    assert [p[0] for p in e.value.problems] == ["department", "channel", "name", "id_number", "amount", "reason",
                                                "approval_ref", "paid_on"]
    with Session(engine) as s, s.begin():
        pid = record_emergency(s, cfg, vault, department_code="FJ-MZ", name="王五", id_number=resident_id(seq=556),
                               amount="300", paid_on=dt.date(2026, 10, 3), channel="bank_transfer",
                               reason="火灾临时救助", approval_ref="A-1", recorded_by="x", now=china(2026, 10, 5))
    with Session(engine) as s, s.begin(), pytest.raises(sa.exc.DatabaseError):
        s.execute(sa.text("UPDATE emergency_payments SET amount_fen = 1 WHERE id = :i"), {"i": pid})
    with Session(engine) as s:
        assert [str(x.amount) for x in emergency_payments(s, vault)] == ["300.00"]


def test_cli_commands(engine, db_url, cfg, vault, tmp_path, monkeypatch):
    """Art. 19-23: ykt funding import, recon batch (exit 1 when it does not balance), report compliance, emergency."""
    monkeypatch.setenv("YKT_PII_KEY", KEY_LINE)
    run = lambda *a: CliRunner().invoke(cli, ["--db", db_url, "--config", "config", *a])  # noqa: E731
    b = submit(engine, cfg, vault, n=2, now=china(2026, 9, 29))
    dispatch(engine, cfg, now=china(2026, 9, 30, 10))
    f = tmp_path / "fund.csv"
    f.write_bytes(funding_csv(f"icbc-cq,3000.00,2026-09-29 09:00,2026-09-29,GK7,{batch_ref(engine, b)}"))
    r = run("funding", "import", str(f))
    assert r.exit_code == 0 and "recorded 1" in r.output, r.output
    f.write_bytes(funding_csv("icbc-cq,abc,2026-09-29 09:00,2026-09-29,GK8,"))
    r = run("funding", "import", str(f))
    assert r.exit_code == 1 and "row 2, column 金额" in r.output
    r = run("--json", "recon", "batch", str(b))
    assert r.exit_code == 0 and json.loads(r.output)["balances"] is True, r.output
    r = run("report", "compliance", "--from", "2026-09-01", "--to", "2026-10-31", "--out", str(tmp_path / "rep"))
    assert r.exit_code == 0 and (tmp_path / "rep" / "compliance.html").exists(), r.output
    r = run("emergency", "record", "--department", "FJ-MZ", "--name", "赵六", "--id-number", resident_id(seq=557),
            "--amount", "200.00", "--paid-on", "2026-10-02", "--channel", "cash", "--reason", "临时救助测试",
            "--approval", "A-2")
    assert r.exit_code == 0, r.output
    assert "赵*" in run("emergency", "list").output
    r = run("recon", "corrections", "--department", "FJ-NYNC", "--out", str(tmp_path / "c.csv"))
    assert r.exit_code == 0 and (tmp_path / "c.csv").exists(), r.output
    assert run("recon", "exceptions").exit_code == 0
    with engine.begin() as c:  # break the batch: its declared total no longer matches its items
        c.execute(sa.text("DROP TRIGGER IF EXISTS batches_no_update")) if engine.dialect.name == "sqlite" else \
            c.execute(sa.text("ALTER TABLE batches DISABLE TRIGGER batches_immutable"))
        c.execute(sa.text("UPDATE batches SET total_fen = total_fen + 1 WHERE id = :b"), {"b": b})
    r = run("recon", "batch", str(b))
    assert r.exit_code == 1 and "DOES NOT BALANCE" in r.output


def test_compliance_report_content(engine, cfg, vault):
    """Art. 20-21, 36-37: a constructed week (2026-11-02 is a Monday; no holiday that week), seen on Friday 11-06
    at noon. Credit is due 1 working day after data and funds; results 3 working days after the credit (or after
    the credit due date, if earlier). Every number below is worked out in the comments from those two rules."""
    def batch(n, bank, day):
        return submit(engine, cfg, vault, n=n, bank=bank, now=china(2026, 11, day, 9))
    # Tuesday 11-03, 10:00: A (ICBC, 4 items) and C (rural bank, 2) delivered and funded: credit due Wed 11-04
    a, c = batch(4, "icbc-cq", 3), batch(2, "cqrcb-fj", 3)
    dispatch(engine, cfg, now=china(2026, 11, 3, 10))
    fund(engine, batch_id=a, at=china(2026, 11, 3, 10))
    fund(engine, batch_id=c, bank="cqrcb-fj", at=china(2026, 11, 3, 10))
    # Wednesday 11-04: B (ICBC, 2) delivered and funded: credit due Thu 11-05
    b = batch(2, "icbc-cq", 4)
    dispatch(engine, cfg, now=china(2026, 11, 4, 10))
    fund(engine, batch_id=b, at=china(2026, 11, 4, 10))
    # Friday 11-06: D (ICBC, 1) delivered and funded: credit due Mon 11-09; E (ICBC, 1) delivered, never funded
    d, e = batch(1, "icbc-cq", 6), batch(1, "icbc-cq", 6)
    dispatch(engine, cfg, now=china(2026, 11, 6, 10))
    fund(engine, batch_id=d, at=china(2026, 11, 6, 10))
    A, B, C = item_ids(engine, a), item_ids(engine, b), item_ids(engine, c)
    report(engine, A[:2], "settled", received=china(2026, 11, 4, 17), bank_date=dt.date(2026, 11, 4))  # met, met
    report(engine, A[2:3], "settled", received=china(2026, 11, 5, 17), bank_date=dt.date(2026, 11, 5))  # late, met
    # A[3]: no answer: credit late (due 11-04); results due 11-04 + 3 = Mon 11-09, the next working day: at risk
    report(engine, B, "settled", received=china(2026, 11, 5, 17), bank_date=dt.date(2026, 11, 5))  # met, met
    report(engine, C[:1], "rejected_by_bank", received=china(2026, 11, 4, 17), bank="cqrcb-fj",
           reason="AC04")  # credit not applicable; results met
    report(engine, C[1:], "settled", received=china(2026, 11, 5, 17), bank_date=dt.date(2026, 11, 5),
           bank="cqrcb-fj")  # late, met
    # D: credit due Mon 11-09 (at risk); results due 11-12 (outstanding). E: both awaiting funds.
    with Session(engine) as s:
        rep = compliance_report(s, cfg, CAL, vault, date_from=dt.date(2026, 11, 1), date_to=dt.date(2026, 11, 30),
                                now=china(2026, 11, 6, 12))
    keys = ("met", "late", "at_risk", "outstanding", "awaiting_funds", "not_applicable")

    def counts(dim, key, kind):
        return tuple(rep.groups[dim][key].counts[kind][k] for k in keys)
    assert counts("bank", "icbc-cq", "credit") == (4, 2, 1, 0, 1, 0)  # A0 A1 B0 B1 | A2 A3 | D | E
    assert counts("bank", "icbc-cq", "results") == (5, 0, 1, 1, 1, 0)  # A0 A1 A2 B0 B1 | A3 | D | E
    assert counts("bank", "cqrcb-fj", "credit") == (0, 1, 0, 0, 0, 1)  # C1 | C0 rejected
    assert counts("bank", "cqrcb-fj", "results") == (2, 0, 0, 0, 0, 0)
    refs = {x: batch_ref(engine, x) for x in (a, b, c, d, e)}
    assert counts("batch", refs[a], "credit") == (2, 2, 0, 0, 0, 0)
    assert counts("batch", refs[a], "results") == (3, 0, 1, 0, 0, 0)
    assert counts("batch", refs[d], "credit") == (0, 0, 1, 0, 0, 0)
    assert counts("batch", refs[d], "results") == (0, 0, 0, 1, 0, 0)
    assert counts("batch", refs[e], "credit") == (0, 0, 0, 0, 1, 0)
    for dim, key in (("county", "500236"), ("policy", "GDDL")):  # one county, one policy: the sum of the banks
        assert counts(dim, key, "credit") == (4, 3, 1, 0, 1, 1) and counts(dim, key, "results") == (7, 0, 1, 1, 1, 0)
        assert rep.groups[dim][key].items == 10
    icbc_row = next(r for r in group_rows(rep, "bank") if r[0] == "icbc-cq")
    assert icbc_row[2] == 8 and icbc_row[4:10] == [4, 2, 1, 0, 1, 0] and icbc_row[10] == "66.7%"  # 4 / (4 + 2)

    # the on-time rate per bank over time: one point per delivery day with a judged credit, at the right height
    svg = svg_trend(rep)
    lines = [[tuple(map(float, p.split(","))) for p in pts.split()] for pts in re.findall(r'points="([^"]+)"', svg)]
    top, h = 16, 260 - 16 - 40  # the chart's margins (svg_trend's defaults)
    rates = [[round(1 - (y - top) / h, 3) for _, y in line] for line in lines]
    assert rates == [[0.0], [0.5, 1.0]]  # banks in order: cqrcb-fj 11-03 (0 of 1); icbc-cq 11-03 (2 of 4), 11-04
    (c_x, _), = lines[0]
    (i_x1, _), (i_x2, _) = lines[1]
    assert c_x == i_x1 < i_x2  # same day, same x; the second day to its right
    assert rep.trend["icbc-cq"][dt.date(2026, 11, 6)].on_time_rate("credit") is None  # nothing judged yet: no point

    # ageing of open items, in working days since each item's clock started
    assert rep.ageing["2-3"] == {"counting": 1, "awaiting_funds": 0}  # A3: clock from Tue 11-03, 3 working days
    assert rep.ageing["0-1"] == {"counting": 1, "awaiting_funds": 1}  # D (clock from today) and E (no funds)
    assert sum(v["counting"] + v["awaiting_funds"] for v in rep.ageing.values()) == 3
    bars = dict((label, int(n)) for n, label in re.findall(r'>(\d+)</text><text[^>]*>([^<]+)</text>', svg_ageing(rep)))
    assert bars == {"0-1": 2, "2-3": 1, "4-5": 0, "6-10": 0, ">10": 0}  # the chart shows the same buckets
