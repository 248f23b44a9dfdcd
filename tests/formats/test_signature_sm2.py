"""SM2/SM3: incremental SM3 equals gmssl's and OpenSSL's; SM2 signatures cross-checked with openssl."""

from __future__ import annotations

import functools
import hashlib

import pytest
from gmssl.sm3 import sm3_hash
from hypothesis import given, settings, strategies as st

from formats.errors import FormatError, MalformedInput, SignatureInvalid, UnknownSigner, Unsigned
from formats.signature.keys import make_sm2_keypair, sm2_private_key_pem, sm2_public_key_pem
from formats.signature.sm2 import (
    SM3,
    new_sm3,
    sm2_key_id,
    sm2_sign_detached,
    sm2_signature_value,
    sm2_verify_detached,
)

try:
    from signing_fixtures import other_sm2_pair, require_openssl_sm2, run_tool, sm2_pair, write
except ImportError:  # tests/ imported as a package
    from tests.formats.signing_fixtures import other_sm2_pair, require_openssl_sm2, run_tool, sm2_pair, write


@pytest.fixture
def openssl_sm2():
    require_openssl_sm2()


needs_openssl_sm2 = pytest.mark.usefixtures("openssl_sm2")

CONTENT = "D|张三|500101199001011234|6222020200112233445|120.00\r\n".encode("gbk") * 40


def chunked(data: bytes, size: int = 13):
    for i in range(0, len(data), size):
        yield data[i : i + size]


# --------------------------------------------------------------------------- SM3

SM3_VECTORS = [  # GB/T 32905-2016 appendix A
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
]


@pytest.mark.parametrize("message, expected", SM3_VECTORS)
def test_sm3_standard_vectors(message, expected):
    assert SM3(message).hexdigest() == expected
    assert sm3_hash(list(message)) == expected
    assert new_sm3(message).hexdigest() == expected


@settings(max_examples=60, deadline=None)
@given(message=st.binary(max_size=300), cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=6))
def test_incremental_sm3_equals_gmssl_whole_input_hash(message, cuts):
    running = SM3()
    start = 0
    for cut in sorted(c for c in cuts if c <= len(message)) + [len(message)]:
        running.update(message[start:cut])
        start = cut
    assert running.hexdigest() == sm3_hash(list(message))
    if "sm3" in hashlib.algorithms_available:
        assert running.digest() == hashlib.new("sm3", message).digest()


def test_sm3_copy_is_independent():
    a = SM3(b"ab")
    b = a.copy()
    b.update(b"c")
    assert a.hexdigest() == SM3(b"ab").hexdigest() and b.hexdigest() == SM3_VECTORS[0][1]


# --------------------------------------------------------------------------- keys


def test_key_pair_is_on_the_curve_and_has_a_stable_id():
    private_hex, public_hex = make_sm2_keypair()
    assert len(private_hex) == 64 and len(public_hex) == 128
    assert sm2_key_id(public_hex) == sm2_key_id("04" + public_hex) == sm2_key_id(public_hex.encode())


@pytest.mark.parametrize(
    "public, error",
    [("00" * 64, "not a point"), ("abc", "128"), ("zz" * 64, "hex")],
)
def test_bad_pinned_public_key_is_a_configuration_error(public, error):
    with pytest.raises(FormatError, match=error):
        sm2_verify_detached([b"x"], b"\x30\x00", public, source="x")


def test_mismatched_key_pair_is_refused_when_signing():
    with pytest.raises(FormatError, match="does not belong"):
        sm2_sign_detached([b"x"], sm2_pair()[0], other_sm2_pair()[1])


def test_public_keys_with_leading_0_or_4_digits_work():
    """gmssl's CryptSM2 strips '04' with lstrip, eating leading 0/4 digits of X; we avoid it."""
    for _ in range(400):
        private_hex, public_hex = make_sm2_keypair()
        if public_hex[0] in "04":
            break
    else:  # pragma: no cover - 1 - (14/16)^400 chance
        pytest.skip("no key with a leading 0/4 digit drawn")
    sig = sm2_sign_detached([CONTENT], private_hex, public_hex)
    sm2_verify_detached([CONTENT], sig, public_hex, source="x")


# --------------------------------------------------------------------------- sign / verify


def test_round_trip_with_streamed_content():
    private_hex, public_hex = sm2_pair()
    sig = sm2_sign_detached(chunked(CONTENT), private_hex, public_hex)
    sm2_verify_detached(chunked(CONTENT, 1000), sig, public_hex, source="x")
    sm2_verify_detached([CONTENT], sm2_signature_value(sig), public_hex, source="x")  # bare form too


def test_keys_may_be_given_as_ascii_bytes():
    private_hex, public_hex = sm2_pair()
    sig = sm2_sign_detached([CONTENT], private_hex.encode(), public_hex.encode())
    sm2_verify_detached([CONTENT], sig, public_hex.encode(), source="x")


@functools.cache
def _good():
    """One signature for the session: SM2 signatures are randomised, hypothesis needs stable input."""
    return sm2_sign_detached([CONTENT], *sm2_pair())


def _out_of_range_bare() -> bytes:
    from formats.signature.sm2 import _N, _SM2Signature

    return _SM2Signature({"r": _N, "s": 1}).dump()


REFUSALS = [
    ("missing", lambda: (CONTENT, None), Unsigned),
    ("empty", lambda: (CONTENT, b""), Unsigned),
    ("blank", lambda: (CONTENT, b"\n"), Unsigned),
    ("content altered", lambda: (CONTENT.replace(b"120.00", b"920.00", 1), _good()), SignatureInvalid),
    ("content truncated", lambda: (CONTENT[:-2], _good()), SignatureInvalid),
    ("other key", lambda: (CONTENT, sm2_sign_detached([CONTENT], *other_sm2_pair())), UnknownSigner),
    ("other key, bare signature", lambda: (CONTENT, sm2_signature_value(sm2_sign_detached([CONTENT], *other_sm2_pair()))),
     SignatureInvalid),
    ("other user id", lambda: (CONTENT, sm2_sign_detached([CONTENT], *sm2_pair(), user_id=b"ALICE")), SignatureInvalid),
    ("r out of range", lambda: (CONTENT, _out_of_range_bare()), SignatureInvalid),
    ("garbage", lambda: (CONTENT, b"-----BEGIN SIGNATURE-----"), MalformedInput),
    ("truncated DER", lambda: (CONTENT, _good()[:-3]), MalformedInput),
]


@pytest.mark.parametrize("case, make, error", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_each_have_their_own_error(case, make, error):
    content, sig = make()
    with pytest.raises(error) as caught:
        sm2_verify_detached(chunked(content), sig, sm2_pair()[1], source="CCB/result.txt")
    assert type(caught.value) is error
    assert caught.value.source == "CCB/result.txt"


@settings(max_examples=15, deadline=None)
@given(content=st.binary(max_size=2000), size=st.integers(min_value=1, max_value=500))
def test_random_content_signs_and_verifies(content, size):
    private_hex, public_hex = sm2_pair()
    sig = sm2_sign_detached(chunked(content, size), private_hex, public_hex)
    sm2_verify_detached([content], sig, public_hex, source="x")
    with pytest.raises(SignatureInvalid):
        sm2_verify_detached([content + b"\x00"], sig, public_hex, source="x")


@settings(max_examples=300, deadline=None)
@given(signature=st.binary(max_size=120))
def test_any_bytes_as_signature_give_a_format_error(signature):
    with pytest.raises(FormatError):
        sm2_verify_detached([CONTENT], signature, sm2_pair()[1], source="x")


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_damaged_real_signature_gives_a_format_error(data):
    sig = bytearray(_good())
    at = data.draw(st.integers(min_value=0, max_value=len(sig) - 1))
    sig[at] ^= data.draw(st.integers(min_value=1, max_value=255))
    with pytest.raises(FormatError):  # every byte of this encoding matters
        sm2_verify_detached([CONTENT], bytes(sig), sm2_pair()[1], source="x")


# --------------------------------------------------------------------------- openssl, independently


@needs_openssl_sm2
@pytest.mark.parametrize("user_id", [b"1234567812345678", b"ALICE123@YAHOO.COM"])
def test_openssl_verifies_our_sm2_signature(tmp_path, user_id):
    private_hex, public_hex = sm2_pair()
    sig = sm2_sign_detached(chunked(CONTENT), private_hex, public_hex, user_id=user_id)
    args = ["openssl", "pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pubin",
            "-inkey", write(tmp_path, "pub.pem", sm2_public_key_pem(public_hex)),
            "-in", write(tmp_path, "content", CONTENT), "-pkeyopt", f"distid:{user_id.decode()}"]
    ok = run_tool(*args, "-sigfile", write(tmp_path, "sig.der", sm2_signature_value(sig)))
    assert ok.returncode == 0 and b"Verified Successfully" in ok.stdout, ok.stdout + ok.stderr
    other = sm2_sign_detached([CONTENT + b"!"], private_hex, public_hex, user_id=user_id)
    bad = run_tool(*args, "-sigfile", write(tmp_path, "other.der", sm2_signature_value(other)))
    assert bad.returncode != 0


@needs_openssl_sm2
def test_openssl_sm2_signature_is_accepted(tmp_path):
    private_hex, public_hex = sm2_pair()
    made = run_tool("openssl", "pkeyutl", "-sign", "-rawin", "-digest", "sm3",
                    "-inkey", write(tmp_path, "key.pem", sm2_private_key_pem(private_hex, public_hex)),
                    "-in", write(tmp_path, "content", CONTENT), "-out", tmp_path / "sig.der",
                    "-pkeyopt", "distid:1234567812345678")
    assert made.returncode == 0, made.stderr
    sig = (tmp_path / "sig.der").read_bytes()
    sm2_verify_detached(chunked(CONTENT), sig, public_hex, source="x")
    with pytest.raises(SignatureInvalid):
        sm2_verify_detached([CONTENT[1:]], sig, public_hex, source="x")
