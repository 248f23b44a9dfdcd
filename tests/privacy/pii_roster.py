"""Fixtures and builders of the personal-data tests (imported by the tests, no conftest): a vault
with a known key line, and a database holding a realistic roster: registered beneficiaries with accounts, and a submitted
batch validated by the real rule engine (so findings, evidence and events are written too)."""

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from gateway.admin import accounts
from gateway.config import load
from gateway.intake.submit import submit_roster
from gateway.privacy import PiiVault
from tests.support.rosters import csv_bytes, rows

NOW = dt.datetime(2026, 11, 2, 1, 30)


@dataclass
class Loaded:
    body: list  # roster rows: name, id, account, bank, amount, unit
    vault: PiiVault
    batch_id: int


def load_roster(engine, vault: PiiVault, n: int = 24, registered: int = 12) -> Loaded:
    cfg = load("config")
    body = rows(n, bank="cqrcb-fj")
    with Session(engine) as s, s.begin():
        for r in body[:registered]:
            accounts.register(s, vault, now=NOW, name=r[0], id_number=r[1], unit_code=r[5], account=r[2],
                              bank_id=r[3], bank_chosen_by_beneficiary=True, recorded_by="unit-clerk")
        res = submit_roster(s, cfg, vault, data=csv_bytes(body), source_name="roster.csv", policy_code="GDDL",
                            period="2026-11", submitted_by="fj-nync-clerk", now=NOW)
    return Loaded(body, vault, res.batch_id)


@pytest.fixture
def key_line():
    return PiiVault.new_key_line("k1")


@pytest.fixture
def vault(key_line):
    return PiiVault.from_text(key_line)
