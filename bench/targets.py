"""The stated targets of a benchmark: each compares one measured value with its limit, is printed in a
table with a met / MISSED column and written to the benchmark's JSON; a missed target makes the
benchmark exit non-zero (so ``make bench`` fails).

A target stated for a size that was not run (e.g. ``--sizes 2000``, a smoke test) is "not
measured": it neither passes nor fails, and the JSON's ``all_measured`` says so.

>>> t = at_most("1M lines reconciled", 42.0, 60, "s")
>>> t.met, t.goal
(True, '<= 60 s')
>>> at_least("parse rate", None, 50_000, "entries/s").met is None
True
"""

from __future__ import annotations

import json
import operator
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

_OPS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq}


@dataclass(frozen=True)
class Target:
    what: str
    op: str  # "<=", ">=" or "=="
    limit: object
    unit: str = ""
    value: object = None  # None: not measured in this run (its size was not run)

    @property
    def met(self) -> bool | None:
        return None if self.value is None else _OPS[self.op](self.value, self.limit)

    @property
    def goal(self) -> str:
        if isinstance(self.limit, dict):
            return f"{self.op} expected"
        return f"{self.op} {_show(self.limit)} {self.unit}".strip()

    @property
    def shown(self) -> str:
        """The measured value for the table; a mapping compared with its expected one shows what differs."""
        if self.value is None:
            return "-"
        if isinstance(self.limit, dict):
            got, want = self.value, self.limit
            diff = [f"{k} {got.get(k, 0)} (expected {want.get(k, 0)})" for k in sorted(set(got) | set(want))
                    if got.get(k, 0) != want.get(k, 0)]
            return "; ".join(diff) or "as expected"
        return f"{_show(self.value)} {self.unit}".strip()

    def as_dict(self) -> dict:
        return {**asdict(self), "goal": self.goal, "met": self.met}


def at_most(what: str, value, limit, unit: str = "") -> Target:
    return Target(what, "<=", limit, unit, value)


def at_least(what: str, value, limit, unit: str = "") -> Target:
    return Target(what, ">=", limit, unit, value)


def equals(what: str, value, expected) -> Target:
    return Target(what, "==", expected, "", value)


def grows_at_most(what: str, results: list[dict], size: str, mb: str, limit: float, unit: str = "MB") -> Target:
    """Memory flat as the input grows: ``results[-1][mb] - results[0][mb]`` (smallest to largest
    size, ``results`` sorted by ``size``) at most ``limit``; not measured with one size only."""
    small, large = results[0], results[-1]
    growth = round(large[mb] - small[mb], 1) if len(results) > 1 else None
    return at_most(f"{what} {small[size]:,} -> {large[size]:,}", growth, limit, unit)


def _show(v) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 10 else f"{v:,.1f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def finish(name: str, targets: list[Target], payload: dict, out: Path) -> int:
    """Print the targets table, write ``payload`` with the targets and ``met`` to ``out``; the
    process exit status: 1 if a measured target was missed, else 0."""
    measured = [t for t in targets if t.met is not None]
    met = all(t.met for t in measured)
    doc = {"benchmark": name, **payload, "targets": [t.as_dict() for t in targets], "met": met,
           "all_measured": len(measured) == len(targets)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    width = max([len(t.what) for t in targets] + [6])
    print(f"\n{'target':<{width}}  {'goal':>22}  {'measured':>22}  result")
    for t in targets:
        result = {True: "met", False: "MISSED", None: "not measured (size not run)"}[t.met]
        print(f"{t.what:<{width}}  {t.goal:>22}  {t.shown:>22}  {result}")
    missed = [t.what for t in measured if not t.met]
    print(f"{name}: {'MISSED: ' + '; '.join(missed) if missed else 'every measured target met'}"
          f"{'' if doc['all_measured'] else ' (some targets not measured at these sizes)'}; written to {out}")
    return 1 if missed else 0


def rss_anon_mb() -> float:
    """This process's anonymous resident memory (heap, stacks) now, in MB: RSS without the pages of
    mapped files (SQLite reads its database through mmap; those are the kernel's page cache)."""
    return _status_mb("/proc/self/status", "RssAnon:")


def children_peak_mb() -> float:
    """The peak RSS (``VmHWM``) of this process's running child processes, summed, in MB; a child
    that has not exec'd its program yet counts 0 (until then it shares this process's memory).

    ``RUSAGE_CHILDREN`` cannot say this: a spawned child's ``ru_maxrss`` keeps the parent's RSS
    from before it exec'd (a 6 MB ``xmllint`` shows as the 40 MB Python that started it).
    """
    me, total = os.readlink("/proc/self/exe"), 0.0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                pids = f.read().split()
        except OSError:
            continue
        for pid in pids:
            try:
                if os.readlink(f"/proc/{pid}/exe") == me:
                    continue
            except OSError:
                continue
            total += _status_mb(f"/proc/{pid}/status", "VmHWM:")
    return total


def _status_mb(path: str, field: str) -> float:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:  # the process has just exited
        pass
    return 0.0


class Peak:
    """The peak of ``probe()`` (MB) while the ``with`` block runs, sampled every ``every`` s, for
    what the kernel keeps no peak of (anonymous memory; children that are still running)."""

    def __init__(self, probe=rss_anon_mb, every: float = 0.01):
        self.probe, self.every, self.mb = probe, every, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.mb = max(self.mb, self.probe())
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> "Peak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.mb = round(max(self.mb, self.probe()), 1)
