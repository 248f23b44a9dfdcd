"""``ykt serve``: the long-lived gateway process.

Scheduler (APScheduler 3 ``TwistedScheduler`` with a persistent SQLAlchemy job store), the bank
transports, the admin HTTP API and console on loopback, structured logs, and a clean shutdown on
SIGTERM: no new job starts, the running cycle finishes its current step, then the reactor stops.
Every step is its own transaction, so even a hard kill loses nothing (see ``gateway.service.cycle``).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import signal
from dataclasses import dataclass, field
from pathlib import Path

from twisted.web import resource, server

from gateway import logs
from gateway.calendar import WorkingDayCalendar
from gateway.config.model import Config
from gateway.db import make_engine
from gateway.privacy import PiiVault
from gateway.service.cycle import GatewayCycle
from gateway.service import jobs
from gateway.timeutil import CHINA

log = logs.get("serve")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Health(resource.Resource):
    isLeaf = True

    def __init__(self, svc: "GatewayService") -> None:
        super().__init__()
        self.svc = svc

    def render_GET(self, request):
        body = self.svc.health()
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        request.setResponseCode(200 if body["status"] == "ok" else 503)
        return json.dumps(body, ensure_ascii=False, default=str).encode()


class _Root(resource.Resource):
    def __init__(self, site: resource.Resource, health: resource.Resource) -> None:
        super().__init__()
        self.site, self.health = site, health

    def getChildWithDefault(self, name, request):
        return self.health if name == b"health" else self.site

    def render(self, request):
        return self.site.render(request)


@dataclass
class GatewayService:
    reactor: object
    cfg: Config
    db_url: str
    vault: PiiVault
    var_dir: Path
    interval_seconds: float = 60.0
    http_port: int = 8080
    http_interface: str = "127.0.0.1"
    now: object = utcnow
    transports: dict = field(default_factory=dict)
    last_cycle: object = None
    last_warnings: list = field(default_factory=list)
    stopping: bool = False

    def __post_init__(self) -> None:
        self.engine = make_engine(self.db_url)
        self.calendar = WorkingDayCalendar.from_dir(self.cfg.directory / "calendar")
        if not self.transports:
            from gateway.transports.base import make_transport

            self.transports = {b.id: make_transport(b, reactor=self.reactor, keys_dir=self.cfg.keys_dir)
                               for b in self.cfg.banks.values()}
        self.cycle = GatewayCycle(reactor=self.reactor, engine=self.engine, cfg=self.cfg, vault=self.vault,
                                  calendar=self.calendar, outbox_dir=self.var_dir / "outbox",
                                  inbound_dir=self.var_dir / "inbound", transports=self.transports, now=self.now,
                                  rng=random.Random())
        self.scheduler = None
        self.port = None
        self.inflight = None  # the Deferred of the cycle running now, if any

    def run_cycle(self):
        """Start one cycle (called in the reactor thread) and remember it until it ends."""
        from twisted.internet import defer

        if self.stopping:
            return defer.succeed(None)
        d = self.cycle.run_once()
        self.inflight = d

        def done(result):
            self.inflight = None
            return result
        return d.addBoth(done)

    # ----------------------------------------------------------------------- pieces
    def deadline_warnings(self) -> list:
        try:
            from reconciliation.deadlines import deadline_warnings
        except ImportError:
            return []
        from sqlalchemy.orm import Session

        with Session(self.engine) as s:
            return deadline_warnings(s, self.cfg, self.calendar, now=self.now())

    def health(self) -> dict:
        running = self.scheduler is not None and self.scheduler.running and not self.stopping
        last = self.last_cycle
        return {"status": "ok" if running else "stopping", "banks": sorted(self.transports),
                "last_cycle": None if last is None else {"delivered": len(last.delivered), "failed": len(last.failed),
                                                         "reports": len(last.reports_stored)}}

    def site_root(self) -> resource.Resource:
        """``/health`` (the gateway's own state) in front of the admin console and API."""
        from gateway.admin.web.app import make_resource

        return _Root(make_resource(engine=self.engine, config=self.cfg, vault=self.vault, clock=self.reactor,
                                   calendar=self.calendar, reactor=self.reactor), Health(self))

    # ----------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.twisted import TwistedScheduler

        jobs.RUNNING["service"] = self
        url = self.engine.url.render_as_string(hide_password=False)
        self.scheduler = TwistedScheduler(reactor=self.reactor, timezone=CHINA,
                                          jobstores={"default": SQLAlchemyJobStore(url=url)},
                                          job_defaults={"coalesce": True, "max_instances": 1,
                                                        "misfire_grace_time": 300})
        self.scheduler.add_job("gateway.service.jobs:cycle_job", "interval", seconds=self.interval_seconds,
                               id="gateway-cycle", replace_existing=True, next_run_time=dt.datetime.now(CHINA))
        self.scheduler.add_job("gateway.service.jobs:deadline_check_job", "cron", day_of_week="*", hour=9, minute=0,
                               id="deadline-check", replace_existing=True)
        self.scheduler.start()
        site = server.Site(self.site_root())
        self.port = self.reactor.listenTCP(self.http_port, site, interface=self.http_interface)
        self.reactor.addSystemEventTrigger("before", "shutdown", self._before_shutdown)
        log.info("gateway started", extra={"event": "started", "http": f"{self.http_interface}:{self.bound_port}",
                                           "banks": ",".join(sorted(self.transports)),
                                           "interval_s": self.interval_seconds})

    @property
    def bound_port(self) -> int:
        return self.port.getHost().port if self.port is not None else self.http_port

    def _before_shutdown(self):
        """Stop taking work, let the running job finish (the executor's thread pool is joined by the
        reactor at shutdown), close transports and the listening port."""
        from twisted.internet import defer

        self.stopping = True
        self.cycle.stop_requested = True
        log.info("stopping", extra={"event": "stopping"})
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.pause()
        pending = self.inflight if self.inflight is not None else defer.succeed(None)
        waiter = defer.Deferred()
        pending.addBoth(lambda r: waiter.callback(None) if not waiter.called else None)

        def close(_):
            ds = [defer.maybeDeferred(t.close) for t in self.transports.values()]
            if self.port is not None:
                ds.append(defer.maybeDeferred(self.port.stopListening))
            return defer.DeferredList(ds, consumeErrors=True)
        waiter.addCallback(close)
        waiter.addCallback(lambda _: log.info("stopped cleanly", extra={"event": "stopped"}))
        return waiter


def install_signal_handlers(reactor) -> None:
    """SIGTERM and SIGINT stop the reactor cleanly (Twisted installs SIGINT; make SIGTERM the same)."""
    def handler(signum, frame):
        reactor.callFromThread(reactor.stop)
    signal.signal(signal.SIGTERM, handler)
