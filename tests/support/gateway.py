"""Run the real gateway cycle against simulated banks over real sockets, in tests (the demo's world)."""

from __future__ import annotations

from pathlib import Path

from gateway.demo import SimulatedWorld, start_world

ROOT = Path(__file__).resolve().parents[2]
Harness = SimulatedWorld


def start_harness(engine, vault, tmp: Path, *, bank_ids=("cqrcb-fj", "icbc-cq", "psbc-xs"), scenario=None,
                  seed: int = 0) -> SimulatedWorld:
    return start_world(engine, vault, tmp, config_dir=ROOT / "config", bank_ids=bank_ids, scenario=scenario, seed=seed)
