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
    """The daily deadline check: warns a working day before a deadline is missed [Art. 20-22].

    Runs once per China day however many gateway processes fire it: under the singleton lock, a day
    already checked (its ``deadline.checked`` entry is in the audit trail) is skipped, so a process
    whose scheduler fires after another process has finished does not check the day again. The
    warnings are logged one by one, naming bank and batch, and recorded in that audit entry."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from gateway import audit
    from gateway.timeutil import local_date

    svc = _service()
    with singleton(svc.engine, "deadline-check", lock_dir=svc.var_dir) as got:
        if not got:
            log.info("deadline check skipped: another gateway process holds the lock",
                     extra={"event": "deadline_check_skipped"})
            return
        now = svc.now()
        subject = f"deadline-check:{local_date(now).isoformat()}"
        with Session(svc.engine) as s:
            done = s.scalar(sa.select(sa.func.count()).select_from(audit.log_table).where(
                audit.log_table.c.action == "deadline.checked", audit.log_table.c.subject == subject))
        if done:
            log.info("deadline check skipped: already done today", extra={"event": "deadline_check_skipped",
                                                                          "day": subject})
            return
        warnings = svc.deadline_warnings()
        svc.last_warnings = warnings
        for w in warnings:
            log.warning("deadline at risk", extra={"event": "deadline_at_risk", "kind": w.kind,
                                                   "severity": w.severity, "bank": w.bank_id, "batch": w.batch_ref,
                                                   "due": w.due.isoformat(), "items": w.items, "detail": w.en})
        with Session(svc.engine) as s, s.begin():
            audit.append(s, actor="gateway", action="deadline.checked", subject=subject,
                         detail={"warnings": [{k: v for k, v in w.as_dict().items() if k not in ("zh", "en")}
                                              for w in warnings]}, now=now)
        log.info("deadline check done", extra={"event": "deadline_check", "day": subject, "warnings": len(warnings)})
