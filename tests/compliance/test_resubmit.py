"""The failure loop [Art. 22]: failed items reach the department's correction queue with the reason in
plain words; a corrected item is resubmitted once, validated again, paid once; the original can
never be dispatched again, not even by a crafted request."""

import csv
import datetime as dt
import io

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from compliance_support import CAL, china, dispatch, fund, item_ids, passing, rejecting, report, submit
from gateway.db.models import Batch, Item, ItemEvent, OutboundFile, OutboundFileItem
from gateway.dispatch.outbox import mark_delivered
from gateway.dispatch.plan import plan_files
from gateway.intake.roster import RosterRejected
from reconciliation.corrections import FeedbackExport, correction_queue, feedback_export, informed_on
from reconciliation.lifecycle import TRANSITIONS
from reconciliation.resubmit import ResubmissionRefused, resubmit_batch
from tests.support.rosters import HEADER, rows

T0 = china(2026, 10, 12, 9)


def failed_batch(engine, cfg, vault, n=3):
    """First row rejected by the bank (AC04), second rejected by validation, third settled (rows 2-4 of the file)."""
    body = rows(n, bank="icbc-cq")
    b = submit(engine, cfg, vault, body=body, now=T0, validator=rejecting({3}))
    dispatch(engine, cfg, now=T0)
    fund(engine, batch_id=b, at=T0)
    ids = item_ids(engine, b)
    report(engine, [ids[0]], "rejected_by_bank", received=T0 + dt.timedelta(hours=2), reason="AC04")
    report(engine, [ids[2]], "settled", received=T0 + dt.timedelta(hours=2))
    return b, ids, body


def corrections(body_rows, originals, column="原编号"):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(HEADER + [column])
    for r, o in zip(body_rows, originals):
        w.writerow(r + [o])
    return buf.getvalue().encode()


def e2e(engine, item_id):
    with Session(engine) as s:
        return s.scalar(sa.select(Item.end_to_end_id).where(Item.id == item_id))


def resubmit(engine, cfg, vault, b, data, validator=passing):
    with Session(engine) as s, s.begin():
        return resubmit_batch(s, cfg, vault, original_batch_id=b, corrections=data, source_name="fix.csv",
                              submitted_by="clerk", now=T0 + dt.timedelta(days=1), validator=validator)


def test_correction_queue_explains_in_plain_words(engine, cfg, vault):
    """Art. 22: rejected and returned items go back to the department with the reason in plain words."""
    b, ids, _ = failed_batch(engine, cfg, vault)
    with Session(engine) as s:
        q = correction_queue(s, cfg, vault, department_code="FJ-NYNC")
    assert [(e.item_id, e.state) for e in q] == [(ids[0], "rejected_by_bank"), (ids[1], "rejected_by_validation")]
    bank = q[0]
    assert bank.reason_code == "AC04" and bank.reason_zh == "账户已销户" and "closed" in bank.explain
    assert "重新申报" in bank.explain  # what to do, in Chinese
    assert "*" in bank.name and bank.id_number.count("*") == 8 and bank.account.startswith("*")
    assert "测试拒绝" in q[1].reason_zh and "test reject" in q[1].reason_en


def test_resubmitted_item_is_paid_once_and_the_original_never_again(engine, cfg, vault):
    """Art. 22: the correction is a new, linked item, validated again; the original can never be dispatched again."""
    b, ids, body = failed_batch(engine, cfg, vault)
    fixed = [body[0][:2] + ["62170009999999999"] + body[0][3:], body[1]]
    r = resubmit(engine, cfg, vault, b, corrections(fixed, [e2e(engine, ids[0]), e2e(engine, ids[1])]))
    assert set(r.links.values()) == {ids[0], ids[1]} and r.submission.validated == 2
    with Session(engine) as s:
        nb = s.get(Batch, r.submission.batch_id)
        assert nb.corrects_batch_id == b and nb.policy_code == "GDDL"
        assert correction_queue(s, cfg, vault, batch_id=b) == []  # both corrected: the queue is empty
    files = dispatch(engine, cfg, now=T0 + dt.timedelta(days=1))
    with Session(engine) as s:
        sent = set(s.scalars(sa.select(OutboundFileItem.item_id).where(OutboundFileItem.file_id.in_(files))))
    assert sent == set(r.links) and not sent & set(ids)
    new_for_0 = next(k for k, v in r.links.items() if v == ids[0])
    report(engine, [new_for_0], "settled", received=T0 + dt.timedelta(days=2))
    with Session(engine) as s:
        paid = s.scalars(sa.select(Item.id_hash).join(ItemEvent).where(ItemEvent.state == "settled")).all()
        assert len(paid) == len(set(paid)) == 2  # row 3 of the original, and the correction of row 1: once each
        assert plan_files(s, cfg, now=T0 + dt.timedelta(days=3), calendar=CAL) == []
    with pytest.raises(ResubmissionRefused, match="already resubmitted"):  # an original can be resubmitted once
        resubmit(engine, cfg, vault, b, corrections([fixed[0]], [e2e(engine, ids[0])]))


def test_crafted_requests_cannot_revive_the_original(engine, cfg, vault):
    """Art. 22 and Art. 15: the database refuses an event that breaks the lifecycle, and a second link."""
    b, ids, body = failed_batch(engine, cfg, vault)
    for item in (ids[0], ids[1]):  # rejected by the bank; rejected by validation
        for state in ("validated", "sent", "submitted", "settled"):
            with Session(engine) as s, s.begin(), pytest.raises(IntegrityError, match="lifecycle"):
                s.execute(sa.text("INSERT INTO item_events (item_id, state, at, source) VALUES (:i, :s, :t, 'x')"),
                          {"i": item, "s": state, "t": T0})
    with Session(engine) as s, s.begin():
        assert plan_files(s, cfg, now=T0 + dt.timedelta(days=1), calendar=CAL) == []
    r = resubmit(engine, cfg, vault, b, corrections([body[0]], [e2e(engine, ids[0])]))
    with Session(engine) as s, s.begin(), pytest.raises(IntegrityError):
        row = s.execute(sa.select(Item).where(Item.id == next(iter(r.links)))).scalar_one()
        s.execute(sa.insert(Item), [dict(batch_id=row.batch_id, seq=99, end_to_end_id="X" * 18, unit_code=row.unit_code,
                                         bank_id=row.bank_id, amount_fen=1, name_enc=row.name_enc,
                                         id_number_enc=row.id_number_enc, account_enc=row.account_enc,
                                         id_hash=row.id_hash, account_hash=row.account_hash,
                                         resubmission_of=ids[0])])


def test_one_statement_with_one_event_out_of_order_is_refused_whole(engine, cfg, vault):
    """Art. 22: the guard checks every row of a many-row INSERT (PostgreSQL checks the statement's rows
    together, SQLite row by row): events of one item in order pass; one wrong row refuses them all."""
    from reconciliation.apply import latest_states

    b, ids, body = failed_batch(engine, cfg, vault)
    insert = sa.text("INSERT INTO item_events (item_id, state, at, source) VALUES (:i, :s, :t, 'x')")
    with Session(engine) as s, s.begin(), pytest.raises(IntegrityError, match="lifecycle"):
        s.execute(insert, [{"i": ids[0], "s": "returned", "t": T0}, {"i": ids[1], "s": "validated", "t": T0}])
    fresh = resubmit(engine, cfg, vault, b, corrections([body[0]], [e2e(engine, ids[0])]))
    new = next(iter(fresh.links))
    count = sa.select(sa.func.count()).select_from(ItemEvent)
    with Session(engine) as s:
        before = s.scalar(count)
    three = sa.text("INSERT INTO item_events (item_id, state, at, source) VALUES "
                    "(:i, 'sent', :t, 'x'), (:i, 'settled', :t, 'x'), (:i, 'validated', :t, 'x')")
    with Session(engine) as s, s.begin(), pytest.raises(IntegrityError, match="lifecycle"):
        s.execute(three, {"i": new, "t": T0})
    with Session(engine) as s, s.begin():
        assert s.scalar(count) == before
        s.execute(sa.text("INSERT INTO item_events (item_id, state, at, source) VALUES "
                          "(:i, 'sent', :t, 'x'), (:i, 'settled', :t, 'x')"), {"i": new, "t": T0})
    with Session(engine) as s:
        assert latest_states(s, [new]) == {new: "settled"} and s.scalar(count) == before + 2


def test_the_guard_table_is_the_lifecycle_table(engine):
    """Art. 22: the database's copy of the transition table equals reconciliation.lifecycle.TRANSITIONS."""
    with engine.connect() as c:
        db = set(c.execute(sa.text("SELECT from_state, to_state FROM lifecycle_transitions")).all())
    code = {(a, b) for a, bs in TRANSITIONS.items() for b in bs} | {("", "submitted")}
    assert db == code


def test_bad_corrections_are_refused_whole(engine, cfg, vault):
    """Art. 22: every problem named, nothing submitted."""
    b, ids, body = failed_batch(engine, cfg, vault)
    other = rows(5, bank="icbc-cq")[4]  # a different person
    data = corrections([body[2], other, body[0], body[1]],
                       [e2e(engine, ids[2]), e2e(engine, ids[1]), "000000000000000000", ""])
    with pytest.raises(ResubmissionRefused) as e:
        resubmit(engine, cfg, vault, b, data)
    got = [(p.row, p.column) for p in e.value.problems]
    assert got == [(2, "原编号"), (3, "原编号"), (4, "原编号"), (5, "原编号")]
    assert "settled" in e.value.problems[0].en and "neither" in e.value.problems[1].en
    with Session(engine) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Batch)) == 1
    with pytest.raises(ResubmissionRefused, match="exactly one column"):
        resubmit(engine, cfg, vault, b, corrections([body[0]], ["x"], column="备注x"))
    bad = [body[0][:4] + ["-5"] + body[0][5:]]
    with pytest.raises(RosterRejected):  # the roster itself is checked as any roster
        resubmit(engine, cfg, vault, b, corrections(bad, ["2"], column="原行号"))


def test_resubmission_is_validated_again(engine, cfg, vault):
    """Art. 18, 22: a corrected row goes through validation again."""
    b, ids, body = failed_batch(engine, cfg, vault)
    r = resubmit(engine, cfg, vault, b, corrections([body[0]], ["2"], column="原行号"), validator=rejecting({2}))
    assert r.submission.rejected == 1 and r.submission.validated == 0
    with Session(engine) as s:  # the correction failed again: it is in the queue, linked, the original is not
        q = correction_queue(s, cfg, vault, department_code="FJ-NYNC")
        assert [e.item_id for e in q] == [ids[1], next(iter(r.links))]


def test_feedback_export_per_department_and_unit(engine, cfg, vault):
    """Art. 21: results go back to the department and the implementation unit, masked, and the export is recorded."""
    b, ids, body = failed_batch(engine, cfg, vault)
    with Session(engine) as s, s.begin():
        name, data = feedback_export(s, cfg, vault, now=T0, created_by="clerk", department_code="FJ-NYNC")
        xname, xdata = feedback_export(s, cfg, vault, now=T0, created_by="clerk", unit_code="500236101", fmt="xlsx")
    text = data.decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert len(table) == 4 and "状态 status" in table[0]
    assert body[0][1] not in text and body[0][2] not in text and body[0][0] not in text  # masked [Art. 30]
    assert "账户已销户" in text and "已到账" in text
    assert xdata[:2] == b"PK" and xname.endswith(".xlsx")
    with Session(engine) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(FeedbackExport)) == 2
        last = s.scalars(sa.select(ItemEvent.id).where(ItemEvent.item_id == ids[0]).order_by(ItemEvent.id.desc())).first()
        assert informed_on(s, [last])[last] == T0


def link(engine, file_id, item_id, seq=99):
    """A crafted request: put an item into a payment file with raw SQL, past every check of the planner."""
    with Session(engine) as s, s.begin():
        s.execute(sa.text("INSERT INTO outbound_file_items (file_id, seq_in_file, item_id) VALUES (:f, :q, :i)"),
                  {"f": file_id, "q": seq, "i": item_id})


def test_a_crafted_file_link_cannot_pay_a_resubmitted_original_again(engine, cfg, vault):
    """Art. 22: once resubmitted, an original (rejected by the bank, or by validation and so never in any file) cannot
    be slipped into the correction's payment file by a raw INSERT: the database refuses it, and only the
    corrections are sent."""
    b, ids, body = failed_batch(engine, cfg, vault)
    r = resubmit(engine, cfg, vault, b, corrections(body[:2], [e2e(engine, ids[0]), e2e(engine, ids[1])]))
    later = T0 + dt.timedelta(days=1)
    with Session(engine) as s, s.begin():
        [planned] = plan_files(s, cfg, now=later, calendar=CAL)  # the corrections' file, not rendered yet
    for n, original in enumerate((ids[1], ids[0]), 90):
        with pytest.raises(IntegrityError):
            link(engine, planned.file_id, original, seq=n)
    with Session(engine) as s, s.begin():
        s.execute(sa.update(OutboundFile).where(OutboundFile.id == planned.file_id).values(state="ready"))
        mark_delivered(s, planned.file_id, now=later)
    with Session(engine) as s:
        carried = set(s.scalars(sa.select(OutboundFileItem.item_id).where(OutboundFileItem.file_id == planned.file_id)))
        sent = set(s.scalars(sa.select(ItemEvent.item_id).where(ItemEvent.state == "sent", ItemEvent.at == later)))
    assert carried == sent == set(r.links)


def test_a_returned_item_is_resubmitted_and_paid_once(engine, cfg, vault):
    """Art. 22: a payment credited and then returned (退汇, e.g. cross-bank) goes back to the department, is corrected
    as a new linked item, validated again and paid; the person is paid once in the end, and the original can
    neither be resubmitted again nor put into another file."""
    b, ids, body = failed_batch(engine, cfg, vault)
    report(engine, [ids[2]], "returned", received=T0 + dt.timedelta(hours=5), bank_date=T0.date(), reason="AC04")
    with Session(engine) as s:
        assert ids[2] in [e.item_id for e in correction_queue(s, cfg, vault, batch_id=b)]
    fixed = [body[2][:2] + ["62170009999999998"] + body[2][3:]]
    r = resubmit(engine, cfg, vault, b, corrections(fixed, [e2e(engine, ids[2])]), validator=rejecting(set()))
    [(new, original)] = r.links.items()
    assert original == ids[2] and r.submission.validated == 1
    files = dispatch(engine, cfg, now=T0 + dt.timedelta(days=1))
    with pytest.raises(IntegrityError):
        link(engine, files[0], ids[2])
    report(engine, [new], "settled", received=T0 + dt.timedelta(days=2))
    with Session(engine) as s:
        person = s.scalar(sa.select(Item.id_hash).where(Item.id == ids[2]))
        mine = s.scalars(sa.select(Item.id).where(Item.id_hash == person)).all()
        from reconciliation.apply import latest_states
        assert sorted(latest_states(s, mine).items()) == sorted({ids[2]: "returned", new: "settled"}.items())
        assert s.scalar(sa.select(sa.func.count()).select_from(OutboundFileItem)
                        .where(OutboundFileItem.item_id.in_(mine))) == 2  # one file each, ever
    with pytest.raises(ResubmissionRefused, match="already resubmitted"):
        resubmit(engine, cfg, vault, b, corrections(fixed, [e2e(engine, ids[2])]))
