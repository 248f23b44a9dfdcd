"""A batch that has been submitted, filed, rendered and delivered, ready for bank reports."""

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent.parent / "intake"))

from formats.signature.keys import make_leaf, make_test_ca  # noqa: E402
from gateway.calendar import DEFAULT_CALENDAR_DIR, WorkingDayCalendar  # noqa: E402
from gateway.config import load  # noqa: E402
from gateway.db.models import Item, OutboundFile  # noqa: E402
from gateway.dispatch.outbox import claim_due, mark_delivered  # noqa: E402
from gateway.dispatch.plan import plan_files  # noqa: E402
from gateway.dispatch.render import render_planned  # noqa: E402
from gateway.intake.submit import submit_roster  # noqa: E402
from gateway.keys import SigningMaterial  # noqa: E402
from gateway.privacy import PiiVault  # noqa: E402
from rosters import csv_bytes, rows  # noqa: E402

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


@pytest.fixture(scope="session")
def signing_keys():
    ca_key, ca_cert = make_test_ca("YKT test CA")
    gw_key, gw_cert = make_leaf(ca_key, ca_cert, "gateway signing")
    bank_key, bank_cert = make_leaf(ca_key, ca_cert, "bank signing")
    return {"gateway": (gw_key, gw_cert), "bank": (bank_key, bank_cert)}


@pytest.fixture(scope="session")
def pii_vault():
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
        items = [(i.id, i.end_to_end_id, i.amount_fen, vault.decrypt(i.account_enc))
                 for i in s.scalars(sa.select(Item).where(Item.batch_id == r.batch_id).order_by(Item.seq))]
        msg_id = s.scalars(sa.select(OutboundFile.msg_id).where(OutboundFile.batch_id == r.batch_id)).first()
    return Delivered(r.batch_id, msg_id, items, cfg, vault, keys)
