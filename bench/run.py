"""``make bench``: run every benchmark in turn; each writes ``bench/results/<name>.json`` and prints a table.

    python bench/run.py            the standard sizes (10k and 100k; 1M where the target is stated for 1M)
    python bench/run.py --quick    small sizes only (a smoke test of the benchmark code)
    python bench/run.py --full     also the 1M cases everywhere

The machine (CPU, cores, memory, Python, SQLite/PostgreSQL versions) is recorded in
``bench/results/machine.json`` so that figures can be compared.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# arguments per benchmark and mode; the default mode measures every stated target at its stated size
BENCHES = {
    "bench_formats.py": {"quick": ["--sizes", "2000"], "default": ["--full"], "full": ["--full"]},
    "bench_simulator.py": {"quick": None, "default": [], "full": ["--full"]},
    "bench_rules.py": {"quick": ["--sizes", "2000"], "default": [], "full": []},
    "bench_recon.py": {"quick": ["--sizes", "2000"], "default": [], "full": []},
    "bench_e2e.py": {"quick": ["--sizes", "2000"], "default": ["--full"], "full": ["--full"]},
}


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cores": os.cpu_count()}
    try:
        cpu = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("model name"))
        mem = Path("/proc/meminfo").read_text().splitlines()[0]
        info["memory"] = mem.split(":", 1)[1].strip()
        info["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, StopIteration):
        pass
    import sqlite3

    info["sqlite"] = sqlite3.sqlite_version
    info["reference_workload_s"] = reference_workload()
    return info


def reference_workload() -> float:
    """Seconds this machine takes for a fixed piece of pure Python (10 million additions, 200,000
    SHA-256 digests): the same code has run 2.3 times slower on one 2-core VM than on another of
    the same name, so figures from different runs are compared through this."""
    import hashlib

    t = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    for _ in range(200_000):
        hashlib.sha256(b"x" * 64).digest()
    return round(time.perf_counter() - t, 2)


def main(argv: list[str]) -> int:
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "machine.json").write_text(json.dumps(machine(), indent=2))
    mode = "quick" if "--quick" in argv else "full" if "--full" in argv else "default"
    failed = []
    for name, modes in BENCHES.items():
        script = HERE / name
        extra = modes[mode]
        if not script.exists() or extra is None:
            continue
        print(f"\n=== {name} {' '.join(extra)}", flush=True)
        t = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script), *extra], cwd=HERE.parent)
        print(f"=== {name}: exit {rc} in {time.perf_counter() - t:.1f} s", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print("benchmarks that failed or missed a target: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
