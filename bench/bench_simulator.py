"""Benchmark: a simulated bank turns a big signed pain.001 into its reports.

For each size: one subprocess writes and signs the file (psbc-xs: CMS, pain.002 + camt.053), a
fresh subprocess has the bank process it (verify, read with XSD validation, decide, credit, render
and sign both reports) and reports its wall time and peak RSS.

Targets (issue 4): 100,000 payments processed into their reports in at most 10 s (wall; the CPU
time of the processing is shown beside it, since a loaded machine stretches the wall time); memory
flat as the file grows: the peak RSS of the processing process grows by at most 32 MB from the
smallest size to the largest. The table shows each target met or MISSED, the JSON records them, and
a missed target exits 1.

    python bench/bench_simulator.py                     # 10k, 100k, 1M
    python bench/bench_simulator.py --sizes 2000,20000  # a smoke test (the 10 s target is not measured)

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
TARGET_ITEMS, TARGET_SECONDS = 100_000, 10.0
FLAT_MB = 32.0  # peak RSS growth allowed from the smallest size to the largest


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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--full", action="store_true", help=argparse.SUPPRESS)  # the default sizes already include 1M
    ap.add_argument("--make", nargs=2, metavar=("N", "DIR"), help=argparse.SUPPRESS)
    ap.add_argument("--process", metavar="DIR", help=argparse.SUPPRESS)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    if a.make:
        make_file(int(a.make[0]), Path(a.make[1]))
        return 0
    if a.process:
        print(json.dumps(process(Path(a.process))))
        return 0
    from bench.targets import at_most, finish, grows_at_most

    results = [run_case(n) for n in sorted(int(x) for x in a.sizes.split(","))]
    print(f"{'items':>10} {'input MB':>9} {'seconds':>8} {'CPU s':>7} {'items/s':>9} {'peak RSS MB':>12} {'reports':>8}")
    for r in results:
        print(f"{r['items']:>10,} {r['input_bytes'] / 1e6:>9.1f} {r['seconds']:>8.2f} {r['cpu_seconds']:>7.2f} "
              f"{r['items_per_second']:>9,} {r['peak_rss_mb']:>12.1f} {r['reports']:>8}")
    by = {r["items"]: r for r in results}
    targets = [
        at_most(f"{TARGET_ITEMS:,}-item file into its reports", by.get(TARGET_ITEMS, {}).get("seconds"),
                TARGET_SECONDS, "s"),
        grows_at_most("peak RSS growth, items", results, "items", "peak_rss_mb", FLAT_MB),
    ]
    return finish("simulator", targets, {"bank": BANK, "cases": results}, HERE / "results" / "simulator.json")


if __name__ == "__main__":
    sys.exit(main())
