"""Submitting a roster: one immutable batch, items encrypted, events and findings, all or nothing [Art. 15-16, 18]."""

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.config import load
from gateway.db.models import Batch, Finding, Item, ItemEvent
from gateway.intake.roster import RosterRejected
from gateway.intake.submit import SubmissionRefused, submit_roster
from gateway.privacy import PiiVault
from gateway.validation.model import REJECT, REVIEW, Finding as F
from tests.support.rosters import csv_bytes, rows

NOW = dt.datetime(2026, 11, 2, 9, 30)


@pytest.fixture(scope="module")
def cfg():
    return load("config")


@pytest.fixture(scope="module")
def vault():
    return PiiVault.from_text(PiiVault.new_key_line("k1"))


def flagging_validator(reject_seqs=(), review_seqs=()):
    """A stand-in for the rule engine (tested on its own): rejects / holds the given rows."""
    def validate(candidates, **kw):
        for c in candidates:
            found = []
            if c.seq in reject_seqs:
                found.append(F(c.seq, "TEST_REJECT", REJECT, "测试拒绝", "test reject"))
            if c.seq in review_seqs:
                found.append(F(c.seq, "TEST_REVIEW", REVIEW, "测试复核", "test review"))
            yield c, found
    return validate


def submit(engine, cfg, vault, data, validator, **kw):
    with Session(engine) as s, s.begin():
        return submit_roster(s, cfg, vault, data=data, source_name="roster.csv", policy_code="GDDL",
                             period="2026-11", submitted_by="fj-nync-clerk", now=NOW, validator=validator, **kw)


def test_submit_records_batch_items_events_findings(engine, cfg, vault):
    body = rows(7)
    r = submit(engine, cfg, vault, csv_bytes(body), flagging_validator(reject_seqs={3}, review_seqs={5}))
    assert (r.item_count, r.total_fen, r.validated, r.rejected, r.held_for_review) == (7, 7 * 150000, 5, 1, 1)
    with Session(engine) as s:
        batch = s.get(Batch, r.batch_id)
        assert batch.department_code == "FJ-NYNC" and batch.county_code == "500236" and len(batch.content_sha256) == 64
        items = s.scalars(sa.select(Item).order_by(Item.seq)).all()
        assert [i.seq for i in items] == list(range(2, 9))
        assert items[0].end_to_end_id == f"{r.batch_id:010d}00000002"
        assert vault.read(items[0], "name_enc") == body[0][0]
        assert body[0][1].encode() not in items[0].id_number_enc  # encrypted at rest [Art. 30]
        assert items[0].id_hash == vault.blind_index("id", body[0][1])
        states = dict(s.execute(sa.select(Item.seq, sa.func.max(ItemEvent.state)).join(ItemEvent)
                                .where(ItemEvent.source == "validation").group_by(Item.seq)).all())
        assert states[3] == "rejected_by_validation" and 5 not in states and states[2] == "validated"
        assert {f.code for f in s.scalars(sa.select(Finding))} == {"TEST_REJECT", "TEST_REVIEW"}


def test_items_written_and_numbered_chunk_by_chunk(engine, cfg, vault, monkeypatch):
    """Ids are taken (from the sequence, on PostgreSQL) and items written a chunk at a time: a roster
    longer than a chunk comes out whole, each item numbered once, in roster order."""
    import gateway.intake.submit as submit_module

    monkeypatch.setattr(submit_module, "CHUNK", 3)
    r = submit(engine, cfg, vault, csv_bytes(rows(8)), flagging_validator())
    with Session(engine) as s:
        got = s.execute(sa.select(Item.seq, Item.id).where(Item.batch_id == r.batch_id).order_by(Item.seq)).all()
        events = s.scalar(sa.select(sa.func.count()).select_from(ItemEvent).join(Item)
                          .where(Item.batch_id == r.batch_id, ItemEvent.state == "validated"))
    assert [seq for seq, _id in got] == list(range(2, 10))
    ids = [i for _seq, i in got]
    assert ids == sorted(set(ids)) and (r.item_count, r.validated, events) == (8, 8, 8)


def test_a_large_submission_refreshes_the_planner_statistics_on_postgresql(engine, cfg, vault, monkeypatch):
    """Dispatch plans right after intake: on the statistics of the empty tables, PostgreSQL planned a million
    fresh items with nested loops (16 s against 9 s). A submission of ANALYZE_AFTER items or more refreshes
    them in its own transaction; a smaller one leaves them to autovacuum."""
    import gateway.intake.submit as submit_module

    if engine.dialect.name != "postgresql":
        pytest.skip("planner statistics of PostgreSQL")
    monkeypatch.setattr(submit_module, "ANALYZE_AFTER", 5)

    def planner_rows():
        with engine.connect() as c:
            return c.execute(sa.text("SELECT relname, reltuples FROM pg_class WHERE relname IN ('items', 'item_events')"
                                     " ORDER BY relname")).all()

    submit(engine, cfg, vault, csv_bytes(rows(3)), flagging_validator())
    assert planner_rows() != [("item_events", 6), ("items", 3)]  # 3 < 5: not analyzed
    submit(engine, cfg, vault, csv_bytes(rows(6, amount="1200.00")), flagging_validator())
    assert planner_rows() == [("item_events", 18), ("items", 9)]  # both batches, each item two events


def test_same_file_twice_refused(engine, cfg, vault):
    data = csv_bytes(rows(2))
    submit(engine, cfg, vault, data, flagging_validator())
    with pytest.raises(SubmissionRefused, match="already submitted"):
        submit(engine, cfg, vault, data, flagging_validator())


def test_bad_roster_imports_nothing(engine, cfg, vault):
    body = rows(4)
    body[3][4] = "-20"
    with pytest.raises(RosterRejected):
        submit(engine, cfg, vault, csv_bytes(body), flagging_validator())
    with Session(engine) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(Item)) == 0


def test_unknown_policy_and_bad_period(engine, cfg, vault):
    with Session(engine) as s:
        with pytest.raises(SubmissionRefused, match="unknown policy"):
            submit_roster(s, cfg, vault, data=b"", source_name="x", policy_code="NOPE", period="2026-11",
                          submitted_by="x", now=NOW, validator=flagging_validator())
        with pytest.raises(SubmissionRefused, match="YYYY-MM"):
            submit_roster(s, cfg, vault, data=b"", source_name="x", policy_code="GDDL", period="2026-13",
                          submitted_by="x", now=NOW, validator=flagging_validator())


def test_bank_must_serve_the_county(engine, cfg, vault):
    body = rows(1, bank="psbc-xs")  # a Xiushan bank on a Fengjie roster
    with pytest.raises(RosterRejected, match="partner bank"):
        submit(engine, cfg, vault, csv_bytes(body), flagging_validator())
