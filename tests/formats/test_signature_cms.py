"""Detached CMS: our signatures pass ``openssl cms -verify``; openssl's pass ours; refusals are distinct."""

from __future__ import annotations

import datetime as dt
import functools

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from formats.errors import (
    FormatError,
    MalformedInput,
    SignatureInvalid,
    UnknownSigner,
    Unsigned,
)
from formats.signature.cms import sign_detached, verify_detached
from tests.support.tools import needs_tool

try:
    from signing_fixtures import pki, run_tool, write
except ImportError:  # tests/ imported as a package
    from tests.formats.signing_fixtures import pki, run_tool, write

WHEN = dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.timezone.utc)
CONTENT = "H|0001|2024-03-01|耕地地力保护补贴|3|1234.56\r\n".encode("gbk") * 50

needs_openssl = needs_tool("openssl")


def chunked(data: bytes, size: int = 7):
    """A generator, so a test fails if verify tried to read the content twice."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("which", ["rsa", "ec"])
def test_own_signature_verifies(which):
    p = pki()
    key, cert = (p.key, p.cert) if which == "rsa" else (p.ec_key, p.ec_cert)
    sig = sign_detached(chunked(CONTENT), key, cert, signing_time=WHEN)
    result = verify_detached(chunked(CONTENT, 1000), sig, cert, source="roster.txt")
    assert result.signing_time == WHEN
    assert "finance bureau" in result.signer_subject


@needs_openssl
@pytest.mark.parametrize("which", ["rsa", "ec"])
def test_openssl_cms_verify_accepts_our_signature(tmp_path, which):
    p = pki()
    key, cert = (p.key, p.cert) if which == "rsa" else (p.ec_key, p.ec_cert)
    sig = write(tmp_path, "roster.p7s", sign_detached(chunked(CONTENT), key, cert, signing_time=WHEN))
    content = write(tmp_path, "roster.txt", CONTENT)
    ca = write(tmp_path, "ca.pem", p.ca_cert)
    ok = run_tool("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-content", content,
                  "-CAfile", ca, "-purpose", "any", "-out", tmp_path / "out")
    assert ok.returncode == 0, ok.stderr
    assert b"Verification successful" in ok.stderr
    # ... and openssl, too, refuses the same signature over altered content: the check can fail.
    altered = write(tmp_path, "altered.txt", CONTENT.replace(b"1234.56", b"9234.56", 1))
    bad = run_tool("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-content", altered,
                   "-CAfile", ca, "-purpose", "any", "-out", tmp_path / "out")
    assert bad.returncode != 0


@needs_openssl
@pytest.mark.parametrize(
    "which, extra",
    [
        ("rsa", []),
        ("rsa", ["-noattr"]),
        ("rsa", ["-md", "sha512"]),
        ("ec", []),
    ],
)
def test_openssl_cms_sign_is_accepted(tmp_path, which, extra):
    p = pki()
    key, cert = (p.key, p.cert) if which == "rsa" else (p.ec_key, p.ec_cert)
    content = write(tmp_path, "roster.txt", CONTENT)
    made = run_tool("openssl", "cms", "-sign", "-binary", "-outform", "DER", "-in", content,
                    "-signer", write(tmp_path, "cert.pem", cert), "-inkey", write(tmp_path, "key.pem", key),
                    "-out", tmp_path / "roster.p7s", *extra)
    assert made.returncode == 0, made.stderr
    sig = (tmp_path / "roster.p7s").read_bytes()
    verify_detached(chunked(CONTENT), sig, cert, source="roster.txt")
    with pytest.raises(SignatureInvalid):
        verify_detached([CONTENT + b"x"], sig, cert, source="roster.txt")


@needs_openssl
def test_openssl_pem_armoured_signature_is_accepted(tmp_path):
    p = pki()
    content = write(tmp_path, "roster.txt", CONTENT)
    made = run_tool("openssl", "cms", "-sign", "-binary", "-outform", "PEM", "-in", content,
                    "-signer", write(tmp_path, "cert.pem", p.cert), "-inkey", write(tmp_path, "key.pem", p.key),
                    "-out", tmp_path / "roster.pem")
    assert made.returncode == 0, made.stderr
    verify_detached([CONTENT], (tmp_path / "roster.pem").read_bytes(), p.cert, source="roster.txt")


@needs_openssl
def test_attached_signature_is_refused(tmp_path):
    p = pki()
    content = write(tmp_path, "roster.txt", CONTENT)
    run_tool("openssl", "cms", "-sign", "-nodetach", "-binary", "-outform", "DER", "-in", content,
             "-signer", write(tmp_path, "cert.pem", p.cert), "-inkey", write(tmp_path, "key.pem", p.key),
             "-out", tmp_path / "roster.p7m")
    with pytest.raises(MalformedInput, match="detached"):
        verify_detached([CONTENT], (tmp_path / "roster.p7m").read_bytes(), p.cert, source="roster.txt")


# --------------------------------------------------------------------------- refusals, one error each


@functools.cache
def _good():
    return sign_detached([CONTENT], pki().key, pki().cert, signing_time=WHEN)


REFUSALS = [
    ("missing", lambda: (CONTENT, None, pki().cert), Unsigned),
    ("empty", lambda: (CONTENT, b"", pki().cert), Unsigned),
    ("blank", lambda: (CONTENT, b" \r\n", pki().cert), Unsigned),
    ("content altered", lambda: (CONTENT.replace(b"1234.56", b"1234.57", 1), _good(), pki().cert), SignatureInvalid),
    ("content truncated", lambda: (CONTENT[:-1], _good(), pki().cert), SignatureInvalid),
    ("other key", lambda: (CONTENT, sign_detached([CONTENT], pki().other_key, pki().other_cert,
                                                  signing_time=WHEN), pki().cert), UnknownSigner),
    ("pinned is someone else", lambda: (CONTENT, _good(), pki().ec_cert), UnknownSigner),
    ("garbage", lambda: (CONTENT, b"not a signature at all", pki().cert), MalformedInput),
    ("truncated DER", lambda: (CONTENT, _good()[:-20], pki().cert), MalformedInput),
    ("a certificate, not a signature", lambda: (CONTENT, pki().cert, pki().cert), MalformedInput),
]


@pytest.mark.parametrize("case, make, error", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_each_have_their_own_error(case, make, error):
    content, sig, pinned = make()
    with pytest.raises(error) as caught:
        verify_detached(chunked(content), sig, pinned, source="bank/ICBC/result.txt")
    assert type(caught.value) is error
    assert caught.value.source == "bank/ICBC/result.txt"
    assert "bank/ICBC/result.txt" in str(caught.value)


def test_naive_signing_time_is_refused():
    with pytest.raises(FormatError, match="timezone"):
        sign_detached([CONTENT], pki().key, pki().cert, signing_time=dt.datetime(2024, 3, 1))


def test_signature_is_deterministic_for_rsa():
    """Same inputs, same bytes: golden files need no scrubbing."""
    assert _good() == _good()


# --------------------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.binary(max_size=3000), size=st.integers(min_value=1, max_value=600), data=st.data())
def test_random_content_signs_and_verifies_and_any_change_is_refused(content, size, data):
    p = pki()
    sig = sign_detached(chunked(content, size), p.key, p.cert, signing_time=WHEN)
    verify_detached(chunked(content, max(1, size // 3)), sig, p.cert, source="x")
    changed = content + b"\x00" if not content else bytearray(content)
    if content:
        at = data.draw(st.integers(min_value=0, max_value=len(content) - 1))
        changed[at] ^= data.draw(st.integers(min_value=1, max_value=255))
    with pytest.raises(SignatureInvalid):
        verify_detached([bytes(changed)], sig, p.cert, source="x")


@settings(max_examples=300, deadline=None)
@given(signature=st.binary(max_size=400))
def test_any_bytes_as_signature_give_a_format_error(signature):
    with pytest.raises(FormatError):
        verify_detached([CONTENT], signature, pki().cert, source="x")


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_damaged_real_signature_gives_a_format_error_or_still_verifies(data):
    """Bytes outside what is signed (e.g. the embedded certificate, never trusted) may change
    harmlessly; anything else must be a FormatError, never another exception."""
    good = _good()
    sig = bytearray(good)
    at = data.draw(st.integers(min_value=0, max_value=len(sig) - 1))
    sig[at] ^= data.draw(st.integers(min_value=1, max_value=255))
    try:
        verify_detached([CONTENT], bytes(sig), pki().cert, source="x")
    except FormatError:
        return
    # where the [0] IMPLICIT signedAttrs are, found by parsing (the bytes a0 69 also turn up by chance
    # inside the embedded certificate, which may change harmlessly)
    from asn1crypto import cms as asn1_cms

    signed_attrs = asn1_cms.ContentInfo.load(good)["content"]["signer_infos"][0]["signed_attrs"].dump()
    signed_attrs_at = good.rfind(signed_attrs)
    assert signed_attrs_at > 0 and good.count(signed_attrs) == 1
    assert not (len(good) - 256 <= at), "a changed signature value (RSA-2048, ends the DER) verified"
    assert not (signed_attrs_at <= at < signed_attrs_at + len(signed_attrs)), "changed signed attributes verified"


# --------------------------------------------------------------------------- the scheme registry


def test_registry_gives_each_scheme_one_face():
    from formats.signature import get_scheme
    from formats.signature.keys import make_sm2_keypair

    p = pki()
    cms_scheme = get_scheme("cms")
    sig = cms_scheme.sign(chunked(CONTENT), p.key, p.cert, signing_time=WHEN)
    assert cms_scheme.verify(chunked(CONTENT), sig, p.cert, source="f") is None
    with pytest.raises(SignatureInvalid):
        cms_scheme.verify([b"other"], sig, p.cert, source="f")

    private_hex, public_hex = make_sm2_keypair()
    sm2_scheme = get_scheme("sm2")
    sig = sm2_scheme.sign(chunked(CONTENT), private_hex.encode(), public_hex.encode())
    sm2_scheme.verify(chunked(CONTENT), sig, public_hex.encode(), source="f")
    with pytest.raises(Unsigned):
        sm2_scheme.verify([CONTENT], b"", public_hex, source="f")

    xml_scheme = get_scheme("xmldsig")
    signed = xml_scheme.sign(b"<r><a>1</a></r>", p.key, p.cert)
    assert xml_scheme.verify(signed, p.cert, source="f") == b"<r><a>1</a></r>"
    assert (cms_scheme.kind, sm2_scheme.kind, xml_scheme.kind) == ("detached", "detached", "enveloped")


@pytest.mark.parametrize("name", ["CMS", "rsa", "", None])
def test_unknown_scheme_is_a_format_error_naming_the_known_ones(name):
    from formats.signature import get_scheme

    with pytest.raises(FormatError, match="cms, sm2, xmldsig"):
        get_scheme(name)


@pytest.mark.parametrize("module", ["__init__", "cms", "keys", "sm2", "xmldsig"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    name = "formats.signature" if module == "__init__" else f"formats.signature.{module}"
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0


# --------------------------------------------------------------------------- keys.py certificates serve TLS too


@needs_openssl
@pytest.mark.parametrize(
    "server, client, purpose, ok",
    [
        (True, False, "sslserver", True),
        (False, True, "sslclient", True),
        (True, True, "sslclient", True),
        (True, False, "sslclient", False),  # the check can fail: EKU is honoured
    ],
)
def test_leaf_certificates_verify_for_their_tls_purpose(tmp_path, server, client, purpose, ok):
    from formats.signature.keys import make_leaf

    p = pki()
    _, cert = make_leaf(p.ca_key, p.ca_cert, "bank-sim", server=server, client=client, key_type="ec")
    result = run_tool("openssl", "verify", "-CAfile", write(tmp_path, "ca.pem", p.ca_cert), "-purpose", purpose,
                      write(tmp_path, "leaf.pem", cert))
    assert (result.returncode == 0) is ok, result.stdout + result.stderr
    if ok:
        assert b"127.0.0.1" in run_tool("openssl", "x509", "-noout", "-ext", "subjectAltName",
                                        "-in", tmp_path / "leaf.pem").stdout
