"""Exactly once, even when the dispatcher is killed at random moments, and everything delivered after an outage
[Art. 18-20: data is sent to the bank once; the bank must never pay twice].

The simulated banks' own records are the witness: every file accepted once, no replay refused, every item
credited once."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.config import load
from gateway.db.models import ItemEvent, OutboundFile
from gateway.intake.submit import submit_roster
from gateway.privacy import PiiVault
from simulators.testing import start_bank
from tests.support.gateway import ROOT, start_harness
from tests.support.recon import make_pii_vault
from tests.support.rosters import csv_bytes, rows

ACCEPT_ALL = "[book]\nunknown = \"accept\"\n"


def valid(cands, **kw):
    for c in cands:
        yield c, []


def _submit(engine, cfg, vault, body, name):
    with Session(engine) as s, s.begin():
        return submit_roster(s, cfg, vault, data=csv_bytes(body), source_name=name, policy_code="GDDL",
                             period="2026-11", submitted_by="clerk", now=__import__("datetime").datetime(2026, 11, 2, 2),
                             validator=valid)


@pytest.mark.slow
def test_sigkill_at_random_moments_delivers_every_file_once(engine, db_url, tmp_path):
    key_line = PiiVault.new_key_line("k1")
    vault = PiiVault.from_text(key_line)
    scenario = tmp_path / "accept.toml"
    scenario.write_text(ACCEPT_ALL)
    keys = tmp_path / "keys"
    banks = {b: start_bank(b, scenario=scenario, keys_dir=keys) for b in ("cqrcb-fj", "icbc-cq")}
    try:
        cfg = load(ROOT / "config")
        _submit(engine, cfg, vault, rows(120, bank="cqrcb-fj"), "a.csv")
        _submit(engine, cfg, vault, rows(120, bank="icbc-cq", amount="1200.00"), "b.csv")
        endpoints = {"cqrcb-fj": {"sftp_port": banks["cqrcb-fj"].sftp_port},
                     "icbc-cq": {"https_url": banks["icbc-cq"].https_url}}
        cmd = [sys.executable, "-m", "tests.support.dispatch_worker", "--db", db_url, "--keys", str(keys),
               "--var", str(tmp_path / "var"), "--endpoints", json.dumps(endpoints), "--max-items", "4"]
        env = {**os.environ, "YKT_PII_KEY": key_line, "PYTHONPATH": str(ROOT)}
        rng = random.Random(20261203)
        kills, finished = 0, False
        while not finished:
            p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if kills < 20:
                time.sleep(rng.uniform(0.3, 1.6))
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL)
                    p.wait()
                    kills += 1
                    continue
            rc = p.wait(timeout=120)
            assert rc == 0, p.stderr.read().decode()[-3000:]
            finished = True
        assert kills >= 20
        for b in banks.values():
            b.wait()
        with Session(engine) as s:
            files = s.scalars(sa.select(OutboundFile)).all()
            assert len(files) == 60 and {f.state for f in files} == {"delivered"}
            sent = s.execute(sa.select(ItemEvent.item_id, sa.func.count()).where(ItemEvent.state == "sent")
                             .group_by(ItemEvent.item_id)).all()
            assert len(sent) == 240 and all(n == 1 for _, n in sent)  # every item sent, once
        for bank_id, b in banks.items():
            accepted = [r for r in b.core.receipts.values() if r.status == "accepted"]
            ours = {f.name for f in files if f.bank_id == bank_id}
            assert sorted(r.name for r in accepted) == sorted(ours)  # each file accepted exactly once
            assert not any(r.status == "refused" for r in b.core.receipts.values())  # no replay, nothing refused
            assert b.core.ledger.credited_count == 120  # every item credited once
    finally:
        for b in banks.values():
            b.stop()


OUTAGE = ACCEPT_ALL + """
[[outage]]
transport = "all"
from = 2026-11-02T09:00:00
to = 2026-11-02T13:00:00
"""


def test_outage_then_everything_delivered_once(engine, tmp_path):
    """The banks refuse connections (SFTP) and answer 503 (HTTPS) for hours; the gateway backs off and retries,
    and once they are back every file is delivered, once."""
    scenario = tmp_path / "outage.toml"
    scenario.write_text(OUTAGE)
    h = start_harness(engine, make_pii_vault(), tmp_path, bank_ids=("cqrcb-fj", "icbc-cq"), scenario=scenario)
    try:
        _submit(engine, h.cfg, h.cycle.vault, rows(5, bank="cqrcb-fj"), "a.csv")
        _submit(engine, h.cfg, h.cycle.vault, rows(5, bank="icbc-cq"), "b.csv")
        attempts = 0
        for _ in range(40):  # bounded: at most 40 cycles, each after the earliest retry falls due
            report = h.run_cycle()
            attempts += len(report.failed)
            with Session(engine) as s:
                files = s.scalars(sa.select(OutboundFile)).all()
                if all(f.state == "delivered" for f in files):
                    break
                due = min(f.next_attempt_at for f in files if f.state == "ready")
            h.rt.call(lambda: h.clock.advance(max(1.0, (due - h.now()).total_seconds() + 1)))
        assert attempts >= 2  # both banks were really down at first
        with Session(engine) as s:
            files = s.scalars(sa.select(OutboundFile)).all()
            assert {f.state for f in files} == {"delivered"} and all(f.attempts >= 2 for f in files)
            assert all("unavailable" in (f.last_error or "").lower() or f.last_error is None for f in files)
        for b in h.banks.values():
            b.wait()
            assert sum(r.status == "accepted" for r in b.core.receipts.values()) == 1
            assert b.core.ledger.credited_count == 5
    finally:
        h.stop()
