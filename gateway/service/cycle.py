"""One gateway cycle, on Twisted: plan and render files, deliver what is due, fetch and apply reports.

Database work is synchronous SQLAlchemy run in the reactor's thread pool, one short transaction per
step, so a crash at any moment leaves a state the next cycle continues from:

* planned-but-not-rendered files are rendered again (same content);
* a delivery whose recording was lost is repeated; the bank recognises the same bytes under the same
  name and does not process them twice (and a bank report about the file also records it as sent);
* a report is stored and committed before it is acknowledged to the bank, and applied afterwards;
  stored-but-unapplied reports are applied on the next cycle.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session
from twisted.internet import defer, threads

from gateway import logs
from gateway.calendar import WorkingDayCalendar
from gateway.config.model import Config
from gateway.db.models import InboundFile
from gateway.dispatch.outbox import claim_due, mark_delivered, mark_failed, release
from gateway.dispatch.plan import plan_files
from gateway.dispatch.render import render_planned
from gateway.inbound.process import process_inbound
from gateway.inbound.store import store_inbound
from gateway.keys import load_bank_pin, load_signing
from gateway.privacy import PiiVault
from gateway.transports.base import TransportError

log = logs.get("cycle")


@dataclass
class CycleReport:
    planned: int = 0
    rendered: int = 0
    delivered: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    reports_stored: list[str] = field(default_factory=list)
    reports_applied: int = 0
    reports_refused: int = 0


class GatewayCycle:
    """Everything the gateway does, one step at a time; the scheduler calls these on a timer."""

    def __init__(self, *, reactor, engine, cfg: Config, vault: PiiVault, calendar: WorkingDayCalendar,
                 outbox_dir: Path, inbound_dir: Path, transports: dict, now: Callable[[], dt.datetime],
                 rng: random.Random | None = None,
                 signing_for: Callable = load_signing, pin_for: Callable = load_bank_pin) -> None:
        self.reactor, self.engine, self.cfg, self.vault, self.calendar = reactor, engine, cfg, vault, calendar
        self.outbox_dir, self.inbound_dir = Path(outbox_dir), Path(inbound_dir)
        self.transports, self.now, self.rng = transports, now, rng or random.Random()
        self.signing_for, self.pin_for = signing_for, pin_for
        self.stop_requested = False  # set at shutdown: finish the current step, start no new one

    def _db(self, fn, *args):
        def run():
            with Session(self.engine) as s, s.begin():
                return fn(s, *args)
        return threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), run)

    # ------------------------------------------------------------------ dispatch
    def prepare(self) -> defer.Deferred:
        """Plan files for dispatchable items, then render every planned file (two transactions)."""
        def plan(s):
            return len(plan_files(s, self.cfg, now=self.now(), calendar=self.calendar,
                                  bank_ids=set(self.transports)))

        def render(s):
            return len(render_planned(s, self.cfg, self.vault, self.outbox_dir, signing_for=self.signing_for))

        d = self._db(plan)
        d.addCallback(lambda n: self._db(render).addCallback(lambda r: (n, r)))
        return d

    @defer.inlineCallbacks
    def deliver_due(self, report: CycleReport):
        claimed = yield self._db(lambda s: claim_due(s, now=self.now(), bank_ids=set(self.transports)))
        for n, c in enumerate(claimed):
            if self.stop_requested:  # give the unused leases back so a restart takes them at once
                rest = [x.file_id for x in claimed[n:]]
                yield self._db(lambda s: release(s, rest, now=self.now()))
                break
            transport = self.transports[c.bank_id]
            signature = Path(c.signature_path).read_bytes() if c.signature_path else None
            ext = Path(c.signature_path).suffix.lstrip(".") if c.signature_path else None
            try:
                receipt = yield transport.deliver(c.name, Path(c.path), signature, signature_ext=ext)
            except TransportError as e:
                retry, error = e.retryable, str(e)
                when = yield self._db(lambda s: mark_failed(s, c.file_id, now=self.now(), error=error,
                                                            retryable=retry, rng=self.rng))
                report.failed.append((c.name, str(e)))
                log.warning("delivery failed", extra={"event": "delivery_failed", "bank": c.bank_id,
                                                      "file": c.name, "retryable": retry, "next": str(when),
                                                      "error": type(e).__name__})
                continue
            yield self._db(lambda s: mark_delivered(s, c.file_id, now=self.now()))
            report.delivered.append(c.name)
            log.info("delivered", extra={"event": "delivered", "bank": c.bank_id, "file": c.name,
                                         "sha256": c.sha256, "already_there": receipt.already_there})

    # ------------------------------------------------------------------ inbound
    @defer.inlineCallbacks
    def fetch_reports(self, report: CycleReport):
        for bank_id, transport in self.transports.items():
            if self.stop_requested:
                return
            try:
                names = yield transport.list_reports()
            except TransportError as e:
                log.warning("cannot list reports", extra={"event": "poll_failed", "bank": bank_id,
                                                          "error": type(e).__name__})
                continue
            for name in names:
                try:
                    data, signature = yield transport.fetch_report(name)
                except TransportError as e:
                    log.warning("cannot fetch report", extra={"event": "fetch_failed", "bank": bank_id,
                                                              "file": name, "error": type(e).__name__})
                    break
                yield self._db(lambda s: store_inbound(s, bank_id=bank_id, name=name, data=data,
                                                       signature=signature, inbound_dir=self.inbound_dir,
                                                       now=self.now()))
                try:
                    yield transport.ack_report(name)  # only after the file is stored and committed
                except TransportError:
                    pass  # fetched again next time; recognised by its hash
                report.reports_stored.append(name)

    @defer.inlineCallbacks
    def apply_stored(self, report: CycleReport):
        """Apply every stored report, each in its own transaction (one bad file never blocks the rest)."""
        ids = yield self._db(lambda s: list(s.scalars(sa.select(InboundFile.id).where(
            InboundFile.status == "stored").order_by(InboundFile.id))))
        for row_id in ids:
            if self.stop_requested:
                return
            def apply_one(s, row_id=row_id):
                row = s.get(InboundFile, row_id)
                pin = self.pin_for(self.cfg.banks[row.bank_id])
                return row.bank_id, row.name, process_inbound(s, self.cfg, row, vault=self.vault, now=self.now(),
                                                              pin=pin)
            bank_id, name, stats = yield self._db(apply_one)
            if stats is None:
                report.reports_refused += 1
                log.warning("report refused", extra={"event": "report_refused", "bank": bank_id, "file": name})
            else:
                report.reports_applied += 1
                log.info("report applied", extra={"event": "report_applied", "bank": bank_id, "file": name,
                                                  "applied": stats.applied, "exceptions": stats.exceptions})

    @defer.inlineCallbacks
    def run_once(self):
        """prepare -> deliver -> fetch -> apply. Returns a :class:`CycleReport`."""
        report = CycleReport()
        report.planned, report.rendered = yield self.prepare()
        for step in (self.deliver_due, self.fetch_reports, self.apply_stored):
            if self.stop_requested:
                break
            yield step(report)
        return report
