"""The main job over real sockets: rosters -> validated items -> signed files -> SFTP/HTTPS to three simulated
banks -> their reports fetched, verified and applied -> every batch balances [Art. 18-22]."""

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.db.models import Batch, InboundFile, OutboundFile
from gateway.intake.submit import submit_roster
from reconciliation.proof import batch_proof
from tests.support.gateway import start_harness
from tests.support.recon import make_pii_vault
from tests.support.rosters import csv_bytes, rows

SCENARIO = """
[book]
unknown = "accept"
[reports]
release_time = 09:00:00
[[rule]]
label = "closed account"
sequence = 3
outcome = "reject"
reason = "AC04"
[[rule]]
label = "cross-bank return"
sequence = 5
outcome = "return"
days = 1
reason = "AC04"
"""


def valid(cands, **kw):
    for c in cands:
        yield c, []


@pytest.fixture
def harness(engine, tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    h = start_harness(engine, make_pii_vault(), tmp_path, scenario=scenario)
    yield h
    h.stop()


def test_three_banks_end_to_end(engine, harness):
    vault = harness.cycle.vault
    rosters = [("GDDL", rows(6, bank="cqrcb-fj")), ("GDDL", rows(6, bank="icbc-cq", unit="500236102")),
               ("TK", rows(6, bank="psbc-xs", unit="500241101", amount="900.00"))]
    with Session(engine) as s, s.begin():
        for policy, body in rosters:
            if policy == "TK":
                body = [[r[0], r[1].replace("500236", "500241", 1)[:17], *r[2:]] for r in body]
                from gateway.identity import with_check_digit
                body = [[r[0], with_check_digit(r[1]), *r[2:]] for r in body]
            submit_roster(s, harness.cfg, vault, data=csv_bytes(body), source_name=f"{policy}.csv", policy_code=policy,
                          period="2026-11", submitted_by="clerk", now=harness.now(), validator=valid)
    first = harness.run_cycle()
    assert len(first.delivered) == 3 and not first.failed, first
    for b in harness.banks.values():
        b.wait()
    harness.run_cycle()           # same-day reports (pain.002 acceptance, flat results)
    harness.next_working_day()    # credits, notifications
    harness.run_cycle()
    harness.next_working_day()    # the return one working day later
    harness.run_cycle()
    with Session(engine) as s:
        files = s.scalars(sa.select(OutboundFile)).all()
        assert {f.state for f in files} == {"delivered"}
        inbound = s.scalars(sa.select(InboundFile)).all()
        assert inbound and all(f.status == "applied" for f in inbound), [(f.name, f.status, f.error) for f in inbound]
        for batch in s.scalars(sa.select(Batch)):
            p = batch_proof(s, batch.id)
            assert p.balances, p.as_dict()
            assert p.sent.count == 6
            assert p.rejected.count == 1, (batch.ref, p.as_dict())   # sequence 3: closed account
            assert p.returned.count == 1, (batch.ref, p.as_dict())   # sequence 5: returned a day later
            assert p.settled.count == 4 and p.outstanding.count == 0, (batch.ref, p.as_dict())
