"""One test per outcome kind a scenario can ask for, plus account verification and determinism."""

from __future__ import annotations

import datetime as dt
import json
import socket
import time

import pytest

from formats.flatfile import read_flat
from formats.iso20022.acmt import read_acmt024, write_acmt023
from formats.iso20022.camt053 import read_camt053
from formats.iso20022.camt054 import read_camt054
from formats.iso20022.pain002 import read_pain002
from formats.model import TxStatus, VerificationQuery, VerificationRequest
from simulators.bank import CST
from simulators.book import AccountBook, Holder
from simulators.scenario import Scenario
from simulators.clock import WarpClock, epoch
from simulators.testing import DEFAULT_START, payments, reactor_thread, write_instruction

from sim_helpers import accept_all, https, reports

BOOK = [Holder("6217990000000000001", "冉小梅", "500236198503120021", "closed"),
        Holder("6217990000000000002", "向大明", "500236197708050031", "frozen"),
        Holder("6217990000000000003", "秦桂兰", "500236196201150041", "lost"),
        Holder("6217990000000000004", "王伟", "500236199001010011", "active")]


def _send(rb, tmp_path, items, msg_id="YKT20261102000601"):
    k = rb.keys
    f = write_instruction(rb.bank, tmp_path / msg_id, items, msg_id=msg_id, key=k.gateway_sign_key,
                          cert=k.gateway_sign_cert)
    return rb.receive(f.name, f.path, f.signature)


def _statuses(rb):
    out = {}
    for name, data in reports(rb).items():
        if b"pain.002" in data[:200]:
            for t in read_pain002(data, source=name).transactions:
                out[t.original_end_to_end_id] = (t.status, t.reason_code)
    return out


def test_settle_credits_and_reports_acsc_with_camt053(bank, tmp_path):
    rb = bank("psbc-xs", scenario=accept_all())
    _send(rb, tmp_path, list(payments(5)))
    assert set(_statuses(rb).values()) == {(TxStatus.ACCEPTED_SETTLEMENT_COMPLETED, None)}
    stmt = [read_camt053(b, source=n) for n, b in reports(rb).items() if b"camt.053" in b[:200]]
    assert len(stmt) == 1 and len(stmt[0].entries) == 5 and not any(e.is_return for e in stmt[0].entries)
    assert rb.core.ledger.credited_count == 5 and str(rb.core.ledger.credited_total) == "520.55"


def test_reject_by_account_book_with_reason_codes(bank, tmp_path):
    rb = bank("psbc-xs", scenario=Scenario(), book=AccountBook(BOOK))
    items = list(payments(4, holders=BOOK))
    unknown = list(payments(1, start=5))
    mismatch = [items[3].__class__(**{**items[3].__dict__, "end_to_end_id": "E-NAME", "creditor_name": "王 卫"})]
    _send(rb, tmp_path, items + unknown + mismatch)
    s = _statuses(rb)
    assert s["E0000000001"] == (TxStatus.REJECTED, "AC04")
    assert s["E0000000002"] == s["E0000000003"] == (TxStatus.REJECTED, "AC06")
    assert s["E0000000004"] == (TxStatus.ACCEPTED_SETTLEMENT_COMPLETED, None)
    assert s["E0000000005"] == (TxStatus.REJECTED, "AC01")
    assert s["E-NAME"] == (TxStatus.REJECTED, "BE01")
    assert rb.core.ledger.credited_count == 1


def test_reject_by_rule_writes_the_bank_text_in_a_flat_result(bank, tmp_path):
    rb = bank("cqrcb-fj", scenario=accept_all(rule=[{"sequence": 2, "outcome": "reject", "reason": "AC06"}]))
    _send(rb, tmp_path, list(payments(3)))
    (name, data), = reports(rb).items()
    rows = read_flat(data, rb.core.flat_out["flat:rcb_pipe"].result, source=name, reasons=rb.core.reasons).records
    assert [(r.status, r.reason_code) for r in rows] == [
        (TxStatus.ACCEPTED_SETTLEMENT_COMPLETED, None), (TxStatus.REJECTED, "AC06"),
        (TxStatus.ACCEPTED_SETTLEMENT_COMPLETED, None)]
    assert rows[1].reason_text == "账户冻结"


def test_return_after_two_working_days_in_camt054_with_original_end_to_end_id(bank, tmp_path):
    # Friday 2026-11-06 10:00: two working days later is Tuesday 2026-11-10
    start = dt.datetime(2026, 11, 6, 10, 0, tzinfo=CST)
    rb = bank("icbc-cq", start=start,
              scenario=accept_all(rule=[{"sequence": 2, "outcome": "return", "days": 2, "reason": "AC04"}]))
    _send(rb, tmp_path, list(payments(3)))
    assert _statuses(rb)["E0000000002"] == (TxStatus.ACCEPTED_SETTLEMENT_COMPLETED, None)
    before = set(reports(rb))
    rb.advance_to(dt.datetime(2026, 11, 9, 23, 0, tzinfo=CST))  # Monday: not yet
    assert set(reports(rb)) == before
    rb.advance_to(dt.datetime(2026, 11, 10, 9, 0, tzinfo=CST))
    new = {n: b for n, b in reports(rb).items() if n not in before}
    (name, data), = new.items()
    n = read_camt054(data, source=name)
    (e,) = n.entries
    assert (e.end_to_end_id, e.is_return, e.return_reason_code, str(e.amount)) == ("E0000000002", True, "AC04", "102.74")
    assert e.booking_date == dt.date(2026, 11, 10)
    assert rb.core.ledger.returned_count == 1


def test_return_in_camt053_statement(bank, tmp_path):
    rb = bank("psbc-xs", scenario=accept_all(rule=[{"sequence": 1, "outcome": "return", "days": 1}]))
    _send(rb, tmp_path, list(payments(2)))
    before = set(reports(rb))
    rb.next_working_day()
    (name, data), = {n: b for n, b in reports(rb).items() if n not in before}.items()
    (e,) = read_camt053(data, source=name).entries
    assert e.is_return and e.end_to_end_id == "E0000000001"


def test_late_report_comes_n_working_days_later(bank, tmp_path):
    rb = bank("psbc-xs", scenario=accept_all(file_rule=[{"late_days": 2}]))
    intake = _send(rb, tmp_path, list(payments(2)))
    assert intake.receipt.status == "accepted" and reports(rb) == {}
    assert rb.core.ledger.credited_count == 2  # credited on time; only the report is late
    rb.next_working_day()
    assert reports(rb) == {}
    rb.next_working_day()
    assert set(reports(rb)) == set(intake.receipt.reports)
    assert rb.now().date() == dt.date(2026, 11, 4)


def test_same_report_sent_twice(bank, tmp_path):
    rb = bank("psbc-xs", scenario=accept_all(reports={"duplicate": True, "duplicate_after_seconds": 600}))
    intake = _send(rb, tmp_path, list(payments(2)))
    first = intake.receipt.reports[0]
    data = rb.core.report_path(first).read_bytes()
    assert rb.core.ack(first) and first not in rb.core.list_reports()
    rb.advance(601)
    assert first in rb.core.list_reports() and rb.core.report_path(first).read_bytes() == data


def test_reports_split_over_several_files(bank, tmp_path):
    rb = bank("psbc-xs", scenario=accept_all(reports={"split_items": 2}))
    _send(rb, tmp_path, list(payments(5)))
    p002 = [read_pain002(b, source=n) for n, b in reports(rb).items() if b"pain.002" in b[:200]]
    assert sorted(len(r.transactions) for r in p002) == [1, 2, 2]
    assert {r.header.original_number_of_transactions for r in p002} == {5}
    assert len({r.header.message_id for r in p002}) == 3


def test_flat_result_files_split_too(bank, tmp_path):
    rb = bank("cqrcb-fj", scenario=accept_all(reports={"split_items": 2}))
    _send(rb, tmp_path, list(payments(5)))
    layout = rb.core.flat_out["flat:rcb_pipe"].result
    parts = [read_flat(b, layout, source=n, reasons=rb.core.reasons) for n, b in sorted(reports(rb).items())]
    assert [(p.header["count"], [r.original_end_to_end_id for r in p.records]) for p in parts] == [
        (2, ["1", "2"]), (2, ["3", "4"]), (1, ["5"])]  # each part says its own count; every line once
    assert all(n.startswith("YKT20261102000601_") for n in reports(rb))  # each names the original MsgId


def test_camt054_notifications_split_too(bank, tmp_path):
    rb = bank("icbc-cq", scenario=accept_all(reports={"split_items": 2}))
    _send(rb, tmp_path, list(payments(5)))
    notes = [read_camt054(b, source=n) for n, b in reports(rb).items() if b"camt.054" in b[:200]]
    assert sorted(len(n.entries) for n in notes) == [1, 2, 2]
    assert sorted(e.end_to_end_id for n in notes for e in n.entries) == [f"E{i:010d}" for i in range(1, 6)]
    assert len({n.header.message_id for n in notes}) == 3


def test_time_warp_covers_several_working_days_in_seconds_on_the_bank_calendar(bank, tmp_path):
    """The real reactor's time runs 120,000 times faster. Received on 7 October 2026 (National Day holiday):
    credited on Thursday the 8th (the next working day), the report one working day late comes on Friday the
    9th, the return two working days after crediting on Saturday the 10th, a working day in 2026 (调休)."""
    warp = WarpClock(reactor_thread().reactor, factor=120_000, origin=epoch(dt.datetime(2026, 10, 7, 0, 0, tzinfo=CST)))
    rb = bank("icbc-cq", clock=warp, scenario=accept_all(
        file_rule=[{"late_days": 1}], rule=[{"sequence": 2, "outcome": "return", "days": 2, "reason": "AC04"}]))
    began = time.monotonic()
    intake = _send(rb, tmp_path, list(payments(3)))
    assert intake.receipt.received_at.startswith("2026-10-07")
    while len(reports(rb)) < 3 and time.monotonic() - began < 30:
        time.sleep(0.05)
    took = time.monotonic() - began
    assert rb.now() >= dt.datetime(2026, 10, 10, 9, 0, tzinfo=CST) and took < 15  # three days and more, in seconds
    got = reports(rb)
    (status,) = [read_pain002(b, source=n) for n, b in got.items() if b"pain.002" in b[:200]]
    assert status.header.created_at.replace(tzinfo=None) == dt.datetime(2026, 10, 9, 9, 0)
    notes = sorted((read_camt054(b, source=n) for n, b in got.items() if b"camt.054" in b[:200]),
                   key=lambda n: n.header.created_at)
    assert [n.header.created_at.replace(tzinfo=None) for n in notes] == [dt.datetime(2026, 10, 9, 9, 0),
                                                                         dt.datetime(2026, 10, 10, 9, 0)]
    assert {e.booking_date for e in notes[0].entries} == {dt.date(2026, 10, 8)}
    (ret,) = notes[1].entries
    assert (ret.end_to_end_id, ret.is_return, ret.booking_date) == ("E0000000002", True, dt.date(2026, 10, 10))


def test_file_rule_refuses_a_whole_file(bank, tmp_path):
    rb = bank("psbc-xs", scenario=accept_all(file_rule=[{"file": "*000601.xml", "refuse": "AM04"}]))
    intake = _send(rb, tmp_path, list(payments(2)))
    assert intake.receipt.status == "refused" and intake.receipt.reason_code == "AM04"
    assert rb.core.ledger.credited_count == 0


def test_outage_window_refuses_sftp_connections_and_answers_503(bank):
    rb = bank("psbc-xs", scenario=accept_all(outage=[{"transport": "all", "from": dt.datetime(2026, 11, 2, 11, 0),
                                                      "to": dt.datetime(2026, 11, 2, 12, 0)}]))
    assert https(rb, "GET", "/health")[0] == 200
    socket.create_connection(("127.0.0.1", rb.sftp_port), timeout=5).close()
    rb.advance_to(dt.datetime(2026, 11, 2, 11, 0, 1, tzinfo=CST))
    status, headers, _ = https(rb, "GET", "/health")
    assert status == 503
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", rb.sftp_port), timeout=5)
    rb.advance_to(dt.datetime(2026, 11, 2, 12, 0, 1, tzinfo=CST))
    assert https(rb, "GET", "/health")[0] == 200
    socket.create_connection(("127.0.0.1", rb.sftp_port), timeout=5).close()


def test_chance_mix_is_seeded(bank, tmp_path):
    rules = [{"chance": 0.2, "outcome": "reject", "reason": "BE01"}]
    counts = []
    for seed in (1, 1, 2):
        rb = bank("psbc-xs", seed=seed, scenario=accept_all(rule=rules))
        _send(rb, tmp_path / str(len(counts)), list(payments(200)))
        counts.append(sorted(e for e, s in _statuses(rb).items() if s[1] == "BE01"))
    assert counts[0] == counts[1] != counts[2]
    assert 20 <= len(counts[0]) <= 60


def test_file_received_after_cutoff_is_credited_next_working_day(bank, tmp_path):
    rb = bank("psbc-xs", scenario=accept_all(), start=dt.datetime(2026, 11, 6, 16, 0, tzinfo=CST))  # Fri after 15:00
    _send(rb, tmp_path, list(payments(1)))
    assert reports(rb) == {}
    rb.next_working_day()
    assert rb.now().date() == dt.date(2026, 11, 9) and len(reports(rb)) == 2


def test_online_verification_acmt023_and_json(bank):
    rb = bank("icbc-cq", scenario=Scenario(), book=AccountBook(BOOK))
    req = VerificationRequest("V1", DEFAULT_START.replace(tzinfo=None), (
        VerificationQuery("q1", "王伟", "6217990000000000004", "500236199001010011"),
        VerificationQuery("q2", "王伟", "6217990000000000001"),
        VerificationQuery("q3", "李四", "6217990000000000004"),
        VerificationQuery("q4", "李四", "6200000000000000000")))
    status, headers, body = https(rb, "POST", "/verify", write_acmt023(req), {"Content-Type": "application/xml"})
    assert status == 200
    r = read_acmt024(body, source="acmt024")
    assert [(x.query_id, x.verified, x.reason_code) for x in r.results] == [
        ("q1", True, None), ("q2", False, "AC04"), ("q3", False, "BE01"), ("q4", False, "AC01")]
    status, _, body = https(rb, "POST", "/verify", json.dumps({"queries": [
        {"query_id": "j1", "name": "向大明", "account": "6217990000000000002"}]}).encode(),
        {"Content-Type": "application/json"})
    assert status == 200 and json.loads(body)["results"][0]["reason_code"] == "AC06"


@pytest.mark.parametrize("bank_id", ["psbc-xs", "icbc-cq", "cqrcb-fj"])
def test_same_scenario_and_seed_give_byte_identical_reports(bank, tmp_path, bank_id):
    runs = []
    for i in range(2):
        rb = bank(bank_id, scenario="default", seed=42)
        k = rb.keys
        for j, n in enumerate((30, 7)):
            f = write_instruction(rb.bank, tmp_path / f"{i}-{j}", list(payments(n, start=100 * j + 1)),
                                  msg_id=f"YKT2026110200070{j}", key=k.gateway_sign_key, cert=k.gateway_sign_cert)
            rb.receive(f.name, f.path, f.signature)
        for _ in range(3):
            rb.next_working_day()
        files = {p.name: p.read_bytes() for p in sorted((rb.root / "outbox").iterdir()) if p.is_file()}
        files.update({"credits.csv": (rb.root / "state" / "credits.csv").read_bytes()})
        runs.append(files)
        rb.stop()
    assert len(runs[0]) >= 4 and runs[0] == runs[1]
