"""Keys, certificates and tool runners shared by the signature tests.

Keys are made once per test session (``functools.cache``): RSA generation is the slow part.
``pki()`` holds a test CA with an RSA and an EC leaf, plus an *unrelated* CA and leaf that play
"somebody else" in the unknown-signer tests.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path

from formats.signature.keys import make_leaf, make_sm2_keypair, make_test_ca
from tests.support.tools import missing, require_tool


@dataclass(frozen=True)
class TestPki:
    __test__ = False  # not a pytest test class

    ca_key: bytes
    ca_cert: bytes
    key: bytes
    cert: bytes
    ec_key: bytes
    ec_cert: bytes
    other_ca_cert: bytes
    other_key: bytes
    other_cert: bytes


@functools.cache
def pki() -> TestPki:
    ca_key, ca_cert = make_test_ca("yikatong test CA")
    key, cert = make_leaf(ca_key, ca_cert, "finance bureau signer")
    ec_key, ec_cert = make_leaf(ca_key, ca_cert, "finance bureau EC signer", key_type="ec")
    other_ca_key, other_ca_cert = make_test_ca("somebody else's CA")
    other_key, other_cert = make_leaf(other_ca_key, other_ca_cert, "finance bureau signer")
    return TestPki(ca_key, ca_cert, key, cert, ec_key, ec_cert, other_ca_cert, other_key, other_cert)


@functools.cache
def sm2_pair() -> tuple[str, str]:
    return make_sm2_keypair()


@functools.cache
def other_sm2_pair() -> tuple[str, str]:
    return make_sm2_keypair()


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def run_tool(*args: str | Path) -> subprocess.CompletedProcess:
    """Run an external tool (openssl, xmlsec1) with a timeout; never raises on exit status."""
    return subprocess.run([str(a) for a in args], capture_output=True, timeout=60)


def xmlsec1_verify(directory: Path, document: bytes, *trust: str) -> bool:
    """Whether ``xmlsec1 --verify`` accepts ``document``; trusting the test CA unless ``trust``
    names other options (e.g. ``--pubkey-cert-pem cert.pem``). Skips without xmlsec1 (fails in CI)."""
    xmlsec1 = require_tool("xmlsec1")
    path = write(directory, "signed.xml", document)
    if not trust:
        trust = ("--trusted-pem", str(write(directory, "ca.pem", pki().ca_cert)))
    return run_tool(xmlsec1, "--verify", *trust, path).returncode == 0


@functools.cache
def _openssl_has_sm2() -> bool:
    listing = run_tool("openssl", "list", "-public-key-algorithms").stdout
    digests = run_tool("openssl", "list", "-digest-algorithms").stdout
    return b"SM2" in listing and b"SM3" in digests.upper()


def require_openssl_sm2() -> None:
    """An ``openssl`` with SM2 and SM3, else skip (fail under ``CI=true``)."""
    require_tool("openssl")
    if not _openssl_has_sm2():
        missing("this openssl has no SM2/SM3")
