"""Fixtures for reconciliation tests; the builders live in ``tests.support.recon``."""

import pytest

from tests.support.recon import make_pii_vault, make_signing_keys


@pytest.fixture(scope="session")
def signing_keys():
    return make_signing_keys()


@pytest.fixture(scope="session")
def pii_vault():
    return make_pii_vault()
