import pytest
from sqlalchemy.orm import Session

from gateway.config import load
from gateway.privacy import PiiVault


@pytest.fixture(scope="session")
def cfg(tmp_path_factory):
    from pathlib import Path

    return load(Path(__file__).resolve().parents[2] / "config")


@pytest.fixture(scope="session")
def vault():
    return PiiVault.from_text(PiiVault.new_key_line("k1"))


@pytest.fixture
def session(engine):
    with Session(engine) as s:
        yield s
