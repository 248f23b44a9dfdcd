"""`ykt serve` as operators run it: started, healthy, stopped by SIGTERM in the middle of a dispatch without losing
or repeating anything; restarted, it finishes the work [Art. 18-20]."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.config import load
from gateway.db import upgrade
from gateway.db.models import ItemEvent, OutboundFile
from gateway.intake.submit import submit_roster
from gateway.privacy import PiiVault
from simulators.testing import start_bank
from tests.support.gateway import ROOT
from tests.support.rosters import csv_bytes, rows

BANK = "cqrcb-fj"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_for(tmp, bank, *, max_items: int):
    """A copy of config/ pointed at the running simulated bank and the test's keys."""
    d = tmp / "config"
    shutil.copytree(ROOT / "config", d)
    text = (d / "banks.toml").read_text(encoding="utf-8")
    text = text.replace('keys_dir = "../var/keys"', f'keys_dir = "{tmp / "keys"}"')
    text = text.replace("port = 2231", f"port = {bank.sftp_port}")
    text = re.sub(r"max_items_per_file = \d+", f"max_items_per_file = {max_items}", text)
    (d / "banks.toml").write_text(text, encoding="utf-8")
    return d


def serve(cfg_dir, db_url, var, port, env):
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "--config", str(cfg_dir), "--db", db_url, "serve",
                             "--port", str(port), "--interval", "1", "--var", str(var)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(pred, timeout=60.0, every=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(every)
    raise AssertionError("timed out waiting")


def health(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return json.loads(r.read())
    except OSError:
        return None


@pytest.mark.slow
def test_sigterm_mid_dispatch_loses_nothing(tmp_path, db_url, engine):
    scenario = tmp_path / "accept.toml"
    scenario.write_text('[book]\nunknown = "accept"\n')
    bank = start_bank(BANK, scenario=scenario, keys_dir=tmp_path / "keys")
    try:
        cfg_dir = config_for(tmp_path, bank, max_items=3)
        key_line = PiiVault.new_key_line("k1")
        (tmp_path / "keys" / "pii.keys").write_text(key_line + "\n")
        vault = PiiVault.from_text(key_line)
        cfg = load(cfg_dir)

        def valid(cands, **kw):
            for c in cands:
                yield c, []
        with Session(engine) as s, s.begin():
            submit_roster(s, cfg, vault, data=csv_bytes(rows(300, bank=BANK)), source_name="r.csv", policy_code="GDDL",
                          period="2026-11", submitted_by="clerk", now=__import__("datetime").datetime(2026, 11, 2, 2),
                          validator=valid)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        port = free_port()
        p = serve(cfg_dir, db_url, tmp_path / "var", port, env)
        assert wait_for(lambda: (health(port) or {}).get("status") == "ok"), "gateway did not come up"

        def delivered():
            with engine.connect() as c:
                return c.execute(sa.select(sa.func.count()).select_from(OutboundFile)
                                 .where(OutboundFile.state == "delivered")).scalar()
        wait_for(lambda: delivered() >= 5)
        p.send_signal(signal.SIGTERM)  # in the middle of the dispatch: 100 files, a handful delivered
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err[-2000:]
        assert '"event": "stopped"' in err
        first = delivered()
        assert 5 <= first < 100
        with Session(engine) as s:  # exactly the delivered files' items are 'sent', once
            sent = s.scalar(sa.select(sa.func.count(sa.distinct(ItemEvent.item_id))).where(ItemEvent.state == "sent"))
            assert sent == 3 * first
        # restarted, it finishes: every file delivered once, every item credited once by the bank
        p = serve(cfg_dir, db_url, tmp_path / "var", port, env)
        try:
            wait_for(lambda: delivered() == 100, timeout=120)
        finally:
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=60)
        bank.wait()
        assert sum(r.status == "accepted" for r in bank.core.receipts.values()) == 100
        assert not any(r.status == "refused" for r in bank.core.receipts.values())
        assert bank.core.ledger.credited_count == 300
    finally:
        bank.stop()
