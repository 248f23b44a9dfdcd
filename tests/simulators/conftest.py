"""Fixtures for tests that need simulated banks (reuse them: ``from simulators.testing import start_bank``).

How Twisted runs under pytest here: the global reactor runs in ONE background daemon thread for
the whole session (``simulators.testing.reactor_thread``, started on first use with
``installSignalHandlers=False``). Tests stay plain synchronous code; every call into Twisted goes
through ``blockingCallFromThread``. No trial, no pytest-twisted. Each bank listens on 127.0.0.1
with ephemeral ports and is stopped by the fixture, even when the test fails.

* ``sim_keys``   — :class:`simulators.keys.KeyPaths` made once per session in a temporary directory.
* ``bank``       — a factory: ``bank("psbc-xs", scenario=..., seed=0, clock=None)`` -> ``RunningBank``
                   (``sftp_port``, ``https_url``, ``keys``, ``bank_keys``, ``core``, ``advance()``,
                   ``next_working_day()``, ``stop()``); every bank it started is stopped afterwards.
* ``config``     — the real ``config/`` loaded.
"""

from __future__ import annotations

import pytest

from gateway.config import load
from simulators.testing import DEFAULT_CONFIG, shared_keys, start_bank


@pytest.fixture(scope="session")
def config():
    return load(DEFAULT_CONFIG)


@pytest.fixture(scope="session")
def sim_keys(tmp_path_factory):
    return shared_keys(DEFAULT_CONFIG, tmp_path_factory.mktemp("keys"))


@pytest.fixture
def bank(sim_keys, tmp_path):
    started = []

    def start(bank_id: str, **kw):
        kw.setdefault("keys_dir", sim_keys.keys_dir)
        kw.setdefault("root", tmp_path / f"bank-{bank_id}-{len(started)}")
        rb = start_bank(bank_id, **kw)
        started.append(rb)
        return rb

    yield start
    for rb in started:
        rb.stop()
