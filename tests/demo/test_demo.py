"""`ykt demo` end to end: its summary must match what the demo scenario says each bank does with each item.

The expected outcome is worked out here, independently of the gateway: which rows validation must refuse follows
from the rosters and screening lists the demo wrote and the policy list in config [Art. 17-18]; what each bank does
with each payment follows from the ``demo`` scenario's own decision function (``Scenario.decide_item``), fed the
files in the order the bank received them, as the simulated bank itself does.
"""

import csv
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.calendar import WorkingDayCalendar
from gateway.config import load
from gateway.db import make_engine
from gateway.db.models import Batch, InboundFile, Item, ItemEvent, OutboundFile, OutboundFileItem
from gateway.demo import run_demo
from gateway.privacy import PiiVault
from gateway.timeutil import local_date
from reconciliation.compliance import group_header
from reconciliation.deadlines import CREDIT, LABEL, RESULTS, STATUS_LABEL, item_deadlines
from simulators.scenario import ItemFacts, Scenario

ROOT = Path(__file__).resolve().parents[2]
SEED = 7
WORKING_DAYS_RUN = 4  # run_demo lets the banks work for four working days after the dispatch day
BUCKETS = ("rejected_by_validation", "settled", "rejected", "returned", "outstanding")


def bucket_for(decision) -> str:
    """Where the scenario's decision leaves a payment at the end of the demo."""
    if decision.late_days > WORKING_DAYS_RUN:
        return "outstanding"
    if decision.status == "RJCT":
        return "rejected"
    return "returned" if decision.return_days else "settled"


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def refused_by_validation(rows: list[dict], policy, lists: dict[str, set], seen: set) -> set[str]:
    """The ID numbers of the rows the preset rules must refuse [Art. 18]: on a list the policy excludes, missing
    from a list it requires, over the policy's standard, or paid twice for the same policy and period."""
    out = set()
    for r in rows:
        idn = r["身份证号"]
        if (any(idn in lists[k] for k in policy.must_not_be_on) or any(idn not in lists[k] for k in policy.must_be_on)
                or Decimal(r["金额"]) > policy.standard or (idn, policy.code) in seen):
            out.add(idn)
        seen.add((idn, policy.code))
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    var = tmp_path_factory.mktemp("var")
    result = run_demo(var, ROOT / "config", people=40, seed=SEED)
    work = var / "demo"
    vault = PiiVault.from_text((work / "keys" / "pii.keys").read_text())
    engine = make_engine(f"sqlite:///{work / 'yikatong.db'}")
    yield result, work, vault, engine
    engine.dispose()


@pytest.fixture(scope="module")
def expected(demo):
    """Per batch: {bucket: [count, fen]} from the rosters, lists, policies and the scenario; per item: its decision."""
    result, work, vault, engine = demo
    cfg = load(ROOT / "config")
    lists = {k: {r["身份证号码"] for r in read_csv(work / "lists" / f"{k}.csv")}
             for k in ("deceased", "public-employees", "supported")}
    tallies, decisions, seen = {}, {}, set()
    with Session(engine) as s:
        batches = s.scalars(sa.select(Batch).order_by(Batch.id)).all()
        for b in batches:  # in submission order: "paid twice" is the later of the two
            rows = read_csv(work / "rosters" / b.source_name)
            refused = refused_by_validation(rows, cfg.policies[b.policy_code], lists, seen)
            t = tallies[b.ref] = {k: [0, 0] for k in BUCKETS}
            for r in rows:
                if r["身份证号"] in refused:
                    t["rejected_by_validation"][0] += 1
                    t["rejected_by_validation"][1] += int(Decimal(r["金额"]) * 100)
        scenarios = {}
        for f in s.scalars(sa.select(OutboundFile).order_by(OutboundFile.id)):
            batch = s.get(Batch, f.batch_id)
            roster = {vault.blind_index("id", r["身份证号"]): r for r in read_csv(work / "rosters" / batch.source_name)}
            sc = scenarios.setdefault(f.bank_id, Scenario.load("demo"))  # one stateful bank per bank, files in order
            flat = f.name.endswith(".txt")  # the rcb_pipe layout carries no EndToEndId: the bank sees the sequence
            for seq, item in s.execute(sa.select(OutboundFileItem.seq_in_file, Item)
                                       .join(Item, Item.id == OutboundFileItem.item_id)
                                       .where(OutboundFileItem.file_id == f.id).order_by(OutboundFileItem.seq_in_file)):
                r = roster[item.id_hash]
                amount = Decimal(r["金额"])
                decision = sc.decide_item(ItemFacts(f.msg_id, f.name, seq, str(seq) if flat else item.end_to_end_id,
                                                    r["银行账号"], r["姓名"], r["身份证号"], amount), seed=SEED)
                decisions[item.id] = (f.bank_id, decision)
                t = tallies[batch.ref][bucket_for(decision)]
                t[0] += 1
                t[1] += int(amount * 100)
    return tallies, decisions, cfg


def test_each_banks_summary_row_matches_the_scenario(demo, expected):
    """Art. 18, 20-22: per batch (one bank each), validation refusals, settled, rejected, returned and outstanding,
    in count and in fen, as the rosters, the lists and the scenario's decisions say; every proof balances."""
    result, work, vault, engine = demo
    tallies, decisions, _ = expected
    assert result.ok and len(result.rows) == 3 and "校验位错误" in result.refused_roster  # the mistyped roster refused
    got = {r["batch"]: {k: [r[k], r["fen"][k]] for k in BUCKETS} for r in result.rows}
    assert got == tallies
    for r in result.rows:
        sent = [r["sent"], r["fen"]["sent"]]
        assert sent == [sum(tallies[r["batch"]][k][i] for k in BUCKETS[1:]) for i in (0, 1)]
    # the scenario makes every kind of outcome happen, so the comparison above means something
    for k in ("rejected_by_validation", "settled", "rejected", "returned"):
        assert all(t[k][0] for t in tallies.values()), (k, tallies)
    with Session(engine) as s:  # and the item states themselves, one by one
        last = sa.select(ItemEvent.item_id, sa.func.max(ItemEvent.id).label("m")).group_by(ItemEvent.item_id).subquery()
        states = dict(s.execute(sa.select(ItemEvent.item_id, ItemEvent.state).join(last, ItemEvent.id == last.c.m)).all())
    names = {"settled": "settled", "rejected": "rejected_by_bank", "returned": "returned"}
    wrong = {i: (states[i], d) for i, (_, d) in decisions.items() if states[i] != names.get(bucket_for(d), "sent")}
    assert not wrong


def test_the_late_report_is_late_in_the_compliance_result(demo, expected):
    """Art. 20-21: the item the scenario reports four working days late is late in the compliance result; nothing
    else is. Where the bank's camt states when it booked the credit, the credit is on time and the result is
    late [Art. 21]; where its flat result file states no date, the credit counts from the report's day [Art. 20]."""
    result, work, vault, engine = demo
    _, decisions, cfg = expected
    cal = WorkingDayCalendar.from_dir(cfg.directory / "calendar")
    late_by_scenario = {i for i, (bank, d) in decisions.items()
                        if d.late_days > cfg.banks[bank].sla.results_working_days}
    assert {decisions[i][0] for i in late_by_scenario} == set(cfg.banks) & {b for b, _ in decisions.values()}
    with Session(engine) as s:
        now = s.scalar(sa.select(sa.func.max(InboundFile.received_at)))
        deadlines = [d for d in item_deadlines(s, cfg, cal, now=now) if any(o.status == "late" for o in d.obligations)]
    late = {d.item_id for d in deadlines}
    assert late == late_by_scenario
    # a bank whose camt.054/053 states the booking date: credited on time, the result reported late
    # [Art. 21]; a bank whose flat result file states none: the credit counts from the report [Art. 20]
    for d in deadlines:
        bank = cfg.banks[decisions[d.item_id][0]]
        states_booking_date = any(r.startswith("camt.") for r in bank.reports)
        assert [o.kind for o in d.obligations if o.status == "late"] == [RESULTS if states_booking_date else CREDIT]
    header = group_header("代发银行 bank")  # the demo's own by_bank.csv says the same, bank by bank
    cols = [h for h in header if any(h == f"{LABEL[k][0]}{STATUS_LABEL['late'][0]} {LABEL[k][1]} late"
                                     for k in (CREDIT, RESULTS))]
    by_bank = {r[header[0]]: sum(int(r[c]) for c in cols) for r in read_csv(work / "reports/compliance/by_bank.csv")}
    assert by_bank == dict(Counter(decisions[i][0] for i in late_by_scenario))


def test_the_duplicated_report_changes_nothing(demo, expected):
    """Art. 21: each bank sent its first report twice; no exception, no item answered twice, every line applied once."""
    result, work, vault, engine = demo
    _, decisions, _ = expected
    for bank in {b for b, _ in decisions.values()}:
        state = json.loads((work / "banks" / bank / "state" / "state.json").read_text())
        assert state["fired"]["first report twice"] == 1  # the scenario did duplicate a report
    assert result.exceptions == 0
    with Session(engine) as s:
        twice = s.execute(sa.select(ItemEvent.item_id, ItemEvent.state).group_by(ItemEvent.item_id, ItemEvent.state)
                          .having(sa.func.count() > 1)).all()
        assert twice == []
        names = s.execute(sa.select(InboundFile.bank_id, InboundFile.name)).all()
        assert len(names) == len(set(names))
        from_reports = s.scalar(sa.select(sa.func.count()).select_from(ItemEvent)
                                .where(ItemEvent.source.like("inbound%")))
        answered = sum(1 for _, d in decisions.values() if bucket_for(d) != "outstanding") + \
            sum(1 for _, d in decisions.values() if bucket_for(d) == "returned")  # a return is a second answer
        assert from_reports == answered


def test_cross_bank_returns_are_reported_with_their_deadline(demo, expected):
    """Art. 22: every return the scenario makes is in the compliance report's refunds, due 3 working days after the
    bank booked it, and met."""
    result, work, vault, engine = demo
    _, decisions, cfg = expected
    cal = WorkingDayCalendar.from_dir(cfg.directory / "calendar")
    returned = {i for i, (_, d) in decisions.items() if bucket_for(d) == "returned"}
    with Session(engine) as s:
        booked = {e2e: (bank, bank_date or local_date(at)) for e2e, bank, bank_date, at in s.execute(
            sa.select(Item.end_to_end_id, Item.bank_id, ItemEvent.bank_date, ItemEvent.at)
            .join(ItemEvent, ItemEvent.item_id == Item.id).where(ItemEvent.state == "returned"))}
        assert set(s.scalars(sa.select(Item.end_to_end_id).where(Item.id.in_(returned)))) == set(booked)
    refunds = read_csv(work / "reports/compliance/refunds.csv")
    assert {r["发放编号 end-to-end id"] for r in refunds} == set(booked)
    for r in refunds:
        bank, day = booked[r["发放编号 end-to-end id"]]
        assert cfg.banks[bank].sla.refund_info_working_days == 3
        due = cal.add_working_days(day, 3).date
        assert r["反馈期限 due"] == due.isoformat() and (due - day).days >= 3
        assert r["状态 status"] == "按时 met"


def test_the_demo_says_where_its_outputs_are(demo):
    result, work, vault, engine = demo
    for kind in ("findings", "compliance", "notice", "policy list", "outbox", "inbound"):
        assert result.paths[kind], kind
        for p in result.paths[kind]:
            assert p.exists() and p.resolve().is_relative_to(work.resolve()), p


@pytest.mark.slow
def test_ykt_demo_runs_in_under_two_minutes_and_prints_its_paths(tmp_path):
    """`ykt demo` as a newcomer runs it (default size): done in under 2 minutes, proofs balance, and every file it
    names in its summary exists under its output directory."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "1000"}
    started = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "gateway.cli", "demo", "--var", str(tmp_path)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - started
    assert p.returncode == 0, p.stderr[-3000:]
    assert elapsed < 120, elapsed
    out = p.stdout
    assert "batch proof" in out and re.search(r"\bOK\b in \d+ s", out) and "NOT BALANCED" not in out
    listed = out.split("Files and reports")[1]
    paths = [Path(m) for m in re.findall(r"(/\S+?\.(?:xlsx|html|pdf|csv|xml|txt|db))\b", listed)]
    kinds = re.findall(r"^\s+([a-z ]+): ", listed, flags=re.M)
    assert {"findings", "compliance", "notice", "policy list", "outbox", "inbound"} <= set(kinds)
    assert len(paths) >= len(kinds)
    for path in paths:
        assert path.exists() and path.is_relative_to(tmp_path / "demo"), path
