"""Singleton jobs (the daily deadline check, the gateway cycle) run once even when several gateway processes share
one database: PostgreSQL advisory locks, an exclusive file lock for SQLite."""

import subprocess
import sys
import time

from tests.support.gateway import ROOT


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
