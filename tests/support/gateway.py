"""Run the real gateway cycle against simulated banks over real sockets, in tests (and the demo)."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path

from gateway.calendar import DEFAULT_CALENDAR_DIR, WorkingDayCalendar
from gateway.config import load
from gateway.config.rebase import with_endpoint, with_keys_dir
from gateway.config.model import HttpsTransport, SftpTransport
from gateway.service.cycle import GatewayCycle
from gateway.transports.base import make_transport
from simulators.testing import reactor_thread, start_bank

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Harness:
    cfg: object
    banks: dict
    cycle: GatewayCycle
    rt: object
    clock: object

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.seconds(), dt.timezone.utc).replace(tzinfo=None)

    def run_cycle(self):
        return self.rt.call(self.cycle.run_once)

    def next_working_day(self) -> None:
        """All banks share one clock: move it to 09:00 on the next working day and let them work."""
        first = next(iter(self.banks.values()))
        first.next_working_day()
        for b in self.banks.values():
            b.wait()

    def stop(self) -> None:
        for t in self.cycle.transports.values():
            self.rt.call(t.close)
        for b in self.banks.values():
            b.stop()


def start_harness(engine, vault, tmp: Path, *, bank_ids=("cqrcb-fj", "icbc-cq", "psbc-xs"), scenario=None,
                  seed: int = 0) -> Harness:
    from twisted.internet import task

    from simulators.testing import DEFAULT_START
    from simulators.clock import epoch

    keys_dir = tmp / "keys"
    clock = task.Clock()
    clock.advance(epoch(DEFAULT_START))
    banks = {b: start_bank(b, scenario=scenario, seed=seed, clock=clock, config_dir=ROOT / "config",
                           keys_dir=keys_dir) for b in bank_ids}
    cfg = with_keys_dir(load(ROOT / "config"), keys_dir)
    for bank_id, rb in banks.items():
        t = cfg.banks[bank_id].transport
        if isinstance(t, SftpTransport):
            cfg = with_endpoint(cfg, bank_id, sftp_port=rb.sftp_port)
        elif isinstance(t, HttpsTransport):
            cfg = with_endpoint(cfg, bank_id, https_url=rb.https_url)
    rt = reactor_thread()
    transports = {b: rt.call(lambda b=b: make_transport(cfg.banks[b], reactor=rt.reactor)) for b in bank_ids}
    h = Harness(cfg, banks, None, rt, clock)
    h.cycle = GatewayCycle(reactor=rt.reactor, engine=engine, cfg=cfg, vault=vault,
                           calendar=WorkingDayCalendar.from_dir(DEFAULT_CALENDAR_DIR), outbox_dir=tmp / "outbox",
                           inbound_dir=tmp / "inbound", transports=transports, now=h.now, rng=random.Random(1))
    return h
