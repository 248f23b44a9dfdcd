"""Benchmark: reconcile 10k, 100k and 1,000,000 bank status lines with ``apply_outcomes`` on SQLite.

    .venv/bin/python bench/bench_recon.py [--sizes 10000,100000,1000000] [--out bench/results/recon.json]

Each size runs in two processes of its own: one sets up, the next reconciles, so the peak RSS is
that of the reconciliation alone. Setup (not timed): a fresh migrated SQLite database holding one batch of N sent items (submitted -> validated -> sent, in one
delivered file per 20,000 items; personal data is a fixed ciphertext, it is not read by matching).
The lifecycle guard trigger (migration 0005) is dropped for the bulk setup only and put back
before the timed part. Timed: ``apply_outcomes`` over N ``settled`` lines with amounts, generated
on the fly (never held in a list), matched by EndToEndId, in one transaction, then commit.
Targets (issue 7): 1,000,000 lines in at most 60 s; memory flat: the peak anonymous memory of the
reconciling process (heap; sampled, ``bench.targets.Peak``) grows by at most 32 MB from the
smallest size to the largest (10k to 1M by default). The whole peak RSS is shown too, but it also
counts the database pages SQLite reads through its mmap window (``PRAGMA mmap_size``, 256 MB), page
cache that grows with the file (10k: 89 MB, 100k: 168 MB, of which 62 MB anonymous). The
table shows each target met or MISSED, the JSON records them, and a missed target exits 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_SECONDS = 60.0  # at TARGET_LINES
TARGET_LINES = 1_000_000
FLAT_MB = 32.0  # peak RSS growth allowed from the smallest size to the largest
NOW = dt.datetime(2026, 11, 2, 1, 30)
PER_FILE = 20_000
AMOUNT_FEN = 150000


def setup(url: str, n: int) -> int:
    import sqlalchemy as sa

    from gateway.db import make_engine, upgrade
    from gateway.db.models import Batch, Item, ItemEvent, OutboundFile, OutboundFileItem
    from gateway.intake.submit import end_to_end_id

    upgrade(url)
    engine = make_engine(url)
    guard = None
    with engine.begin() as c:
        guard = c.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'item_events_lifecycle'")).scalar()
        if guard:
            c.execute(sa.text("DROP TRIGGER item_events_lifecycle"))
        batch_id = c.execute(sa.insert(Batch).returning(Batch.id), [dict(
            ref="BENCH-2026-11", policy_code="GDDL", period="2026-11", county_code="500236", department_code="FJ-NYNC",
            submitted_by="bench", submitted_at=NOW, source_name="bench.csv", content_sha256="0" * 64, item_count=n,
            total_fen=n * AMOUNT_FEN)]).scalar_one()
        blob = b"\x01" + b"k1".ljust(8, b"\0") + b"\0" * 40
        step = 10_000
        for start in range(1, n + 1, step):
            seqs = range(start, min(n, start + step - 1) + 1)
            c.execute(sa.insert(Item), [dict(id=s, batch_id=batch_id, seq=s, end_to_end_id=end_to_end_id(batch_id, s),
                                             unit_code="500236101", bank_id="icbc-cq", amount_fen=AMOUNT_FEN,
                                             name_enc=blob, id_number_enc=blob, account_enc=blob, id_hash=f"{s:064d}",
                                             account_hash=f"{s:064d}") for s in seqs])
            for state, source in (("submitted", "intake"), ("validated", "validation")):
                c.execute(sa.insert(ItemEvent), [dict(item_id=s, state=state, at=NOW, source=source) for s in seqs])
        for f, start in enumerate(range(1, n + 1, PER_FILE), 1):
            seqs = range(start, min(n, start + PER_FILE - 1) + 1)
            fid = c.execute(sa.insert(OutboundFile).returning(OutboundFile.id), [dict(
                bank_id="icbc-cq", batch_id=batch_id, msg_id=f"YKT20261102{f:010d}", name=f"YKT20261102{f:010d}.xml",
                item_count=len(seqs), total_fen=len(seqs) * AMOUNT_FEN, created_at=NOW,
                requested_execution_date=NOW.date(), state="delivered", attempts=1, delivered_at=NOW)]).scalar_one()
            for s0 in range(0, len(seqs), step):
                part = seqs[s0:s0 + step]
                c.execute(sa.insert(OutboundFileItem), [dict(file_id=fid, seq_in_file=i + s0 + 1, item_id=s)
                                                        for i, s in enumerate(part)])
                c.execute(sa.insert(ItemEvent), [dict(item_id=s, state="sent", at=NOW, source="dispatch",
                                                      outbound_file_id=fid) for s in part])
        if guard:
            c.execute(sa.text(guard))
    engine.dispose()
    return batch_id


def run_case(n: int, url: str) -> dict:
    from sqlalchemy.orm import Session

    from gateway.db import make_engine
    from gateway.intake.submit import end_to_end_id
    from gateway.privacy import PiiVault
    from reconciliation.apply import apply_outcomes
    from reconciliation.outcomes import Outcome
    from reconciliation.proof import batch_proof

    from bench.targets import Peak

    batch_id = 1
    vault = PiiVault.from_text(PiiVault.new_key_line("k1"))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    amount = Decimal(AMOUNT_FEN) / 100

    def lines():
        for s in range(1, n + 1):
            yield Outcome(s, end_to_end_id(batch_id, s), "settled", amount=amount)

    engine = make_engine(url)
    t0 = time.perf_counter()
    with Peak() as anon, Session(engine) as session, session.begin():
        stats = apply_outcomes(session, lines(), now=NOW + dt.timedelta(days=1), vault=vault)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with Session(engine) as session:
        proof = batch_proof(session, batch_id)
    engine.dispose()
    assert stats.applied == n and stats.exceptions == 0, stats.as_dict()
    assert proof.balances and proof.settled.count == n
    return {"lines": n, "seconds": round(seconds, 2), "lines_per_second": int(n / seconds),
            "peak_rss_mb": round(peak / 1024, 1), "peak_anon_mb": anon.mb, "rss_before_apply_mb": round(rss_before / 1024, 1),
            "proof_balances": proof.balances}


def _child(*args: str) -> str:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{out.stderr}")
    return out.stdout.strip().splitlines()[-1]


def main() -> int:
    from bench.targets import at_most, finish, grows_at_most

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "recon.json"))
    p.add_argument("--setup", type=int, help=argparse.SUPPRESS)
    p.add_argument("--case", type=int, help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.setup:
        t0 = time.perf_counter()
        assert setup(a.db, a.setup) == 1
        print(json.dumps(time.perf_counter() - t0))
        return 0
    if a.case:
        print(json.dumps(run_case(a.case, a.db)))
        return 0
    results = []
    for n in sorted(int(x) for x in a.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            setup_s = json.loads(_child("--setup", str(n), "--db", url))
            results.append({**json.loads(_child("--case", str(n), "--db", url)), "setup_seconds": round(setup_s, 1)})
    print(f"{'lines':>10} {'seconds':>8} {'lines/s':>9} {'peak RSS MB':>12} {'of it anon':>11} {'setup s':>8}")
    for r in results:
        print(f"{r['lines']:>10,} {r['seconds']:>8} {r['lines_per_second']:>9,} {r['peak_rss_mb']:>12} "
              f"{r['peak_anon_mb']:>11} {r['setup_seconds']:>8}")
    by = {r["lines"]: r for r in results}
    targets = [
        at_most(f"{TARGET_LINES:,} status lines reconciled (SQLite)", by.get(TARGET_LINES, {}).get("seconds"),
                TARGET_SECONDS, "s"),
        grows_at_most("peak anon memory growth, lines", results, "lines", "peak_anon_mb", FLAT_MB),
    ]
    return finish("recon", targets, {"database": "sqlite", "results": results}, Path(a.out))


if __name__ == "__main__":
    sys.exit(main())
