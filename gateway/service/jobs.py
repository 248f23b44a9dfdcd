"""Scheduled jobs. APScheduler's persistent store keeps references to these functions (no pickled
state): each job finds the running service through :data:`RUNNING`, takes its singleton lock, and
runs one step. A process that is not the lock holder skips the run."""

from __future__ import annotations

from twisted.internet.threads import blockingCallFromThread

from gateway import logs
from gateway.service.locks import singleton

log = logs.get("jobs")

RUNNING: dict[str, object] = {}  # "service" -> the running GatewayService


def _service():
    svc = RUNNING.get("service")
    if svc is None:
        raise RuntimeError("no gateway service is running in this process")
    return svc


def cycle_job() -> None:
    """Plan, render, deliver, fetch and apply: one gateway cycle, by one process at a time."""
    svc = _service()
    with singleton(svc.engine, "gateway-cycle", lock_dir=svc.var_dir) as got:
        if not got:
            log.info("cycle skipped: another gateway process holds the lock", extra={"event": "cycle_skipped"})
            return
        report = blockingCallFromThread(svc.reactor, svc.run_cycle)
        if report is None:
            return  # stopping
        svc.last_cycle = report
        log.info("cycle done", extra={"event": "cycle", "planned": report.planned, "rendered": report.rendered,
                                      "delivered": len(report.delivered), "failed": len(report.failed),
                                      "reports": len(report.reports_stored), "applied": report.reports_applied})


def deadline_check_job() -> None:
    """The daily deadline check: warns a working day before a deadline is missed [Art. 20-22]."""
    svc = _service()
    with singleton(svc.engine, "deadline-check", lock_dir=svc.var_dir) as got:
        if not got:
            return
        warnings = svc.deadline_warnings()
        svc.last_warnings = warnings
        for w in warnings:
            log.warning("deadline at risk", extra={"event": "deadline_at_risk", "detail": str(w)})
