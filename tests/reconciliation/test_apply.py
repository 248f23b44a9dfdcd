"""Matching bank outcomes to items: every mismatch kind goes to the exceptions queue, nothing is lost,
applying twice changes nothing [Art. 21-22]."""

import datetime as dt
import json
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.db.models import InboundFile, ItemEvent, OutboundFile, ReconException
from reconciliation.apply import apply_outcomes, latest_states
from reconciliation.outcomes import BY_FILE_SEQ, FileOutcome, Outcome
from reconciliation.proof import batch_proof
from tests.support.recon import NOW, deliver_batch

LATER = NOW + dt.timedelta(days=1)


def apply(engine, d, outcomes):
    with Session(engine) as s, s.begin():
        return apply_outcomes(s, outcomes, now=LATER, vault=d.vault)


def exceptions(engine):
    with Session(engine) as s:
        return [(e.kind, e.line, e.reference) for e in s.scalars(sa.select(ReconException).order_by(ReconException.id))]


def test_settle_reject_accept_and_proof(engine, pii_vault, signing_keys, tmp_path):
    d = deliver_batch(engine, n=4, vault=pii_vault, keys=signing_keys, tmp_path=tmp_path)
    (i1, e1, f1, a1), (i2, e2, f2, a2), (i3, e3, f3, a3), (i4, e4, f4, a4) = d.items
    stats = apply(engine, d, [
        Outcome(1, e1, "settled", amount=Decimal(f1) / 100, account=a1),
        Outcome(2, e2, "rejected_by_bank", reason_code="AC04", reason_text="账户已销户"),
        Outcome(3, e3, "accepted"),
    ])
    assert (stats.applied, stats.exceptions) == (3, 0)
    with Session(engine) as s:
        p = batch_proof(s, d.batch_id)
        assert p.balances
        assert (p.sent.count, p.settled.count, p.rejected.count, p.outstanding.count) == (4, 1, 1, 2)
        assert p.sent.fen == p.settled.fen + p.rejected.fen + p.returned.fen + p.outstanding.fen
        reason = s.scalars(sa.select(ItemEvent.reason_text).where(ItemEvent.item_id == i2,
                                                                  ItemEvent.state == "rejected_by_bank")).one()
        assert reason == "账户已销户"


@pytest.mark.parametrize("make, kind", [
    (lambda d: Outcome(7, "999999999999999999", "settled"), "unknown_reference"),
    (lambda d: Outcome(7, d.items[0][1], "settled", amount=Decimal("1.00")), "amount_mismatch"),
    (lambda d: Outcome(7, d.items[0][1], "settled", account="6217000000000000000"), "account_mismatch"),
    (lambda d: Outcome(7, "99", "settled", by=BY_FILE_SEQ, original_msg_id=d.msg_id), "unknown_reference"),
    (lambda d: FileOutcome("YKT20261102999999999", "rejected_by_bank", "DU01"), "unknown_file"),
])
def test_mismatch_kinds(engine, pii_vault, signing_keys, tmp_path, make, kind):
    d = deliver_batch(engine, n=2, vault=pii_vault, keys=signing_keys, tmp_path=tmp_path)
    stats = apply(engine, d, [make(d)])
    assert stats.exceptions == 1 and stats.applied == 0
    assert exceptions(engine)[0][0] == kind


def test_never_sent(engine, pii_vault, signing_keys, tmp_path):
    d = deliver_batch(engine, n=2, vault=pii_vault, keys=signing_keys, tmp_path=tmp_path, deliver=False,
                      bank="cqrcb-fj")
    # a file that was never even rendered/claimed for this item: force by referencing the item while not sent
    with Session(engine) as s, s.begin():
        s.execute(sa.text("UPDATE outbound_files SET state = 'failed'"))
    stats = apply(engine, d, [Outcome(1, d.items[0][1], "settled")])
    assert stats.exceptions == 1 and exceptions(engine)[0][0] == "never_sent"


def test_report_proves_delivery_after_crash_window(engine, pii_vault, signing_keys, tmp_path):
    """Uploaded, then the gateway died before recording delivery: the bank's answer records it."""
    d = deliver_batch(engine, n=2, vault=pii_vault, keys=signing_keys, tmp_path=tmp_path, deliver=False)
    stats = apply(engine, d, [Outcome(1, d.items[0][1], "accepted")])
    assert stats.applied == 1 and stats.exceptions == 0
    with Session(engine) as s:
        assert batch_proof(s, d.batch_id).sent.count == 2


def test_conflicting_second_status(engine, pii_vault, signing_keys, tmp_path):
    d = deliver_batch(engine, n=1, vault=pii_vault, keys=signing_keys, tmp_path=tmp_path)
    apply(engine, d, [Outcome(1, d.items[0][1], "settled")])
    stats = apply(engine, d, [Outcome(1, d.items[0][1], "rejected_by_bank", reason_code="AC01")])
    assert stats.exceptions == 1
    kind, line, ref = exceptions(engine)[0]
    assert kind == "conflicting_status" and ref == d.items[0][1]


def test_same_outcomes_twice_change_nothing(engine, pii_vault, signing_keys, tmp_path):
    d = deliver_batch(engine, n=3, vault=pii_vault, keys=signing_keys, tmp_path=tmp_path)
    outcomes = [Outcome(i, e, "settled") for i, (_, e, _, _) in enumerate(d.items, 1)]
    apply(engine, d, outcomes)
    with Session(engine) as s:
        before = s.scalar(sa.select(sa.func.count()).select_from(ItemEvent))
    stats = apply(engine, d, outcomes)
    assert (stats.applied, stats.unchanged, stats.exceptions) == (0, 3, 0)
    with Session(engine) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(ItemEvent)) == before


def test_nothing_matches_every_line_kept(engine, pii_vault, signing_keys, tmp_path):
    d = deliver_batch(engine, n=1, vault=pii_vault, keys=signing_keys, tmp_path=tmp_path)
    outcomes = [Outcome(n, f"NOPE{n}", "settled") for n in range(1, 12001)]  # spans several chunks
    stats = apply(engine, d, outcomes)
    assert stats.lines == stats.exceptions == 12000
    assert {line for _, line, _ in exceptions(engine)} == set(range(1, 12001))


def test_whole_file_rejection(engine, pii_vault, signing_keys, tmp_path):
    d = deliver_batch(engine, n=3, vault=pii_vault, keys=signing_keys, tmp_path=tmp_path)
    stats = apply(engine, d, [FileOutcome(d.msg_id, "rejected_by_bank", "DU01", "重复报文")])
    assert stats.applied == 3
    with Session(engine) as s:
        p = batch_proof(s, d.batch_id)
        assert p.rejected.count == 3 and p.balances


def test_exception_detail_is_bilingual(engine, pii_vault, signing_keys, tmp_path):
    d = deliver_batch(engine, n=1, vault=pii_vault, keys=signing_keys, tmp_path=tmp_path)
    apply(engine, d, [Outcome(3, "X", "settled")])
    with Session(engine) as s:
        detail = json.loads(s.scalars(sa.select(ReconException.detail)).one())
    assert detail["zh"] and detail["en"] and detail["state_reported"] == "settled"


def _snapshot(engine):
    with Session(engine) as s:
        events = s.execute(sa.select(ItemEvent.item_id, ItemEvent.state, ItemEvent.reason_code)
                           .order_by(ItemEvent.id)).all()
        queue = s.execute(sa.select(ReconException.inbound_file_id, ReconException.line, ReconException.kind,
                                    ReconException.reference).order_by(ReconException.id)).all()
    return events, queue


@pytest.mark.parametrize("stored", [True, False], ids=["inbound-file", "anonymous"])
def test_report_with_every_mismatch_applied_twice_changes_nothing(engine, pii_vault, signing_keys, tmp_path, stored):
    """Applying the same report twice changes nothing: item states, events and the exceptions queue
    stay as the first application left them [Art. 21-22; issue 7]."""
    d = deliver_batch(engine, n=4, vault=pii_vault, keys=signing_keys, tmp_path=tmp_path)
    unsent = deliver_batch(engine, n=1, vault=pii_vault, keys=signing_keys, tmp_path=tmp_path / "b2", deliver=False,
                           bank="cqrcb-fj")
    with Session(engine) as s, s.begin():
        s.execute(sa.update(OutboundFile).where(OutboundFile.msg_id == unsent.msg_id).values(state="failed"))
        file_id = None
        if stored:
            row = InboundFile(bank_id="icbc-cq", name="pain002.xml", sha256="0" * 64, path=str(tmp_path / "r"),
                              received_at=LATER, status="stored")
            s.add(row)
            s.flush()
            file_id = row.id
    (i1, e1, f1, a1), (i2, e2, _, _), (_, e3, _, _), (_, e4, _, _) = d.items
    report = [
        Outcome(1, e1, "settled", amount=Decimal(f1) / 100, account=a1),
        Outcome(2, e2, "rejected_by_bank", reason_code="AC04", reason_text="账户已销户"),
        Outcome(3, e3, "settled", amount=Decimal("1.00")),
        Outcome(4, "999999999999999999", "settled"),
        Outcome(5, unsent.items[0][1], "settled"),
        Outcome(6, e1, "rejected_by_bank", reason_code="AC01"),
        Outcome(7, e4, "settled", account="6217000000000000000"),
        FileOutcome("YKT20261102999999999", "rejected_by_bank", "DU01", line=8),
    ]

    def apply_report():
        with Session(engine) as s, s.begin():
            return apply_outcomes(s, report, now=LATER, vault=d.vault, inbound_file_id=file_id)

    first = apply_report()
    assert (first.applied, first.exceptions, first.exceptions_known) == (2, 6, 0)
    kinds = ["amount_mismatch", "unknown_reference", "never_sent", "conflicting_status", "account_mismatch",
             "unknown_file"]
    events, queue = _snapshot(engine)
    assert sorted((line, kind) for _, line, kind, _ in queue) == list(zip(range(3, 9), kinds))
    with Session(engine) as s:
        states = latest_states(s, [i for i, *_ in d.items])

    second = apply_report()
    assert (second.applied, second.unchanged, second.exceptions, second.exceptions_known) == (0, 2, 6, 6)
    assert _snapshot(engine) == (events, queue)
    with Session(engine) as s:
        assert latest_states(s, [i for i, *_ in d.items]) == states == {
            i1: "settled", d.items[1][0]: "rejected_by_bank", d.items[2][0]: "sent", d.items[3][0]: "sent"}


def test_database_refuses_a_second_copy_of_an_exception(engine):
    """The key (report, line, kind, reference) is unique in the database itself, NULLs included
    (migration 0007), so no writer can queue the same exception twice [issue 7]."""
    row = dict(inbound_file_id=None, line=4, reference=None, kind="unknown_reference", detail="{}",
               created_at=LATER, resolved=False)
    with Session(engine) as s, s.begin():
        s.execute(sa.insert(ReconException), [row])
    with pytest.raises(sa.exc.IntegrityError), Session(engine) as s, s.begin():
        s.execute(sa.insert(ReconException), [row])
