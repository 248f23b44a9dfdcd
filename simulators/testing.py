"""Helpers for tests, the benchmark and the demo: start simulated banks, make instruction files.

Starting banks (real sockets on 127.0.0.1, ephemeral ports)::

    from simulators.testing import start_bank
    bank = start_bank("psbc-xs", scenario="default", seed=0)   # a task.Clock at DEFAULT_START
    try:
        ... bank.sftp_port, bank.https_url, bank.keys.gateway_ssh_key, bank.bank_keys.tls_cert ...
        bank.advance(3600)               # or bank.next_working_day(): releases what falls due
    finally:
        bank.stop()

The Twisted reactor runs in one background thread for the whole process (started on first use,
``installSignalHandlers=False``); every call into Twisted goes through
``blockingCallFromThread``, so test code stays plain synchronous Python (no pytest-twisted, no trial).
Keys come from :func:`simulators.keys.ensure_keys` in a per-process temporary directory unless
``keys_dir`` is given.

Making files the way the gateway will (pure, no sockets)::

    f = write_instruction(config.banks["psbc-xs"], tmp_path, items, msg_id="YKT20261102000001",
                          key=keys.gateway_sign_key, cert=keys.gateway_sign_cert)
    f.path, f.signature   # the file, and the detached signature (None for xmldsig: it is inside)
"""

from __future__ import annotations

import atexit
import datetime as dt
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Iterator

from formats.flatfile import write_flat
from formats.iso20022.pain001 import write_pain001
from formats.model import CreditTransfer, PaymentHeader
from formats.money import from_fen
from formats.signature import get_scheme
from simulators.bank import CST, SIGNATURE_SUFFIX
from simulators.clock import epoch
from simulators.keys import KeyPaths, ensure_keys

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config"
#: Monday 2 November 2026, 10:00 in Chongqing: a working day, before every bank's cut-off.
DEFAULT_START = dt.datetime(2026, 11, 2, 10, 0, tzinfo=CST)

# ---------------------------------------------------------------------- instruction files


def payments(n: int, *, holders=None, start: int = 1, remittance: str = "耕地地力保护补贴 2026-11",
             bank_code: str = "102653000019") -> Iterator[CreditTransfer]:
    """``n`` deterministic payments (lazily). With ``holders`` (e.g. ``AccountBook.holders.values()``)
    they go to those holders in turn; otherwise to made-up accounts ``6222…``."""
    hs = list(holders) if holders is not None else None
    for i in range(start, start + n):
        fen = 10_000 + (i * 137) % 50_000
        if hs:
            h = hs[(i - 1) % len(hs)]
            name, account, idn = h.name, h.account, h.id_number
        else:
            name, account, idn = ("张三", "李四", "王五", "赵六", "欧阳娜娜")[i % 5], f"6222{i:015d}", None
        yield CreditTransfer(end_to_end_id=f"E{i:010d}", amount=from_fen(fen), creditor_name=name,
                             creditor_account=account, creditor_bank_code=bank_code, remittance=remittance,
                             instruction_id=f"I{i:010d}", id_number=idn)


def payments_total(n: int, *, start: int = 1) -> Decimal:
    """The sum of :func:`payments` ``(n, start=start)`` without building them."""
    return from_fen(sum(10_000 + (i * 137) % 50_000 for i in range(start, start + n)))


@dataclass(frozen=True)
class InstructionFile:
    name: str
    path: Path
    signature: bytes | None  # detached signature (cms, sm2), None for xmldsig
    signature_name: str | None


def sign_file(bank, path: Path, *, key: Path, cert: Path, when: dt.datetime = DEFAULT_START) -> bytes | None:
    """Sign ``path`` as the gateway would for ``bank``: returns the detached signature, or re-writes
    the file with an enveloped xmldsig signature inside (returns ``None``)."""
    scheme = get_scheme(bank.signature)
    if scheme.kind == "enveloped":
        from formats.signature.xmldsig import sign_document

        path.write_bytes(sign_document(path.read_bytes(), key.read_bytes(), cert.read_bytes(), create_slot=True))
        return None
    data = _chunks(path)
    if bank.signature == "cms":
        return scheme.sign(data, key.read_bytes(), cert.read_bytes(), signing_time=when.astimezone(dt.timezone.utc))
    return scheme.sign(data, key.read_text().strip(), cert.read_text().strip())


def write_instruction(bank, directory: Path, items: Iterable[CreditTransfer], *, msg_id: str, key: Path | None,
                      cert: Path | None, count: int | None = None, total: Decimal | None = None,
                      created_at: dt.datetime = DEFAULT_START, unit_code: str = "500236001",
                      execution_date: dt.date | None = None) -> InstructionFile:
    """Write (and sign, unless ``key`` is None) an instruction file for ``bank`` in its format.

    ``count``/``total`` are needed up front for an iterator; a list is counted here.
    """
    if count is None or total is None:
        items = list(items)
        count, total = len(items), sum((t.amount for t in items), Decimal("0.00"))
    header = PaymentHeader(msg_id, created_at.replace(tzinfo=None), f"{msg_id}-P1",
                           execution_date or created_at.date(), "奉节县财政局", "奉节县财政局惠民惠农补贴资金代发户",
                           bank.disbursement_account_number, bank.bank_code, count, total)
    directory.mkdir(parents=True, exist_ok=True)
    scheme = get_scheme(bank.signature)
    if bank.layout_name:
        name = f"{msg_id}.txt"
        path = directory / name
        with open(path, "wb") as out:
            write_flat(out, _flat_layout(bank), header, items, unit_code=unit_code, source=name)
    else:
        name = f"{msg_id}.xml"
        path = directory / name
        signer = None
        if scheme.kind == "enveloped" and key is not None:
            from formats.signature.xmldsig import StreamingEnvelopedSigner

            signer = StreamingEnvelopedSigner(key.read_bytes(), cert.read_bytes())
        with open(path, "wb") as out:
            write_pain001(out, header, items, signer=signer)
    signature = None
    if key is not None and scheme.kind == "detached":
        signature = sign_file(bank, path, key=key, cert=cert, when=created_at)
    suffix = SIGNATURE_SUFFIX.get(bank.signature)
    return InstructionFile(name, path, signature, name + suffix if suffix else None)


_LAYOUTS: dict = {}


def _flat_layout(bank):
    from gateway.config import load

    if bank.layout_name not in _LAYOUTS:
        _LAYOUTS.update(load(DEFAULT_CONFIG).layouts)
    return _LAYOUTS[bank.layout_name]


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 16):
            yield chunk


# ---------------------------------------------------------------------- the reactor thread


class ReactorThread:
    """The global reactor running in a daemon thread; ``call`` runs a function in it and waits
    (a returned Deferred is waited for too)."""

    def __init__(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self._thread = threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False},
                                        name="twisted-reactor", daemon=True)
        if not reactor.running:
            self._thread.start()
        deadline = time.monotonic() + 10
        while not reactor.running:
            if time.monotonic() > deadline:
                raise RuntimeError("the Twisted reactor did not start")
            time.sleep(0.005)

    def call(self, fn, *args, **kw):
        from twisted.internet.threads import blockingCallFromThread

        return blockingCallFromThread(self.reactor, fn, *args, **kw)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.reactor.callFromThread(self.reactor.stop)
            self._thread.join(timeout=10)


_REACTOR: ReactorThread | None = None
_REACTOR_LOCK = threading.Lock()


def reactor_thread() -> ReactorThread:
    """The one :class:`ReactorThread` of this process (started on first use, stopped at exit)."""
    global _REACTOR
    with _REACTOR_LOCK:
        if _REACTOR is None:
            _REACTOR = ReactorThread()
            atexit.register(_REACTOR.stop)
        return _REACTOR


# ---------------------------------------------------------------------- running banks

_KEYS: dict[tuple[Path, Path], KeyPaths] = {}


def shared_keys(config_dir: Path = DEFAULT_CONFIG, keys_dir: Path | None = None) -> KeyPaths:
    """:func:`ensure_keys` once per process (a temporary directory unless ``keys_dir`` is given)."""
    from gateway.config import load

    config = load(config_dir)
    if keys_dir is None:
        existing = next((v for (c, _), v in _KEYS.items() if c == Path(config_dir)), None)
        if existing is not None:
            return existing
        keys_dir = Path(tempfile.mkdtemp(prefix="ykt-keys-"))
    k = (Path(config_dir), Path(keys_dir))
    if k not in _KEYS:
        _KEYS[k] = ensure_keys(keys_dir, config)
    return _KEYS[k]


@dataclass
class RunningBank:
    """A started simulated bank. Everything needed to talk to it, and to drive its clock."""

    bank_id: str
    bank: object  # gateway.config.model.Bank
    service: object  # simulators.service.SimulatedBank
    clock: object
    keys: KeyPaths  # everything (gateway side too)
    root: Path
    username: str
    password: str
    _rt: ReactorThread
    _own_root: bool = False

    @property
    def bank_keys(self):
        return self.keys.bank(self.bank_id)

    @property
    def core(self):
        return self.service.core

    @property
    def sftp_port(self) -> int:
        return self.service.sftp_port

    @property
    def https_port(self) -> int:
        return self.service.https_port

    @property
    def https_url(self) -> str:
        return self.service.https_url

    def known_hosts_line(self) -> str:
        """An OpenSSH ``known_hosts`` line pinning this bank's host key on its port."""
        key = self.bank_keys.ssh_host_pub.read_text().split()
        return f"[127.0.0.1]:{self.sftp_port} {key[0]} {key[1]}\n"

    def wait(self) -> None:
        """Until the work queued so far (processing, releases) is done."""
        self._rt.call(self.service.idle)

    def advance(self, seconds: float) -> None:
        """Move a ``task.Clock`` forward (releases what falls due) and wait for the work it started."""
        def go():
            self.clock.advance(seconds)
            self.service.time_changed()
            return self.service.idle()

        self._rt.call(go)

    def advance_to(self, when: dt.datetime) -> None:
        self.advance(max(0.0, epoch(when) - self.clock.seconds()))

    def next_working_day(self, at: dt.time = dt.time(9, 0)) -> None:
        """Jump to ``at`` on the bank's next working day."""
        self.advance(self.service.seconds_to_next_working_day(at) + 1)

    def now(self) -> dt.datetime:
        return self.core.now()

    def receive(self, name: str, path: Path, signature: bytes | None = None):
        """Hand a file to the bank in-process (as a completed upload would); returns the Intake."""
        staged = self.core.inbox / f".{name}.local.part"
        shutil.copyfile(path, staged)
        return self._rt.call(self.service.receive, name, staged, signature)

    def stop(self) -> None:
        self._rt.call(self.service.stop)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)


def start_bank(bank_id: str, *, scenario=None, seed: int = 0, clock=None, config_dir: Path | str = DEFAULT_CONFIG,
               keys_dir: Path | None = None, root: Path | None = None, start: dt.datetime = DEFAULT_START,
               sftp_port: int = 0, https_port: int = 0, book=None, check_schema: bool = True) -> RunningBank:
    """Start simulated bank ``bank_id`` (SFTP and HTTPS on 127.0.0.1) in the shared reactor thread.

    :param scenario: a :class:`~simulators.scenario.Scenario`, a path, or a name in ``config/scenarios``.
    :param clock: an ``IReactorTime`` for the bank's time; ``None`` makes a ``task.Clock`` set to ``start``.
    :param keys_dir: where :func:`ensure_keys` keeps keys; ``None`` a per-process temporary directory.
    :param root: the bank's directory; ``None`` a temporary one, removed by ``stop()``.
    :param sftp_port, https_port: 0 for ephemeral ports.
    """
    from twisted.internet import task

    from gateway.config import load
    from simulators.service import build_bank

    rt = reactor_thread()
    config = load(config_dir)
    keys = shared_keys(Path(config_dir), keys_dir)
    own = root is None
    root = Path(tempfile.mkdtemp(prefix=f"ykt-{bank_id}-")) if root is None else Path(root)
    if clock is None:
        clock = task.Clock()
        clock.advance(epoch(start))

    def make():
        svc = build_bank(bank_id, config=config, keys=keys, root=root, reactor=rt.reactor, clock=clock,
                         scenario=scenario, seed=seed, sftp_port=sftp_port, https_port=https_port, book=book,
                         check_schema=check_schema)
        svc.start()
        return svc

    service = rt.call(make)
    pw = keys.bank(bank_id).sftp_password.read_text().strip()
    return RunningBank(bank_id, config.banks[bank_id], service, clock, keys, root, service.username, pw, rt, own)
