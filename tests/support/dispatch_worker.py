"""A gateway dispatcher in its own process, for crash tests: deliver every dispatchable item, then exit 0.

    python -m tests.support.dispatch_worker --db URL --keys DIR --var DIR --endpoints JSON [--max-items N]

``--endpoints`` maps bank ids to {"sftp_port": P} or {"https_url": U}. The personal-data key comes from
``YKT_PII_KEY``. The test kills this process with SIGKILL at random moments and starts it again.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import random
import sys
from pathlib import Path

import sqlalchemy as sa


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--keys", required=True, type=Path)
    ap.add_argument("--var", required=True, type=Path)
    ap.add_argument("--endpoints", required=True)
    ap.add_argument("--max-items", type=int, default=0)
    args = ap.parse_args()

    from twisted.internet import defer, reactor, task

    from gateway.calendar import DEFAULT_CALENDAR_DIR, WorkingDayCalendar
    from gateway.config import load
    from gateway.config.rebase import with_endpoint, with_keys_dir
    from gateway.db import make_engine
    from gateway.db.models import OutboundFile
    from gateway.privacy import PiiVault
    from gateway.service.cycle import CycleReport, GatewayCycle
    from gateway.transports.base import make_transport

    root = Path(__file__).resolve().parents[2]
    cfg = with_keys_dir(load(root / "config"), args.keys)
    endpoints = json.loads(args.endpoints)
    for bank_id, ep in endpoints.items():
        cfg = with_endpoint(cfg, bank_id, **ep)
        if args.max_items:
            b = cfg.banks[bank_id]
            cfg = dataclasses.replace(cfg, banks={**cfg.banks, bank_id: dataclasses.replace(
                b, limits=dataclasses.replace(b.limits, max_items_per_file=args.max_items))})
    engine = make_engine(args.db)
    transports = {b: make_transport(cfg.banks[b], reactor=reactor) for b in endpoints}
    now = lambda: dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    cycle = GatewayCycle(reactor=reactor, engine=engine, cfg=cfg, vault=PiiVault.load(),
                         calendar=WorkingDayCalendar.from_dir(DEFAULT_CALENDAR_DIR), outbox_dir=args.var / "outbox",
                         inbound_dir=args.var / "inbound", transports=transports, now=now, rng=random.Random())
    code = {"rc": 1}

    @defer.inlineCallbacks
    def run():
        try:
            yield cycle.prepare()
            while True:
                report = CycleReport()
                yield cycle.deliver_due(report)
                with engine.connect() as c:
                    left = c.execute(sa.select(sa.func.count()).select_from(OutboundFile)
                                     .where(OutboundFile.state.in_(["planned", "ready"]))).scalar()
                if not left:
                    code["rc"] = 0
                    break
                if not report.delivered:
                    yield task.deferLater(reactor, 0.05, lambda: None)
                    # leased by a killed predecessor: take it back (the lease is minutes long in production)
                    with engine.begin() as c:
                        c.execute(sa.update(OutboundFile).where(OutboundFile.state == "ready")
                                  .values(next_attempt_at=now()))
        finally:
            reactor.stop()

    reactor.callWhenRunning(run)
    reactor.run()
    return code["rc"]


if __name__ == "__main__":
    sys.exit(main())
