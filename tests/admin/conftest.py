import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from gateway.config import load
from gateway.privacy import PiiVault

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "validation"))  # vhelp: people and cards


@pytest.fixture(scope="session")
def cfg():
    return load(Path(__file__).resolve().parents[2] / "config")


@pytest.fixture(scope="session")
def vault():
    return PiiVault.from_text(PiiVault.new_key_line("k1"))


@pytest.fixture
def session(engine):
    with Session(engine) as s:
        yield s


@pytest.fixture(scope="session")
def call_in_reactor():
    """Run a function returning a Deferred in the global reactor (started in a daemon thread if no
    other fixture has started it) and block for its result."""
    from twisted.internet import defer, reactor
    from twisted.internet.threads import blockingCallFromThread

    from simulators.testing import reactor_thread

    reactor_thread()  # the process's one reactor thread, shared with the simulators

    def call(fn, *args, timeout=30.0, **kw):
        def start():
            d = defer.maybeDeferred(fn, *args, **kw)
            d.addTimeout(timeout, reactor)
            return d

        return blockingCallFromThread(reactor, start)

    return call
