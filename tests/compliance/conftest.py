"""Fixtures of the compliance tests; the builders live in :mod:`compliance_support`."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from compliance_support import KEY_LINE  # noqa: E402
from gateway.config import load  # noqa: E402
from gateway.privacy import PiiVault  # noqa: E402


@pytest.fixture(scope="session")
def cfg():
    return load("config")


@pytest.fixture(scope="session")
def vault():
    return PiiVault.from_text(KEY_LINE)
