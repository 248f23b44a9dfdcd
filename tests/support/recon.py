"""A batch that has been submitted, filed, rendered and delivered, ready for bank reports.

The builders live in ``tests.support.recon`` (importable from any test directory); this conftest
provides the session fixtures and re-exports the builders for older imports."""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formats.signature.keys import make_leaf, make_test_ca
from gateway.calendar import DEFAULT_CALENDAR_DIR, WorkingDayCalendar
from gateway.config import load
from gateway.db.models import Item, OutboundFile
from gateway.dispatch.outbox import claim_due, mark_delivered
from gateway.dispatch.plan import plan_files
from gateway.dispatch.render import render_planned
from gateway.intake.submit import submit_roster
from gateway.keys import SigningMaterial
from gateway.privacy import PiiVault
from tests.support.rosters import csv_bytes, rows

NOW = dt.datetime(2026, 11, 2, 1, 30)
CAL = WorkingDayCalendar.from_dir(DEFAULT_CALENDAR_DIR)


@dataclass
class Delivered:
    batch_id: int
    msg_id: str
    items: list  # (item_id, end_to_end_id, amount_fen, account)
    cfg: object
    vault: PiiVault
    keys: dict


def make_signing_keys():
    ca_key, ca_cert = make_test_ca("YKT test CA")
    gw_key, gw_cert = make_leaf(ca_key, ca_cert, "gateway signing")
    bank_key, bank_cert = make_leaf(ca_key, ca_cert, "bank signing")
    return {"gateway": (gw_key, gw_cert), "bank": (bank_key, bank_cert)}


def make_pii_vault():
    return PiiVault.from_text(PiiVault.new_key_line("k1"))


def deliver_batch(engine, *, n: int, bank: str = "icbc-cq", vault: PiiVault, keys: dict, tmp_path: Path,
                  deliver: bool = True, policy: str = "GDDL") -> Delivered:
    cfg = load("config")
    body = rows(n, bank=bank)
    gw_key, gw_cert = keys["gateway"]
    signing = SigningMaterial(cfg.banks[bank].signature, gw_key, gw_cert, keys["bank"][1])

    def valid(cands, **kw):
        for c in cands:
            yield c, []

    with Session(engine) as s, s.begin():
        r = submit_roster(s, cfg, vault, data=csv_bytes(body), source_name="r.csv", policy_code=policy,
                          period="2026-11", submitted_by="clerk", now=NOW, validator=valid)
        plan_files(s, cfg, now=NOW, calendar=CAL)
        render_planned(s, cfg, vault, tmp_path / "outbox", signing_for=lambda b: signing)
    with Session(engine) as s, s.begin():
        claimed = claim_due(s, now=NOW)
        if deliver:
            for c in claimed:
                mark_delivered(s, c.file_id, now=NOW)
    with Session(engine) as s:
        items = [(i.id, i.end_to_end_id, i.amount_fen, vault.read(i, "account_enc"))
                 for i in s.scalars(sa.select(Item).where(Item.batch_id == r.batch_id).order_by(Item.seq))]
        msg_id = s.scalars(sa.select(OutboundFile.msg_id).where(OutboundFile.batch_id == r.batch_id)).first()
    return Delivered(r.batch_id, msg_id, items, cfg, vault, keys)
