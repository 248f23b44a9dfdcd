"""Shared fixtures for the ISO 20022 codec tests: golden files, xmllint, c14n check."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest
from lxml import etree

from tests.support.tools import require_tool

GOLDEN = pathlib.Path(__file__).parent / "golden"


@pytest.fixture
def golden():
    """``golden(name, data=None)``: return the golden file's bytes; with ``data`` compare (or
    rewrite when ``YKT_REGEN_GOLDEN=1``)."""

    def check(name: str, data: bytes | None = None) -> bytes:
        path = GOLDEN / name
        if data is not None and os.environ.get("YKT_REGEN_GOLDEN") == "1":
            path.write_bytes(data)
        expected = path.read_bytes()
        if data is not None:
            assert data == expected, f"{name} differs from golden file (YKT_REGEN_GOLDEN=1 to accept)"
        return expected

    return check


@pytest.fixture
def xmllint(tmp_path):
    """``xmllint(data, xsd_path)`` runs ``xmllint --noout --schema``; asserts it validates."""
    exe = require_tool("xmllint")
    counter = iter(range(10**9))

    def run(data: bytes, xsd: pathlib.Path) -> None:
        f = tmp_path / f"doc{next(counter)}.xml"
        f.write_bytes(data)
        proc = subprocess.run([exe, "--noout", "--schema", str(xsd), str(f)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr

    return run


@pytest.fixture
def assert_canonical():
    """Body after the XML declaration equals its own exclusive c14n."""

    def check(data: bytes) -> None:
        decl, _, body = data.partition(b"\n")
        assert decl == b'<?xml version="1.0" encoding="UTF-8"?>'
        assert etree.tostring(etree.fromstring(body), method="c14n", exclusive=True) == body

    return check
