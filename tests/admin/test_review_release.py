"""Review findings hold an item; a person's decisions release it [Art. 18]: all cleared -> validated (paid),
any confirmed -> rejected_by_validation (back to the department). Every decision is in the audit trail."""

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.admin.findings import decide
from gateway.config import load
from gateway.db.models import Finding
from gateway.intake.submit import submit_roster
from gateway.validation.model import REVIEW, Finding as F
from reconciliation.apply import latest_states
from tests.support.recon import make_pii_vault
from tests.support.rosters import csv_bytes, rows

NOW = dt.datetime(2026, 11, 2, 2)


def two_reviews(cands, **kw):
    for c in cands:
        yield c, [F(c.seq, "CARD_LUHN", REVIEW, "卡号校验", "card check"),
                  F(c.seq, "ACCOUNT_NOT_VERIFIED", REVIEW, "未能联网验证", "could not verify")]


@pytest.mark.parametrize("decisions, final", [(("cleared", "cleared"), "validated"),
                                              (("cleared", "confirmed"), "rejected_by_validation")])
def test_decisions_release_the_item(engine, decisions, final):
    vault = make_pii_vault()
    with Session(engine) as s, s.begin():
        submit_roster(s, load("config"), vault, data=csv_bytes(rows(1)), source_name="r.csv", policy_code="GDDL",
                      period="2026-11", submitted_by="clerk", now=NOW, validator=two_reviews)
    with Session(engine) as s, s.begin():
        findings = s.scalars(sa.select(Finding).order_by(Finding.id)).all()
        item = findings[0].item_id
        assert latest_states(s, [item])[item] == "submitted"  # held
        decide(s, finding_id=findings[0].id, decision=decisions[0], by="reviewer-a", now=NOW, note="checked the card")
        assert latest_states(s, [item])[item] == "submitted"  # one decision still missing
        decide(s, finding_id=findings[1].id, decision=decisions[1], by="reviewer-a", now=NOW, note="called the bank")
        assert latest_states(s, [item])[item] == final
        actions = s.execute(sa.text("SELECT action FROM audit_log ORDER BY seq")).scalars().all()
        assert actions.count(f"finding.{decisions[1]}") >= 1 and "finding.cleared" in actions
