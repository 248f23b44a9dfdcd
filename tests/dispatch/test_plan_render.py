"""Dispatch without the network: items -> files split by the bank's limits -> rendered, signed, durable
outbox -> delivery recorded once [Art. 18-20]."""

import dataclasses
import datetime as dt
import random

import pytest
import sqlalchemy as sa
from lxml import etree
from sqlalchemy.orm import Session

from formats.flatfile.reader import read_flat
from formats.iso20022.pain001 import read_pain001
from formats.signature.cms import verify_detached
from formats.signature.keys import make_leaf, make_test_ca
from formats.signature.xmldsig import verify_document
from formats.xsd import schema_for
from gateway.calendar import DEFAULT_CALENDAR_DIR, WorkingDayCalendar
from gateway.config import load
from gateway import audit
from gateway.db.models import Item, ItemEvent, OutboundFile, OutboundFileItem, ReconException
from gateway.dispatch.outbox import backoff, claim_due, mark_delivered, mark_failed
from gateway.dispatch.plan import plan_files, requested_execution_date
from gateway.dispatch.render import HELD_KIND, render_file, render_planned
from gateway.intake.submit import submit_roster
from gateway.keys import SigningMaterial
from gateway.privacy import PiiVault
from tests.support.rosters import csv_bytes, rows

NOW = dt.datetime(2026, 11, 2, 1, 30)  # 09:30 in Chongqing, a Monday
CAL = WorkingDayCalendar.from_dir(DEFAULT_CALENDAR_DIR)


@pytest.fixture(scope="module")
def keys():
    ca_key, ca_cert = make_test_ca("YKT test CA")
    key, cert = make_leaf(ca_key, ca_cert, "gateway signing")
    bank_key, bank_cert = make_leaf(ca_key, ca_cert, "bank signing")
    return {"cms": SigningMaterial("cms", key, cert, bank_cert), "xmldsig": SigningMaterial("xmldsig", key, cert, bank_cert)}


@pytest.fixture(scope="module")
def vault():
    return PiiVault.from_text(PiiVault.new_key_line("k1"))


def small_limits(cfg, bank_id, n):
    bank = dataclasses.replace(cfg.banks[bank_id], limits=dataclasses.replace(cfg.banks[bank_id].limits, max_items_per_file=n))
    return dataclasses.replace(cfg, banks={**cfg.banks, bank_id: bank})


def all_valid(candidates, **kw):
    for c in candidates:
        yield c, []


def submit(engine, cfg, vault, body, policy="GDDL"):
    with Session(engine) as s, s.begin():
        return submit_roster(s, cfg, vault, data=csv_bytes(body), source_name="r.csv", policy_code=policy,
                             period="2026-11", submitted_by="clerk", now=NOW, validator=all_valid)


def test_flat_file_bank_split_render_sign_deliver(engine, vault, keys, tmp_path):
    cfg = small_limits(load("config"), "cqrcb-fj", 3)
    r = submit(engine, cfg, vault, rows(7))
    with Session(engine) as s, s.begin():
        planned = plan_files(s, cfg, now=NOW, calendar=CAL)
    assert [p.item_count for p in planned] == [3, 3, 1]
    assert sum(p.total_fen for p in planned) == r.total_fen
    with Session(engine) as s, s.begin():
        assert plan_files(s, cfg, now=NOW, calendar=CAL) == []  # nothing is planned twice
        files = render_planned(s, cfg, vault, tmp_path, signing_for=lambda bank: keys["cms"])
        paths = [(f.path, f.signature_path, f.name) for f in files]
        assert {f.state for f in files} == {"ready"} and len({f.sha256 for f in files}) == 3
    layout = cfg.layouts["rcb_pipe"]
    first = open(paths[0][0], "rb").read()
    contents = read_flat(first, layout.instruction, source=paths[0][2])
    assert [t.creditor_name for t in contents.records] == [b[0] for b in rows(3)]
    assert b"\r\n" in first and "张伟".encode("gbk") in first  # GBK, CRLF
    verify_detached([first], open(paths[0][1], "rb").read(), keys["cms"].cert, source=paths[0][2])

    with Session(engine) as s, s.begin():
        claimed = claim_due(s, now=NOW)
    assert len(claimed) == 3 and all(c.attempt == 1 for c in claimed)
    with Session(engine) as s, s.begin():
        assert claim_due(s, now=NOW) == []  # leased
        assert mark_delivered(s, claimed[0].file_id, now=NOW)
        assert not mark_delivered(s, claimed[0].file_id, now=NOW)  # recorded once
    with Session(engine) as s:
        sent = s.scalar(sa.select(sa.func.count()).select_from(ItemEvent).where(ItemEvent.state == "sent"))
        assert sent == 3


def test_planning_streams_the_dispatchable_items_and_files_each_once(engine, vault, monkeypatch):
    """The dispatchable items are read a few rows at a time while their file links are written
    (a server-side cursor on PostgreSQL); every item still lands in exactly one file, in roster order."""
    import gateway.dispatch.plan as plan

    monkeypatch.setattr(plan, "FETCH", 4)  # 23 items: six fetches, links written between them
    cfg = small_limits(load("config"), "cqrcb-fj", 5)
    r = submit(engine, cfg, vault, rows(23))
    with Session(engine) as s, s.begin():
        planned = plan_files(s, cfg, now=NOW, calendar=CAL)
    assert [p.item_count for p in planned] == [5, 5, 5, 5, 3]
    with Session(engine) as s:
        links = s.execute(sa.select(OutboundFileItem.file_id, OutboundFileItem.seq_in_file, Item.seq)
                          .join(Item, Item.id == OutboundFileItem.item_id)
                          .order_by(OutboundFileItem.file_id, OutboundFileItem.seq_in_file)).all()
    assert [seq for _f, _s, seq in links] == list(range(2, 25))  # each item once, in roster order (row 1: header)
    assert sum(p.total_fen for p in planned) == r.total_fen


def test_pain001_bank_xsd_valid_and_signed(engine, vault, keys, tmp_path):
    cfg = load("config")
    submit(engine, cfg, vault, rows(4, bank="icbc-cq"))
    with Session(engine) as s, s.begin():
        plan_files(s, cfg, now=NOW, calendar=CAL)
        f = s.scalars(sa.select(OutboundFile)).one()
        render_file(s, cfg, vault, f, tmp_path, signing=keys["xmldsig"])
        path = f.path
    data = open(path, "rb").read()
    schema_for("pain.001.001.09").assertValid(etree.fromstring(data))
    verify_document(data, keys["xmldsig"].cert, source=path)
    doc = read_pain001(data, source=path)
    assert doc.header.number_of_transactions == 4 and doc.header.requested_execution_date == dt.date(2026, 11, 2)
    assert doc.transactions[0].remittance == "耕地地力保护补贴 2026-11"


@pytest.mark.parametrize("attack", ["moved", "forged"])
def test_item_whose_account_was_replaced_is_held_out_not_paid(engine, keys, tmp_path, attack):
    """Art. 15 (bug found by an audit): through the PII re-encryption window, item A's account
    ciphertext is replaced by B's account, either by copying B's ciphertext under the new key
    ("moved": it no longer decrypts in A's cell) or by someone holding the key ("forged": it decrypts
    but does not match A's account_hash). A is held out of the payment file, never paid, and the
    problem is queued, audited and logged naming the item; nothing plans A again."""
    k1, k2 = PiiVault.new_key_line("k1"), PiiVault.new_key_line("k2")
    old, new = PiiVault.from_text(k1), PiiVault.from_text(k1 + "\n" + k2)
    cfg = load("config")
    body = rows(4)
    r = submit(engine, cfg, old, body)
    with engine.begin() as c:
        (a_id, a_e2e, a_fen), (_b, b_e2e, _f) = c.execute(
            sa.select(Item.id, Item.end_to_end_id, Item.amount_fen).order_by(Item.id).limit(2)).all()
        cell = ("items", "account_enc", b_e2e if attack == "moved" else a_e2e)
        c.execute(sa.text("INSERT INTO pii_rekey_window (opened_by, to_key_id) VALUES ('intruder', 'k2')"))
        c.execute(sa.update(Item).where(Item.id == a_id).values(account_enc=new.encrypt(body[1][2], *cell)))
        c.execute(sa.text("DELETE FROM pii_rekey_window"))
    with Session(engine) as s, s.begin():
        plan_files(s, cfg, now=NOW, calendar=CAL)
        f = render_planned(s, cfg, new, tmp_path, signing_for=lambda bank: keys["cms"], now=NOW)[0]
        assert (f.state, f.item_count, f.total_fen) == ("ready", 3, r.total_fen - a_fen)
        assert s.scalars(sa.select(OutboundFileItem.seq_in_file).where(OutboundFileItem.file_id == f.id)
                         .order_by(OutboundFileItem.seq_in_file)).all() == [1, 2, 3]
        path, name = f.path, f.name
        exc = s.scalars(sa.select(ReconException).where(ReconException.kind == HELD_KIND)).one()
        assert exc.reference == a_e2e and f"item {a_id} ({a_e2e}) held out, not paid" in exc.detail
        assert "account" in exc.detail and body[1][2] not in exc.detail
        held = [e for e in audit.entries(s) if e.action == "item.held"]
        assert [e.subject for e in held] == [f"item:{a_id}"]
    records = read_flat(open(path, "rb").read(), cfg.layouts["rcb_pipe"].instruction, source=name).records
    assert [t.creditor_name for t in records] == [b[0] for b in body[1:]]
    assert [t.creditor_account for t in records].count(body[1][2]) == 1  # B's account is paid once: to B
    with Session(engine) as s, s.begin():
        assert plan_files(s, cfg, now=NOW, calendar=CAL) == []  # A is never planned again


def test_requested_execution_date_respects_cutoff_and_calendar():
    bank = load("config").banks["cqrcb-fj"]  # cut-off 15:30
    assert requested_execution_date(bank, dt.datetime(2026, 9, 30, 7, 0), CAL) == dt.date(2026, 9, 30)
    assert requested_execution_date(bank, dt.datetime(2026, 9, 30, 8, 0), CAL) == dt.date(2026, 10, 8)  # 16:00 local
    assert requested_execution_date(bank, dt.datetime(2026, 10, 10, 1, 0), CAL) == dt.date(2026, 10, 10)  # make-up Saturday


def test_failures_back_off_with_jitter_and_stop_when_not_retryable(engine, vault, keys, tmp_path):
    cfg = load("config")
    submit(engine, cfg, vault, rows(2))
    rng = random.Random(7)
    with Session(engine) as s, s.begin():
        plan_files(s, cfg, now=NOW, calendar=CAL)
        f = s.scalars(sa.select(OutboundFile)).one()
        render_file(s, cfg, vault, f, tmp_path, signing=keys["cms"])
    with Session(engine) as s, s.begin():
        c = claim_due(s, now=NOW)[0]
        due = mark_failed(s, c.file_id, now=NOW, error="connection refused", retryable=True, rng=rng)
    assert dt.timedelta(seconds=15) <= due - NOW <= dt.timedelta(seconds=30)
    with Session(engine) as s, s.begin():
        c = claim_due(s, now=due)[0]
        assert c.attempt == 2
        assert mark_failed(s, c.file_id, now=due, error="host key mismatch", retryable=False, rng=rng) is None
    with Session(engine) as s:
        assert s.scalars(sa.select(OutboundFile.state)).one() == "failed"
        assert claim_due(s, now=due + dt.timedelta(days=1)) == []
    assert backoff(20, random.Random(1)) <= dt.timedelta(hours=1)
