"""Benchmark: a simulated bank turns a big signed pain.001 into its reports.

For each size: one subprocess writes and signs the file (psbc-xs: CMS, pain.002 + camt.053), a
fresh subprocess has the bank process it (verify, read with XSD validation, decide, credit, render
and sign both reports) and reports its wall time and peak RSS. Memory must stay flat as the file
grows; 100,000 payments must take at most 10 s (wall; the CPU time of the processing is
reported beside it, since a loaded machine stretches the wall time).

    python bench/bench_simulator.py          # 10k, 100k
    python bench/bench_simulator.py --full   # and 1M

Writes bench/results/simulator.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BANK = "psbc-xs"


def make_file(n: int, work: Path) -> None:
    from gateway.config import load
    from simulators.testing import DEFAULT_CONFIG, payments, payments_total, shared_keys, write_instruction

    config = load(DEFAULT_CONFIG)
    keys = shared_keys(DEFAULT_CONFIG, work / "keys")
    f = write_instruction(config.banks[BANK], work / "in", payments(n), msg_id=f"YKTBENCH{n:09d}",
                          key=keys.gateway_sign_key, cert=keys.gateway_sign_cert, count=n, total=payments_total(n))
    (work / "in" / f.signature_name).write_bytes(f.signature)
    (work / "name").write_text(f.name)


def process(work: Path) -> dict:
    import resource
    import shutil

    from twisted.internet import task

    from formats.reasons import ReasonTable
    from gateway.calendar import WorkingDayCalendar
    from gateway.config import load
    from simulators.bank import BankCore
    from simulators.clock import epoch
    from simulators.scenario import Scenario
    from simulators.testing import DEFAULT_CONFIG, DEFAULT_START, shared_keys

    config = load(DEFAULT_CONFIG)
    keys = shared_keys(DEFAULT_CONFIG, work / "keys")
    clock = task.Clock()
    clock.advance(epoch(DEFAULT_START))
    scenario = Scenario.from_mapping({"book": {"unknown": "accept"},
                                      "rule": [{"chance": 0.02, "outcome": "reject", "reason": "BE01"}]},
                                     source="bench")
    reasons = config.reason_codes if isinstance(config.reason_codes, ReasonTable) else \
        ReasonTable.from_mapping(config.reason_codes, source="reasons")
    core = BankCore(config.banks[BANK], root=work / "bank", keys=keys.bank(BANK), scenario=scenario, clock=clock,
                    calendar=WorkingDayCalendar.from_dir(config.directory / "calendar"), reasons=reasons,
                    layouts=config.layouts, seed=1)
    name = (work / "name").read_text()
    staged = work / "bank" / "inbox" / f".{name}.part"
    shutil.copyfile(work / "in" / name, staged)
    sig = (work / "in" / (name + ".p7s")).read_bytes()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    c0, t0 = time.process_time(), time.perf_counter()
    intake = core.receive(name, staged, sig)
    released = core.release_due()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert intake.receipt.status == "accepted", intake.receipt
    size = sum((core.outbox / r).stat().st_size for r in released)
    return {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_before_mb": round(rss_before / 1024, 1), "reports": len(released), "report_bytes": size,
            "credited": core.ledger.credited_count, "input_bytes": (work / "in" / name).stat().st_size}


def run_case(n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="ykt-bench-") as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, __file__, "--make", str(n), str(work)], check=True, cwd=ROOT)
        out = subprocess.run([sys.executable, __file__, "--process", str(work)], check=True, cwd=ROOT,
                             capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
    result["items"] = n
    result["items_per_second"] = int(n / result["seconds"]) if result["seconds"] else None
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="also 1,000,000 payments")
    ap.add_argument("--make", nargs=2, metavar=("N", "DIR"), help=argparse.SUPPRESS)
    ap.add_argument("--process", metavar="DIR", help=argparse.SUPPRESS)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    if a.make:
        make_file(int(a.make[0]), Path(a.make[1]))
        return
    if a.process:
        print(json.dumps(process(Path(a.process))))
        return
    sizes = [10_000, 100_000] + ([1_000_000] if a.full else [])
    results = [run_case(n) for n in sizes]
    by = {r["items"]: r for r in results}
    summary = {"bank": BANK, "cases": results,
               "target_100k_seconds": 10.0, "meets_100k_target": by[100_000]["seconds"] <= 10.0,
               "rss_growth_10k_to_100k_mb": round(by[100_000]["peak_rss_mb"] - by[10_000]["peak_rss_mb"], 1)}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "simulator.json").write_text(json.dumps(summary, indent=2))
    print(f"{'items':>10} {'input MB':>9} {'seconds':>8} {'CPU s':>7} {'items/s':>9} {'peak RSS MB':>12} {'reports':>8}")
    for r in results:
        print(f"{r['items']:>10,} {r['input_bytes'] / 1e6:>9.1f} {r['seconds']:>8.2f} {r['cpu_seconds']:>7.2f} "
              f"{r['items_per_second']:>9,} {r['peak_rss_mb']:>12.1f} {r['reports']:>8}")
    print(f"100k within 10 s: {summary['meets_100k_target']}; RSS growth 10k->100k: {summary['rss_growth_10k_to_100k_mb']} MB")


if __name__ == "__main__":
    main()
