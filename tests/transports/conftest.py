"""Fixtures for the transport tests: a Twisted reactor in a thread, a real OpenSSH server, keys.

Reactor in a thread
    ``twisted_reactor`` (session-wide) runs the global reactor in a daemon thread, started once,
    never stopped (a reactor cannot be restarted). ``in_reactor(fn, *args)`` calls ``fn`` in the
    reactor thread and blocks until its Deferred fires, returning the result or raising the
    error (``blockingCallFromThread``). Tests stay plain synchronous pytest functions. When
    ``tests/simulators/conftest.py`` provides the same thing, both can move to ``tests/conftest.py``.

OpenSSH server
    ``sshd`` starts ``/usr/sbin/sshd -D -e -f <tmp>/sshd_config`` on 127.0.0.1 at a free port (retried
    if another process takes the port first) with a temporary ed25519 host key, our client key in a
    temporary ``AuthorizedKeysFile`` and ``internal-sftp``, as the current user (root is fine:
    ``PermitRootLogin prohibit-password``). Its log is in ``Sshd.log``. Stopped at the end of the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


# ------------------------------------------------------------------------- reactor in a thread


class ReactorThread:
    """The global reactor running in a daemon thread; call into it with :meth:`call`."""

    def __init__(self) -> None:
        from twisted.internet import reactor  # only here: tests own the global reactor

        self.reactor = reactor
        self.thread = threading.Thread(
            target=reactor.run, kwargs={"installSignalHandlers": False}, name="reactor", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 5
        while not reactor.running:
            if time.monotonic() > deadline:
                raise RuntimeError("reactor did not start")
            time.sleep(0.01)

    def call(self, fn, *args, timeout: float = 60.0, **kwargs):
        """Run ``fn(*args, **kwargs)`` in the reactor thread; wait for its (Deferred) result."""
        from twisted.internet import defer
        from twisted.internet.threads import blockingCallFromThread

        def start():
            d = defer.maybeDeferred(fn, *args, **kwargs)
            d.addTimeout(timeout, self.reactor)
            return d

        return blockingCallFromThread(self.reactor, start)


_REACTOR: ReactorThread | None = None


@pytest.fixture(scope="session")
def twisted_reactor() -> ReactorThread:
    global _REACTOR
    if _REACTOR is None:
        _REACTOR = ReactorThread()
    return _REACTOR


@pytest.fixture
def in_reactor(twisted_reactor):
    return twisted_reactor.call


# -------------------------------------------------------------------------------------- sshd


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ssh_keygen(path: Path, kind: str = "ed25519") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", path.name, "-f", str(path)],
                   check=True, capture_output=True)
    return path


@dataclass
class Sshd:
    port: int
    root: Path  # contains inbox/ and outbox/
    host_pub: Path
    client_key: Path
    log: Path
    proc: subprocess.Popen

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _sshd_config(d: Path, port: int, host_key: Path, authorized: Path) -> Path:
    cfg = d / "sshd_config"
    cfg.write_text(f"""\
ListenAddress 127.0.0.1
Port {port}
HostKey {host_key}
PidFile {d / 'sshd.pid'}
AuthorizedKeysFile {authorized}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
LogLevel VERBOSE
Subsystem sftp internal-sftp
""")
    return cfg


def start_sshd(d: Path, host_key: Path, authorized_pubs: list[Path]) -> Sshd:
    """Start a real OpenSSH server serving ``d/root`` on a free loopback port."""
    root = d / "root"
    (root / "inbox").mkdir(parents=True, exist_ok=True)
    (root / "outbox").mkdir(parents=True, exist_ok=True)
    authorized = d / "authorized_keys"
    authorized.write_text("".join(p.read_text() for p in authorized_pubs))
    os.makedirs("/run/sshd", exist_ok=True)  # privilege-separation directory sshd insists on
    for _attempt in range(5):
        port = free_port()
        cfg = _sshd_config(d, port, host_key, authorized)
        log = d / f"sshd-{port}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break  # e.g. the port was taken meanwhile: try another
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return Sshd(port, root, Path(f"{host_key}.pub"), Path(), log, proc)
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    raise RuntimeError(f"sshd did not start; last log:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="session")
def ssh_keys(tmp_path_factory) -> dict[str, Path]:
    """Host keys and client keys, made once (ssh-keygen)."""
    if not shutil.which(SSHD) and not os.path.exists(SSHD):
        pytest.skip("OpenSSH server not installed")
    d = tmp_path_factory.mktemp("sshkeys")
    return {
        "host": ssh_keygen(d / "host_ed25519"),
        "other_host": ssh_keygen(d / "other_host_ed25519"),
        "client": ssh_keygen(d / "client_ed25519"),
        "stranger": ssh_keygen(d / "stranger_ed25519"),
    }


@pytest.fixture
def sshd(tmp_path, ssh_keys):
    server = start_sshd(tmp_path / "sshd", ssh_keys["host"], [Path(f"{ssh_keys['client']}.pub")])
    server.client_key = ssh_keys["client"]
    yield server
    server.stop()
