"""A running simulated bank: :class:`~simulators.bank.BankCore` behind SFTP and HTTPS on loopback.

All work on the bank's state runs one piece at a time on a dedicated worker thread (so a
100,000-payment file does not stall the reactor); the protocols only move bytes. Reports due
later are released by calls scheduled on the injected clock.

>>> # see simulators.testing.start_bank for the test helper; the CLI is ``ykt simulate-bank``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import urlparse

from twisted.internet import defer, threads
from twisted.protocols.policies import WrappingFactory
from twisted.python.threadpool import ThreadPool

from formats.reasons import ReasonTable
from gateway.calendar import WorkingDayCalendar
from simulators.bank import CST, BankCore
from simulators.https import make_site, tls_options
from simulators.scenario import Scenario
from simulators.sftp import BankSSHFactory, SftpSite


class SimulatedBank:
    """Listens for one bank. ``start()`` then ``stop()`` (a Deferred); ports are in ``sftp_port`` and
    ``https_port`` after ``start()`` (0 asks for ephemeral ports)."""

    def __init__(self, core: BankCore, *, reactor, clock, keys, username: str, base_path: str = "/ykt/v1",
                 sftp_port: int = 0, https_port: int = 0, interface: str = "127.0.0.1") -> None:
        self.core = core
        self.reactor = reactor
        self.clock = clock
        self.keys = keys
        self.username = username
        self.base_path = base_path
        self.interface = interface
        self.sftp_port = sftp_port
        self.https_port = https_port
        self._pool = ThreadPool(1, 1, name=f"bank-{core.bank.id}")
        self._lock = defer.DeferredLock()
        self._release_call = None
        self._outage_call = None
        self._sftp_listener = None
        self._sftp_closing = None  # a Deferred while the SFTP port is being closed for an outage
        self._https_listener = None
        self._sftp_factory = None
        self._https_factory = None
        self.running = False
        self._stopped = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        password = self.keys.sftp_password.read_text().strip() if self.keys.sftp_password.exists() else None
        site = SftpSite(self.core.root, is_instruction=self._is_instruction, on_complete=self.receive,
                        available=lambda: self.available("sftp"))
        ssh = BankSSHFactory(site, host_key=self.keys.ssh_host_key, username=self.username, password=password,
                             authorized_keys=[self.keys.gateway_ssh_pub])
        self._sftp_factory = WrappingFactory(ssh)
        self._https_factory = WrappingFactory(make_site(self, self.base_path))
        self._tls = tls_options(self.keys.tls_cert, self.keys.tls_key, self.keys.tls_client_ca)
        self._pool.start()
        self.running = True
        self._https_listener = self.reactor.listenSSL(self.https_port, self._https_factory, self._tls,
                                                      interface=self.interface)
        self.https_port = self._https_listener.getHost().port
        self._sftp_listener = self.reactor.listenTCP(self.sftp_port, self._sftp_factory, interface=self.interface)
        self.sftp_port = self._sftp_listener.getHost().port
        self._check_outage()
        self._reschedule()

    @defer.inlineCallbacks
    def stop(self):
        """Stop listening, drop open connections, cancel scheduled work; waits for work in progress.
        Stopping twice is harmless."""
        if self._stopped:
            return
        self._stopped = True
        self.running = False
        for call in (self._release_call, self._outage_call):
            if call is not None and call.active():
                call.cancel()
        for listener in (self._sftp_listener, self._https_listener):
            if listener is not None:
                yield listener.stopListening()
        self._sftp_listener = self._https_listener = None
        for f in (self._sftp_factory, self._https_factory):
            if f is not None:
                for p in list(f.protocols):
                    p.transport.abortConnection()
        yield self._lock.run(lambda: None)
        self._pool.stop()

    @property
    def https_url(self) -> str:
        return f"https://{self.interface}:{self.https_port}{self.base_path}"

    # ------------------------------------------------------------------ work

    def run(self, fn, *args):
        """Run ``fn(*args)`` on the bank's worker thread, one at a time; a Deferred of its result."""
        return self._lock.run(threads.deferToThreadPool, self.reactor, self._pool, fn, *args)

    def receive(self, name: str, staged: Path, signature: bytes | None = None):
        """Hand a complete upload to the bank; fires with the :class:`~simulators.bank.Intake` once
        reports due now are in the outbox."""
        d = self.run(self._receive_and_release, name, staged, signature)
        d.addBoth(self._after)
        return d

    def _receive_and_release(self, name, staged, signature):
        intake = self.core.receive(name, staged, signature)
        self.core.release_due()
        return intake

    def _after(self, result):
        self._reschedule()
        return result

    def _is_instruction(self, name: str) -> bool:
        return not name.startswith(".") and name.endswith(self.core.instruction_suffix())

    def _reschedule(self) -> None:
        if not self.running:
            return
        if self._release_call is not None and self._release_call.active():
            self._release_call.cancel()
        due = self.core.next_due()
        self._release_call = None
        if due is not None:
            self._release_call = self.clock.callLater(max(0.0, due - self.clock.seconds()), self._tick)

    def _tick(self):
        self._release_call = None
        return self.run(self.core.release_due).addBoth(self._after)

    def idle(self):
        """A Deferred that fires once the work queued so far is done, and a port closed for an outage is
        closed (tests wait on it)."""
        d = self._lock.run(lambda: None)
        closing = self._sftp_closing
        if closing is not None and not closing.called:
            done = defer.Deferred()
            closing.addBoth(lambda r: (done.callback(None), r)[1])
            d.addCallback(lambda _: done)
        return d

    # ------------------------------------------------------------------ time and outages

    def now(self) -> dt.datetime:
        return self.core.now()

    def available(self, kind: str) -> bool:
        return not self.core.scenario.outage(kind, self.now().replace(tzinfo=None))

    def _check_outage(self) -> None:
        """Close the SFTP port during an outage window (connections refused), reopen it after."""
        if not self.running:
            return
        up = self.available("sftp")
        if not up and self._sftp_listener is not None:
            self._sftp_closing = defer.maybeDeferred(self._sftp_listener.stopListening)
            self._sftp_listener = None
        elif up and self._sftp_listener is None:
            self._sftp_listener = self.reactor.listenTCP(self.sftp_port, self._sftp_factory, interface=self.interface)
        now = self.now().replace(tzinfo=None)
        nexts = [b for o in self.core.scenario.outages if (b := o.boundaries_after(now)) is not None]
        if self._outage_call is not None and self._outage_call.active():
            self._outage_call.cancel()
        self._outage_call = None
        if nexts:
            delay = (min(nexts) - now).total_seconds()
            self._outage_call = self.clock.callLater(delay, self._check_outage)

    def time_changed(self) -> None:
        """Call after moving a clock by hand (e.g. ``WarpClock.jump``): re-plans releases and outages."""
        self._check_outage()
        self._reschedule()

    def seconds_to_next_working_day(self, at: dt.time = dt.time(9, 0)) -> float:
        now = self.now()
        day = self.core.calendar.add_working_days(now.date(), 1).date
        return (dt.datetime.combine(day, at, tzinfo=CST) - now).total_seconds()


def build_bank(bank_id: str, *, config, keys, root: Path, reactor, clock, scenario: Scenario | str | Path | None = None,
               seed: int | None = None, sftp_port: int | None = None, https_port: int | None = None,
               book=None, check_schema: bool = True) -> SimulatedBank:
    """A :class:`SimulatedBank` for ``bank_id`` of a loaded ``config``, not yet started.

    :param keys: :class:`simulators.keys.KeyPaths` (from ``ensure_keys``).
    :param root: the bank's directory (inbox, outbox, state).
    :param scenario: a :class:`Scenario`, a path or a name in ``config/scenarios``; ``None``: settle what the book allows.
    :param sftp_port, https_port: ``None`` takes the port from the bank's transport config when it is that
        kind, else an ephemeral one; ``0`` is always ephemeral.
    """
    bank = config.banks[bank_id]
    sc = scenario if isinstance(scenario, Scenario) else Scenario.load(scenario)
    t = bank.transport
    url = urlparse(t.url) if t.kind == "https" else None
    if sftp_port is None:
        sftp_port = t.port if t.kind == "sftp" else 0
    if https_port is None:
        https_port = (url.port or 443) if url is not None else 0
    calendar = WorkingDayCalendar.from_dir(config.directory / "calendar")
    reasons = config.reason_codes
    if not isinstance(reasons, ReasonTable):
        reasons = ReasonTable.from_mapping(reasons, source="reason_codes.toml")
    core = BankCore(bank, root=root, keys=keys.bank(bank_id), scenario=sc, clock=clock, calendar=calendar,
                    reasons=reasons, layouts=config.layouts, seed=seed, book=book, check_schema=check_schema)
    username = t.username if t.kind == "sftp" else f"ykt-{bank_id}"
    return SimulatedBank(core, reactor=reactor, clock=clock, keys=keys.bank(bank_id), username=username,
                         base_path=url.path if url is not None else "/ykt/v1", sftp_port=sftp_port,
                         https_port=https_port)
