"""Singleton jobs (the daily deadline check, the gateway cycle) run once even when several gateway processes share
one database: PostgreSQL advisory locks, an exclusive file lock for SQLite; the daily check also runs once per day,
not once per process that fires it [Art. 20-22]."""

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import time
from collections import Counter

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway import audit
from gateway.config import load
from gateway.db.models import Batch
from gateway.privacy import PiiVault
from gateway.service import jobs
from gateway.service.serve import GatewayService
from tests.compliance.compliance_support import KEY_LINE, china, dispatch, fund, submit
from tests.support.gateway import ROOT

FRIDAY = dt.date(2026, 11, 6)  # a working day; the next one is Monday 11-09


def test_two_processes_one_run(db_url, tmp_path):
    start_at = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, str(ROOT / "tests/service/lock_worker.py"), db_url, str(tmp_path),
                               str(start_at)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    assert sorted(o.strip() for o, _ in outs) == ["RAN", "SKIPPED"]


def test_lock_is_free_again_after_the_job(db_url, tmp_path):
    from gateway.db import make_engine
    from gateway.service.locks import singleton

    engine = make_engine(db_url)
    with singleton(engine, "x", lock_dir=tmp_path) as first:
        assert first
    with singleton(engine, "x", lock_dir=tmp_path) as again:
        assert again
    engine.dispose()


def batch_at_risk(engine, n=2):
    """A batch delivered and funded on Friday morning: its credit is due on Monday [Art. 20]."""
    cfg, vault = load("config"), PiiVault.from_text(KEY_LINE)
    b = submit(engine, cfg, vault, n=n, bank="icbc-cq", now=china(2026, 11, 6, 9))
    dispatch(engine, cfg, now=china(2026, 11, 6, 10))
    fund(engine, batch_id=b, at=china(2026, 11, 6, 10))
    with Session(engine) as s:
        return s.get(Batch, b).ref


def checks(engine) -> list[tuple[str, dict]]:
    with engine.connect() as c:
        return [(subject, json.loads(detail)) for subject, detail in c.execute(
            sa.select(audit.log_table.c.subject, audit.log_table.c.detail)
            .where(audit.log_table.c.action == "deadline.checked").order_by(audit.log_table.c.seq))]


def test_two_processes_check_deadlines_once_per_day(db_url, engine, tmp_path):
    """Art. 20-22: two gateway processes on one database both fire the daily check, each twice a day (the second
    time after the first run has finished): the check runs once per day, the warning is logged once."""
    ref = batch_at_risk(engine)
    days = [FRIDAY.isoformat(), (FRIDAY + dt.timedelta(days=1)).isoformat()]
    start_at = time.time() + 3.0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, str(ROOT / "tests/service/job_worker.py"), db_url, str(tmp_path),
                               str(start_at), *days], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-2000:] for _, e in outs]
    lines = [json.loads(line) for out, _ in outs for line in out.splitlines() if line.startswith("{")]
    ran = Counter(r["day"] for r in lines if r.get("event") == "deadline_check")
    assert ran == {f"deadline-check:{d}": 1 for d in days}
    assert sum(r.get("event") == "deadline_check_skipped" for r in lines) == 2 * 2 * len(days) - len(days)
    warned = [(r["bank"], r["batch"], r["due"]) for r in lines if r.get("event") == "deadline_at_risk"]
    assert warned == [("icbc-cq", ref, "2026-11-09")] * len(days)  # once a day, not once a process
    assert [subject for subject, _ in checks(engine)] == [f"deadline-check:{d}" for d in days]


def test_deadline_check_warns_a_working_day_before(db_url, engine, tmp_path, caplog):
    """Art. 20: credit is due one working day after data and funds arrive. Checked on the Friday evening, the credit
    due on Monday is one working day away (the weekend does not count): the check warns, naming bank and batch, and
    records the warning in the audit trail; the results [Art. 21], due later, are not warned about yet."""
    ref = batch_at_risk(engine, n=3)
    svc = GatewayService(reactor=None, cfg=load("config"), db_url=db_url, vault=PiiVault.from_text(KEY_LINE),
                         var_dir=tmp_path, transports={"none": None}, now=lambda: china(2026, 11, 6, 18))
    jobs.RUNNING["service"] = svc
    try:
        with caplog.at_level(logging.INFO, logger="ykt.jobs"):
            jobs.deadline_check_job()
    finally:
        jobs.RUNNING.pop("service", None)
        svc.engine.dispose()
    warned = [r for r in caplog.records if getattr(r, "event", None) == "deadline_at_risk"]
    assert [(r.kind, r.severity, r.bank, r.batch, r.due, r.items) for r in warned] == [
        ("credit", "at_risk", "icbc-cq", ref, "2026-11-09", 3)]
    assert ref in warned[0].detail and "icbc-cq" in warned[0].detail
    [(subject, detail)] = checks(engine)
    assert subject == "deadline-check:2026-11-06"
    assert [(w["kind"], w["bank_id"], w["batch_ref"], w["due"]) for w in detail["warnings"]] == [
        ("credit", "icbc-cq", ref, "2026-11-09")]
