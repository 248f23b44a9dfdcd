"""Fixtures for the transport tests: a Twisted reactor in a thread, a real OpenSSH server, keys.

Reactor in a thread
    ``twisted_reactor`` (session-wide) is the global reactor running in a daemon thread: the
    simulators' ``simulators.testing.reactor_thread()`` when importable (one reactor thread per
    process, whichever test directory runs first), else a small fallback here. ``in_reactor(fn,
    *args)`` calls ``fn`` in the reactor thread and blocks until its Deferred fires, returning the
    result or raising the error (``blockingCallFromThread``), with a timeout. Tests stay plain
    synchronous pytest functions. The fixture could move to ``tests/conftest.py`` as is.

OpenSSH server
    ``sshd`` starts ``/usr/sbin/sshd -D -e -f <tmp>/sshd_config`` on 127.0.0.1 at a free port (retried
    if another process takes the port first) with a temporary ed25519 host key, our client key in a
    temporary ``AuthorizedKeysFile`` and ``internal-sftp``, as the current user (root is fine:
    ``PermitRootLogin prohibit-password``). Its log is in ``Sshd.log``. Stopped at the end of the test.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sshd_server import SSHD, ssh_keygen, start_sshd
from tests.support.tools import require_tool

# ------------------------------------------------------------------------- reactor in a thread


class ReactorThread:
    """The global reactor running in a daemon thread (fallback when ``simulators.testing`` is absent)."""

    def __init__(self) -> None:
        from twisted.internet import reactor  # only here: tests own the global reactor

        self.reactor = reactor
        if not reactor.running:
            threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False},
                             name="reactor", daemon=True).start()
        deadline = time.monotonic() + 5
        while not reactor.running:
            if time.monotonic() > deadline:
                raise RuntimeError("reactor did not start")
            time.sleep(0.01)

    def call(self, fn, *args, **kwargs):
        from twisted.internet.threads import blockingCallFromThread

        return blockingCallFromThread(self.reactor, fn, *args, **kwargs)


def shared_reactor_thread():
    """The process's one reactor thread: the simulators' (``simulators.testing.reactor_thread``)
    when importable, so ``pytest tests`` never starts the reactor twice; else our own."""
    try:
        from simulators.testing import reactor_thread
    except Exception:  # noqa: BLE001 - absent or broken: fall back to ours
        return ReactorThread()
    return reactor_thread()


class Caller:
    """``call(fn, *args, timeout=60, **kw)``: run ``fn`` in the reactor thread, wait for its
    Deferred, return its result or raise its error; a test never hangs past ``timeout``."""

    def __init__(self, rt) -> None:
        self.rt = rt
        self.reactor = rt.reactor

    def call(self, fn, *args, timeout: float = 60.0, **kwargs):
        from twisted.internet import defer

        def start():
            return defer.maybeDeferred(fn, *args, **kwargs).addTimeout(timeout, self.reactor)

        return self.rt.call(start)


@pytest.fixture(scope="session")
def twisted_reactor() -> Caller:
    """``.reactor`` (pass it to the code under test) and ``.call`` (see :class:`Caller`)."""
    return Caller(shared_reactor_thread())


@pytest.fixture
def in_reactor(twisted_reactor):
    return twisted_reactor.call


# -------------------------------------------------------------------------------------- sshd


@pytest.fixture(scope="session")
def ssh_keys(tmp_path_factory) -> dict[str, Path]:
    """Host keys and client keys, made once (ssh-keygen)."""
    require_tool(SSHD)
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
