"""Fixtures of the disclosure tests (imported by the tests, no conftest): a delivered batch whose
bank reported back — four payments settled, one rejected, one outstanding."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from gateway.privacy import PiiVault
from reconciliation.apply import apply_outcomes
from reconciliation.outcomes import Outcome
from tests.support.recon import NOW, deliver_batch, make_signing_keys
from tests.support.rosters import rows

SETTLED_AT = NOW + dt.timedelta(days=1)  # 2026-11-03 01:30 UTC = 09:30 in China


@pytest.fixture(scope="session")
def signing_keys():
    return make_signing_keys()


@pytest.fixture(scope="session")
def key_line():
    return PiiVault.new_key_line("k1")


@pytest.fixture(scope="session")
def pii_vault(key_line):
    return PiiVault.from_text(key_line)


@dataclass
class Paid:
    body: list  # roster rows, in item order
    items: list  # (item_id, e2e, amount_fen, account)
    settled: list  # indexes into body
    rejected: list
    outstanding: list
    vault: PiiVault
    cfg: object


@pytest.fixture
def paid(engine, pii_vault, signing_keys, tmp_path) -> Paid:
    d = deliver_batch(engine, n=6, vault=pii_vault, keys=signing_keys, tmp_path=tmp_path)
    body = rows(6, bank="icbc-cq")
    outcomes = [Outcome(i + 1, d.items[i][1], "settled", amount=Decimal(d.items[i][2]) / 100, account=d.items[i][3])
                for i in (0, 1, 2, 3)]
    outcomes.append(Outcome(5, d.items[4][1], "rejected_by_bank", reason_code="AC04", reason_text="账户已销户"))
    with Session(engine) as s, s.begin():
        apply_outcomes(s, outcomes, now=SETTLED_AT, vault=pii_vault)
    return Paid(body, d.items, [0, 1, 2, 3], [4], [5], pii_vault, d.cfg)
