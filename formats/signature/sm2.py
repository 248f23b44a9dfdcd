"""Detached SM2 signatures with SM3 digests (GB/T 32918.2, GM/T 0009), content streamed.

The signed value is ``e = SM3(Z || M)`` where ``Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA)``
(GB/T 32918.2 §5.5, default ID ``1234567812345678`` per GM/T 0009). ``M`` arrives as chunks and is
hashed as it comes, so memory does not grow with the file. The point arithmetic is gmssl's
(pure Python, slow but done once per file); SM3 is OpenSSL's through ``hashlib`` when it has it,
else :class:`SM3`, an incremental pure-Python SM3 built on gmssl's compression function.

A bare SM2 signature (``SEQUENCE { r INTEGER, s INTEGER }``) does not say who signed, so a
signature made here is wrapped with the signer's key identifier, letting a verifier tell an
unknown signer from altered content::

    SM2DetachedSignature ::= SEQUENCE {
        signerKeyId  OCTET STRING,   -- SM3(04 || X || Y) of the signer's public key
        signature    SM2Signature }  -- SEQUENCE { r INTEGER, s INTEGER }, GM/T 0009

:func:`sm2_signature_value` extracts the bare GM/T 0009 value (what ``openssl pkeyutl`` reads
and writes); :func:`sm2_verify_detached` accepts either form.

Keys are gmssl hex: private 64 hex digits, public 128 (``X||Y``; a leading ``04`` is allowed).

>>> from formats.signature.keys import make_sm2_keypair
>>> private_hex, public_hex = make_sm2_keypair()
>>> sig = sm2_sign_detached([b"roster ", b"bytes"], private_hex, public_hex)
>>> sm2_verify_detached([b"roster bytes"], sig, public_hex, source="r.txt")
>>> sm2_verify_detached([b"roster bytez"], sig, public_hex, source="r.txt")
Traceback (most recent call last):
...
formats.errors.SignatureInvalid: r.txt: signature: SM2 signature does not verify with the pinned key (content altered?)
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from typing import Iterable

from asn1crypto import core as asn1

from formats.errors import FormatError, MalformedInput, SignatureInvalid, Unsigned, UnknownSigner

DEFAULT_USER_ID = b"1234567812345678"

# GB/T 32918.5 recommended curve parameters.
_P = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF", 16)
_A = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC", 16)
_B = int("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93", 16)
_N = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
_GX = int("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7", 16)
_GY = int("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0", 16)


# --------------------------------------------------------------------------- SM3


class SM3:
    """Incremental SM3 (GB/T 32905) with ``update()`` / ``digest()`` / ``hexdigest()``.

    >>> h = SM3(); h.update(b"a"); h.update(b"bc"); h.hexdigest()
    '66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0'
    """

    digest_size = 32
    block_size = 64
    name = "sm3"

    def __init__(self, data: bytes = b"") -> None:
        from gmssl.sm3 import IV

        self._state = list(IV)
        self._buffer = b""
        self._length = 0
        self.update(data)

    def update(self, data: bytes) -> None:
        from gmssl.sm3 import sm3_cf

        self._length += len(data)
        buffer = self._buffer + bytes(data)
        whole = len(buffer) - len(buffer) % 64
        for start in range(0, whole, 64):
            self._state = sm3_cf(self._state, list(buffer[start : start + 64]))
        self._buffer = buffer[whole:]

    def copy(self) -> "SM3":
        other = SM3.__new__(SM3)
        other._state, other._buffer, other._length = list(self._state), self._buffer, self._length
        return other

    def digest(self) -> bytes:
        from gmssl.sm3 import sm3_cf

        tail = self._buffer + b"\x80"
        tail += b"\x00" * ((56 - len(tail)) % 64) + struct.pack(">Q", (self._length * 8) % (1 << 64))
        state = self._state
        for start in range(0, len(tail), 64):
            state = sm3_cf(state, list(tail[start : start + 64]))
        return b"".join(struct.pack(">I", word) for word in state)

    def hexdigest(self) -> str:
        return self.digest().hex()


def new_sm3(data: bytes = b""):
    """An SM3 hash object: OpenSSL's via ``hashlib`` when available (fast), else :class:`SM3`."""
    try:
        return hashlib.new("sm3", data)
    except ValueError:
        return SM3(data)


# --------------------------------------------------------------------------- keys and encoding


class _SM2Signature(asn1.Sequence):
    _fields = [("r", asn1.Integer), ("s", asn1.Integer)]


class _SM2DetachedSignature(asn1.Sequence):
    _fields = [("signer_key_id", asn1.OctetString), ("signature", _SM2Signature)]


def _as_text(value) -> str:
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("ascii", errors="replace")
    return str(value).strip().lower()


def _public_point(public_key_hex, *, field: str) -> tuple[int, int]:
    """``(x, y)`` of a gmssl public key hex, checked to be on the SM2 curve (a configuration error if not)."""
    text = _as_text(public_key_hex)
    if len(text) == 130 and text.startswith("04"):
        text = text[2:]
    try:
        if len(text) != 128:
            raise ValueError(f"{len(text)} hex digits, expected 128")
        x, y = int(text[:64], 16), int(text[64:], 16)
    except ValueError as exc:
        raise FormatError(f"SM2 public key is not X||Y hex: {exc}", field=field) from None
    if not (x < _P and y < _P and (y * y - (x * x * x + _A * x + _B)) % _P == 0):
        raise FormatError("SM2 public key is not a point on the SM2 curve", field=field)
    return x, y


def sm2_key_id(public_key_hex) -> bytes:
    """SM3 of the uncompressed public point ``04||X||Y``: how a signature names its signer."""
    x, y = _public_point(public_key_hex, field="public_key")
    return new_sm3(b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")).digest()


def _z_value(x: int, y: int, user_id: bytes) -> bytes:
    """``Z_A`` of GB/T 32918.2 §5.5."""
    if len(user_id) * 8 >= 1 << 16:
        raise FormatError("SM2 user ID longer than 8191 bytes", field="user_id")
    material = struct.pack(">H", len(user_id) * 8) + user_id
    for number in (_A, _B, _GX, _GY, x, y):
        material += number.to_bytes(32, "big")
    return new_sm3(material).digest()


def _message_digest(chunks: Iterable[bytes], x: int, y: int, user_id: bytes) -> bytes:
    running = new_sm3(_z_value(x, y, user_id))
    for chunk in chunks:
        running.update(chunk)
    return running.digest()


def _crypt(private_key_hex: str, x: int, y: int):
    from gmssl.sm2 import CryptSM2

    crypt = CryptSM2(private_key=private_key_hex, public_key="")
    # Set after construction: gmssl's constructor strips "04" with lstrip, which also eats
    # leading '0'/'4' digits of X.
    crypt.public_key = f"{x:064x}{y:064x}"
    return crypt


# --------------------------------------------------------------------------- sign / verify


def sm2_sign_detached(
    chunks: Iterable[bytes], private_key_hex, public_key_hex, *, user_id: bytes = DEFAULT_USER_ID
) -> bytes:
    """Sign the concatenated ``chunks``; returns the DER ``SM2DetachedSignature``.

    :param chunks: the content, streamed; consumed once.
    :param private_key_hex: 64 hex digits (str or ASCII bytes).
    :param public_key_hex: the matching public key, 128 hex digits (used in ``Z`` and the key id).
    :param user_id: the signer's distinguishing ID, agreed with the verifier.
    :raises FormatError: unusable keys, or the key pair does not match.
    """
    x, y = _public_point(public_key_hex, field="public_key")
    private_text = _as_text(private_key_hex)
    try:
        d = int(private_text, 16)
    except ValueError:
        raise FormatError("SM2 private key is not hex", field="private_key") from None
    if not 1 <= d <= _N - 2:
        raise FormatError("SM2 private key out of range", field="private_key")
    crypt = _crypt(f"{d:064x}", x, y)
    if crypt._kg(d, crypt.ecc_table["g"]).lower() != f"{x:064x}{y:064x}":
        raise FormatError("SM2 public key does not belong to the private key", field="public_key")
    e = _message_digest(chunks, x, y, user_id)
    value = None
    while value is None:  # gmssl returns None for the rare unusable k; draw another
        value = crypt.sign(e, f"{secrets.randbelow(_N - 1) + 1:064x}")
    r, s = int(value[:64], 16), int(value[64:], 16)
    return _SM2DetachedSignature(
        {"signer_key_id": sm2_key_id(public_key_hex), "signature": {"r": r, "s": s}}
    ).dump()


def sm2_signature_value(signature: bytes) -> bytes:
    """The bare GM/T 0009 ``SEQUENCE { r, s }`` inside an ``SM2DetachedSignature`` (for openssl)."""
    return _SM2DetachedSignature.load(signature, strict=True)["signature"].dump(force=True)


def _parse(signature: bytes, *, source: str) -> tuple[bytes | None, int, int]:
    """``(signer key id or None, r, s)`` from either encoding; MalformedInput for anything else."""
    try:
        try:
            envelope = _SM2DetachedSignature.load(signature, strict=True)
            key_id, value = envelope["signer_key_id"].native, envelope["signature"]
            r, s = value["r"].native, value["s"].native
        except (ValueError, TypeError, KeyError):
            key_id = None
            value = _SM2Signature.load(signature, strict=True)
            r, s = value["r"].native, value["s"].native
        if not isinstance(r, int) or not isinstance(s, int) or (key_id is not None and not isinstance(key_id, bytes)):
            raise ValueError("missing fields")
        return key_id, r, s
    except Exception as exc:  # asn1crypto raises many types on garbage
        raise MalformedInput(f"not a DER SM2 signature: {type(exc).__name__}: {exc}", source=source,
                             field="signature") from None


def sm2_verify_detached(
    chunks: Iterable[bytes],
    signature: bytes | None,
    pinned_public_key_hex,
    *,
    source: str,
    user_id: bytes = DEFAULT_USER_ID,
) -> None:
    """Check an SM2 signature over the concatenated ``chunks`` against the pinned public key only.

    :param signature: an ``SM2DetachedSignature`` or a bare GM/T 0009 ``SEQUENCE { r, s }`` (DER).
    :param pinned_public_key_hex: the one key allowed to have signed.
    :param source: the signed file's name, for errors.
    :raises Unsigned: no signature, or empty bytes.
    :raises MalformedInput: the bytes are not a DER SM2 signature.
    :raises UnknownSigner: the signature names a different signer key.
    :raises SignatureInvalid: the content or the signature was altered (or, for a bare signature,
        another key signed: a bare signature cannot tell).
    """
    if signature is None or not bytes(signature).strip():
        raise Unsigned("no SM2 signature (missing or empty)", source=source, field="signature")
    x, y = _public_point(pinned_public_key_hex, field="pinned_public_key")
    key_id, r, s = _parse(bytes(signature), source=source)
    if key_id is not None and key_id != sm2_key_id(pinned_public_key_hex):
        raise UnknownSigner(f"signed by key {key_id.hex()[:16]}…, not the pinned key", source=source,
                            field="signerKeyId", value=key_id.hex())
    e = _message_digest(chunks, x, y, user_id)
    if not (1 <= r < _N and 1 <= s < _N):
        raise SignatureInvalid("SM2 signature r or s out of range", source=source, field="signature")
    try:
        good = _crypt("0" * 64, x, y).verify(f"{r:064x}{s:064x}", e)
    except (ValueError, ZeroDivisionError, TypeError, IndexError):  # degenerate points in gmssl
        good = False
    if not good:
        raise SignatureInvalid("SM2 signature does not verify with the pinned key (content altered?)",
                               source=source, field="signature")
