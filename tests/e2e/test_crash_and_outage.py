"""Exactly once, even when the dispatcher is killed at random moments, and everything delivered after an outage
[Art. 18-20: data is sent to the bank once; the bank must never pay twice].

The simulated banks' own records are the witness: their upload logs (every completed upload, repeats included)
and their ledgers (every payment credited)."""

import collections
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from formats.money import from_fen
from gateway.config import load
from gateway.db.models import Item, ItemEvent, OutboundFile, OutboundFileItem
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
                             period="2026-11", submitted_by="clerk", now=dt.datetime(2026, 11, 2, 2),
                             validator=valid)


@dataclass(frozen=True)
class Kill:
    """Where one SIGKILL landed. ``uploads``: uploads the banks completed during this run before the kill."""

    run: int
    trigger: str  # "startup": a random moment; "outbox": an outbox row changed; "upload": a bank took a file
    after: float  # seconds since the process started
    uploads: int
    delivered: int  # files marked delivered in the outbox (all runs) at the kill
    mid_delivery: bool  # at least one upload in this run, and the run not complete

    def __str__(self) -> str:
        where = "mid-delivery" if self.mid_delivery else "before any upload"
        return (f"run {self.run:2d}: {self.trigger:7s} +{self.after:5.2f}s  uploads this run {self.uploads:2d}  "
                f"delivered {self.delivered:3d}  {where}")


KILLS = 24  # the dispatcher is killed this many times before it may finish
PER_BANK = 240  # items per bank: enough work that a fast machine still takes KILLS kills before it is done
FILES = 2 * PER_BANK // 4  # 4 items a file


def _outbox(engine) -> tuple:
    """(files planned or more, files ready, files delivered): any change is progress of the dispatcher."""
    st = OutboundFile.state
    with engine.connect() as c:
        n, ready, done = c.execute(sa.select(sa.func.count(), sa.func.count().filter(st == "ready"),
                                             sa.func.count().filter(st == "delivered"))).one()
    return n, ready, done


def _kill_when(p, rng, banks, engine, run: int, started: float) -> Kill | None:
    """Kill ``p`` at a moment chosen adaptively (after a random bit of observed progress, plus jitter), or
    ``None`` if it finished first. A quarter of the kills land at a random moment of startup instead."""
    uploads0 = sum(len(b.core.uploads) for b in banks.values())
    uploads = lambda: sum(len(b.core.uploads) for b in banks.values()) - uploads0
    trigger = rng.choice(("startup", "outbox", "upload", "upload"))
    if trigger == "startup":  # a random moment before the first upload, however fast this machine is
        deadline = started + rng.uniform(0.2, 1.2)
        moved = lambda: time.monotonic() >= deadline or uploads() >= 1
    elif trigger == "outbox":
        before = _outbox(engine)
        moved = lambda: _outbox(engine) != before
    else:
        need = rng.randint(1, 3)
        moved = lambda: uploads() >= need
    while not moved():
        if p.poll() is not None:
            return None
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.03))  # jitter: the kill lands anywhere in the work that follows
    if p.poll() is not None:
        return None
    n, done = uploads(), _outbox(engine)[2]
    p.send_signal(signal.SIGKILL)
    p.wait()
    return Kill(run, trigger, time.monotonic() - started, n, done, n >= 1 and done < FILES)


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
        _submit(engine, cfg, vault, rows(PER_BANK, bank="cqrcb-fj"), "a.csv")
        _submit(engine, cfg, vault, rows(PER_BANK, bank="icbc-cq", amount="1200.00"), "b.csv")
        endpoints = {"cqrcb-fj": {"sftp_port": banks["cqrcb-fj"].sftp_port},
                     "icbc-cq": {"https_url": banks["icbc-cq"].https_url}}
        cmd = [sys.executable, "-m", "tests.support.dispatch_worker", "--db", db_url, "--keys", str(keys),
               "--var", str(tmp_path / "var"), "--endpoints", json.dumps(endpoints), "--max-items", "4"]
        env = {**os.environ, "YKT_PII_KEY": key_line, "PYTHONPATH": str(ROOT)}
        rng = random.Random(20261203)
        kills: list[Kill] = []
        for run in range(KILLS + 1):
            started = time.monotonic()
            p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            kill = _kill_when(p, rng, banks, engine, run, started) if run < KILLS else None
            if kill is not None:
                kills.append(kill)
                continue
            rc = p.wait(timeout=120)
            assert rc == 0, p.stderr.read().decode()[-3000:]
            break
        where = "\n".join(map(str, kills))
        print(f"\nwhere the {len(kills)} kills landed:\n{where}")
        assert len(kills) >= 20, f"the dispatcher finished after only {len(kills)} kills:\n{where}"
        assert sum(k.mid_delivery for k in kills) >= 5, f"too few kills landed mid-delivery:\n{where}"
        for b in banks.values():
            b.wait()
        with Session(engine) as s:
            files = s.scalars(sa.select(OutboundFile)).all()
            assert len(files) == FILES and {f.state for f in files} == {"delivered"}
            sent = s.execute(sa.select(ItemEvent.item_id, sa.func.count()).where(ItemEvent.state == "sent")
                             .group_by(ItemEvent.item_id)).all()
            assert len(sent) == 2 * PER_BANK and all(n == 1 for _, n in sent)  # every item sent, once
            carried = s.execute(sa.select(OutboundFile.bank_id, OutboundFile.msg_id, OutboundFileItem.seq_in_file,
                                          Item.end_to_end_id, Item.amount_fen)
                                .join(OutboundFileItem, OutboundFileItem.file_id == OutboundFile.id)
                                .join(Item, Item.id == OutboundFileItem.item_id)).all()
        reuploads = 0
        for bank_id, b in banks.items():
            # every planned file arrived; exactly one upload of it was accepted, and it was the first; any later
            # upload carried the same bytes and was a no-op ("repeat", docs/BANK_PROTOCOL.md); nothing refused
            ours = {f.name: f.sha256 for f in files if f.bank_id == bank_id}
            log = collections.defaultdict(list)
            for u in b.core.uploads:
                log[u.name].append(u)
            assert set(log) == set(ours), f"{bank_id}: files the bank saw != files planned"
            for name, entries in log.items():
                assert [u.outcome for u in entries] == ["accepted"] + ["repeat"] * (len(entries) - 1), (name, entries)
                assert {u.sha256 for u in entries} == {ours[name]}, (name, entries)
            assert all(r.status == "accepted" for r in b.core.receipts.values())
            reuploads += sum(len(v) - 1 for v in log.values())
            # every item this bank was sent is credited once, for its amount; nothing else is credited. The bank
            # knows a payment by its EndToEndId (ISO 20022) or by its sequence in the file (flat files)
            flat = b.core.flat_in is not None
            item_of = {(m, str(seq) if flat else e2e): (e2e, from_fen(fen)) for bank, m, seq, e2e, fen in carried
                       if bank == bank_id}
            credits = list(b.core.credits())
            assert {c.kind for c in credits} == {"credit"}
            credited = collections.Counter(item_of.get((c.msg_id, c.end_to_end_id), (c, "not sent")) for c in credits)
            assert not {k: n for k, n in credited.items() if n > 1}, f"{bank_id}: credited more than once"
            assert set(credited) == set(item_of.values()) and len(credited) == PER_BANK
        print(f"re-uploads of identical bytes, taken by the banks as no-ops: {reuploads}")
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
            assert [u.outcome for u in b.core.uploads if u.outcome != "repeat"] == ["accepted"]
            assert b.core.ledger.credited_count == 5
    finally:
        h.stop()
