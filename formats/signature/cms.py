"""Detached CMS / PKCS#7 SignedData (RFC 5652) over content of any size.

The content is read once, as an iterable of byte chunks, into a running digest: memory does not
grow with the content. The signature is DER ``ContentInfo(SignedData)`` without the content
(detached), with the signer's certificate, one ``SignerInfo`` identified by issuer and serial
number, and the signed attributes contentType, signingTime and messageDigest. RSA keys sign
with PKCS#1 v1.5 + SHA-256, EC keys with ECDSA + SHA-256. This is what
``openssl cms -sign -binary -outform DER`` (without ``-nodetach``) makes, and either side verifies
the other's.

>>> import datetime as dt
>>> from formats.signature.keys import make_test_ca, make_leaf
>>> ca_key, ca_cert = make_test_ca("CA")
>>> key, cert = make_leaf(ca_key, ca_cert, "finance bureau")
>>> when = dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.timezone.utc)
>>> sig = sign_detached([b"roster ", b"bytes"], key, cert, signing_time=when)
>>> verify_detached([b"roster bytes"], sig, cert, source="r.txt").signing_time == when
True
>>> verify_detached([b"roster bytez"], sig, cert, source="r.txt")
Traceback (most recent call last):
...
formats.errors.SignatureInvalid: r.txt: messageDigest: content does not match the signature (altered?)
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import re
from dataclasses import dataclass
from typing import Iterable

from asn1crypto import cms, x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from formats.errors import (
    FormatError,
    MalformedInput,
    SignatureInvalid,
    Unsigned,
    UnknownSigner,
    UnsupportedMessage,
)

_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
_PEM_BLOCK = re.compile(rb"-----BEGIN (?:CMS|PKCS7)-----(.*?)-----END (?:CMS|PKCS7)-----", re.S)


@dataclass(frozen=True)
class CmsVerified:
    """What a good detached CMS signature told us: who signed (the pinned cert), when they say."""

    signer_subject: str
    signing_time: dt.datetime | None
    content_digest: bytes


# --------------------------------------------------------------------------- signing


def _digest_chunks(chunks: Iterable[bytes], hash_name: str) -> bytes:
    running = hashlib.new(hash_name)
    for chunk in chunks:
        running.update(chunk)
    return running.digest()


def _load_cert(cert: bytes, *, what: str) -> x509.Certificate:
    """PEM or DER certificate; a bad one is the caller's configuration error (a plain FormatError)."""
    try:
        if b"-----BEGIN" in cert:
            return x509.load_pem_x509_certificate(cert)
        return x509.load_der_x509_certificate(cert)
    except (ValueError, TypeError) as exc:
        raise FormatError(f"{what} is not a PEM or DER X.509 certificate: {exc}", field=what) from None


def _sign_raw(private_key, data: bytes) -> tuple[bytes, str]:
    """Sign ``data`` with SHA-256: returns ``(signature, CMS signature algorithm name)``."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256()), "rsassa_pkcs1v15"
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(data, ec.ECDSA(hashes.SHA256())), "sha256_ecdsa"
    raise FormatError(f"unsupported signing key type {type(private_key).__name__}", field="key")


@functools.lru_cache(maxsize=8)
def _signer(key_pem: bytes, cert_pem: bytes):
    """The loaded key and certificate of a signer, kept for the next file: loading an RSA key checks
    it, which costs more than signing a small file, and a gateway or bank signs hundreds an hour with
    the same one. Keyed by the PEM bytes themselves, so a rotated key is loaded afresh."""
    try:
        private_key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise FormatError(f"signing key is not an unencrypted PEM private key: {exc}", field="key") from None
    cert = _load_cert(cert_pem, what="cert")
    return private_key, asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def sign_detached(
    chunks: Iterable[bytes], key_pem: bytes, cert_pem: bytes, *, signing_time: dt.datetime
) -> bytes:
    """Detached CMS SignedData (DER) over the concatenated ``chunks``.

    :param chunks: the content, streamed; consumed once.
    :param key_pem: the signer's private key (PEM, unencrypted), RSA or EC.
    :param cert_pem: the signer's certificate (PEM or DER); embedded in the signature.
    :param signing_time: timezone-aware; goes into the signingTime signed attribute.
    :raises FormatError: unusable key or certificate, naive ``signing_time``.
    """
    if signing_time.tzinfo is None:
        raise FormatError("signing_time must be timezone-aware", field="signing_time", value=signing_time)
    try:
        private_key, asn1_cert = _signer(bytes(key_pem), bytes(cert_pem))
    except TypeError:  # a str or other non-bytes value
        raise FormatError("signing key and certificate must be PEM bytes", field="key") from None
    digest = _digest_chunks(chunks, "sha256")
    signed_attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
            cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": signing_time})]
                              if 1950 <= signing_time.year < 2050
                              else [cms.Time({"general_time": signing_time})]}),
            cms.CMSAttribute({"type": "message_digest", "values": [digest]}),
        ]
    )
    # RFC 5652 §5.4: the signature covers the DER of the attributes as a SET OF (tag 0x31).
    signature, algorithm = _sign_raw(private_key, signed_attrs.dump())
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {"issuer_and_serial_number": {"issuer": asn1_cert.issuer, "serial_number": asn1_cert.serial_number}}
            ),
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": signed_attrs,
            "signature_algorithm": {"algorithm": algorithm},
            "signature": signature,
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {"content_type": "data"},
            "certificates": [asn1_cert],
            "signer_infos": [signer_info],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


# --------------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class _ParsedSigner:
    hash_name: str
    signature_algorithm: str
    signature: bytes
    signed_attrs_der: bytes | None
    message_digest: bytes | None
    signing_time: dt.datetime | None
    issuer_serial: tuple[bytes, int] | None
    key_identifier: bytes | None
    embedded_certs: tuple[bytes, ...]


def _unarmor(signature: bytes) -> bytes:
    """Accept DER, or PEM armour (``-----BEGIN CMS-----`` / ``PKCS7``) around it."""
    match = _PEM_BLOCK.search(signature)
    if match is None:
        return signature
    return base64.b64decode(match.group(1), validate=False)


def _attr_values(signed_attrs, name: str, *, source: str) -> list:
    found = [a for a in signed_attrs if a["type"].native == name]
    if not found:
        return []
    if len(found) > 1 or len(found[0]["values"]) != 1:
        raise MalformedInput(f"signed attribute {name} must occur once with one value", source=source, field=name)
    return [found[0]["values"][0]]


def _parse(signature_der: bytes, *, source: str) -> _ParsedSigner:
    """Every structural check on the signature bytes; any parse failure becomes MalformedInput."""
    try:
        info = cms.ContentInfo.load(_unarmor(signature_der), strict=True)
        if info["content_type"].native != "signed_data":
            raise MalformedInput(
                f"CMS content type is {info['content_type'].native!r}, not signed_data", source=source, field="contentType"
            )
        signed_data = info["content"]
        if signed_data["encap_content_info"]["content"].native is not None:
            raise MalformedInput("CMS signature carries its content; a detached signature is expected",
                                 source=source, field="encapContentInfo")
        signer_infos = list(signed_data["signer_infos"])
        if len(signer_infos) != 1:
            raise MalformedInput(f"expected exactly one SignerInfo, found {len(signer_infos)}",
                                 source=source, field="signerInfos")
        signer = signer_infos[0]
        hash_name = signer["digest_algorithm"]["algorithm"].native
        if hash_name not in _HASHES:
            raise UnsupportedMessage(f"digest algorithm {hash_name!r} is not accepted", source=source,
                                     field="digestAlgorithm", value=hash_name)
        sid = signer["sid"]
        issuer_serial = key_identifier = None
        if sid.name == "issuer_and_serial_number":
            issuer_serial = (sid.chosen["issuer"].dump(), sid.chosen["serial_number"].native)
        else:
            key_identifier = sid.chosen.native
        signed_attrs = signer["signed_attrs"]
        signed_attrs_der = message_digest = signing_time = None
        if signed_attrs.native is not None:
            signed_attrs_der = cms.CMSAttributes(list(signed_attrs)).dump()
            content_type = _attr_values(signed_attrs, "content_type", source=source)
            digests = _attr_values(signed_attrs, "message_digest", source=source)
            if not digests or not content_type:
                raise MalformedInput("signed attributes lack messageDigest or contentType", source=source,
                                     field="signedAttrs")
            message_digest = digests[0].native
            times = _attr_values(signed_attrs, "signing_time", source=source)
            signing_time = times[0].native if times else None
        certs = tuple(c.chosen.dump() for c in signed_data["certificates"] or ()
                      if c.name == "certificate")
        return _ParsedSigner(
            hash_name=hash_name,
            signature_algorithm=signer["signature_algorithm"].signature_algo,
            signature=signer["signature"].native,
            signed_attrs_der=signed_attrs_der,
            message_digest=message_digest,
            signing_time=signing_time,
            issuer_serial=issuer_serial,
            key_identifier=key_identifier,
            embedded_certs=certs,
        )
    except FormatError:
        raise
    except Exception as exc:  # asn1crypto parses lazily and raises many types on garbage
        raise MalformedInput(f"not a DER CMS SignedData: {type(exc).__name__}: {exc}", source=source,
                             field="signature") from None


def _key_matches(public_key, signer_cert: x509.Certificate) -> bool:
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return public_key.public_bytes(*der) == signer_cert.public_key().public_bytes(*der)


def _verifies(public_key, parsed: _ParsedSigner, signed_bytes: bytes, *, prehashed: bool) -> bool:
    hash_cls = _HASHES[parsed.hash_name]()
    algorithm = utils.Prehashed(hash_cls) if prehashed else hash_cls
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and parsed.signature_algorithm == "rsassa_pkcs1v15":
            public_key.verify(parsed.signature, signed_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and parsed.signature_algorithm == "ecdsa":
            public_key.verify(parsed.signature, signed_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except (_CryptoInvalidSignature, ValueError):
        return False
    return True


def _signed_by(public_key, parsed: _ParsedSigner, content_digest: bytes) -> bool:
    if parsed.signed_attrs_der is not None:
        return _verifies(public_key, parsed, parsed.signed_attrs_der, prehashed=False)
    return _verifies(public_key, parsed, content_digest, prehashed=True)


def _names_pinned(parsed: _ParsedSigner, pinned: x509.Certificate) -> bool:
    if parsed.issuer_serial is not None:
        issuer_der = asn1_x509.Certificate.load(pinned.public_bytes(serialization.Encoding.DER)).issuer.dump()
        return parsed.issuer_serial == (issuer_der, pinned.serial_number)
    try:
        ski = pinned.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return False
    return parsed.key_identifier == ski


def verify_detached(
    chunks: Iterable[bytes], signature_der: bytes | None, pinned_cert_pem: bytes, *, source: str
) -> CmsVerified:
    """Check a detached CMS signature over ``chunks`` against the pinned certificate only.

    Certificates embedded in the signature are never trusted; they only help to tell an
    unknown signer from altered content. No chain, validity period or revocation check is made:
    the pinned certificate *is* the trust decision (configured per bank).

    :param chunks: the content, streamed; consumed once (after the signature is parsed).
    :param signature_der: the signature file's bytes (DER, or PEM ``CMS``/``PKCS7`` armour).
    :param pinned_cert_pem: the one certificate allowed to have signed (PEM or DER).
    :param source: name of the signed file, for errors.
    :returns: :class:`CmsVerified`.
    :raises Unsigned: no signature, or empty bytes.
    :raises MalformedInput: the bytes are not a detached CMS SignedData with one signer.
    :raises UnsupportedMessage: a digest algorithm other than SHA-256/384/512.
    :raises UnknownSigner: the signer is not the pinned certificate.
    :raises SignatureInvalid: the content or the signed attributes were altered.
    """
    if signature_der is None or not bytes(signature_der).strip():
        raise Unsigned("no CMS signature (missing or empty)", source=source, field="signature")
    pinned = _load_cert(pinned_cert_pem, what="pinned_cert")
    parsed = _parse(bytes(signature_der), source=source)
    content_digest = _digest_chunks(chunks, parsed.hash_name)
    pinned_key = pinned.public_key()

    if not _names_pinned(parsed, pinned) or not _signed_by(pinned_key, parsed, content_digest):
        for der in parsed.embedded_certs:
            try:
                other = x509.load_der_x509_certificate(der)
            except ValueError:
                continue
            if not _key_matches(pinned_key, other) and _signed_by(other.public_key(), parsed, content_digest):
                raise UnknownSigner(
                    f"signed by {other.subject.rfc4514_string()!r}, not the pinned {pinned.subject.rfc4514_string()!r}",
                    source=source, field="signer", value=other.subject.rfc4514_string(),
                )
        if not _names_pinned(parsed, pinned):
            raise UnknownSigner(f"signer is not the pinned {pinned.subject.rfc4514_string()!r}",
                                source=source, field="signer")
        raise SignatureInvalid("signature does not verify with the pinned certificate (altered?)",
                               source=source, field="signature")
    if parsed.message_digest is not None and parsed.message_digest != content_digest:
        raise SignatureInvalid("content does not match the signature (altered?)", source=source,
                               field="messageDigest")
    return CmsVerified(
        signer_subject=pinned.subject.rfc4514_string(),
        signing_time=parsed.signing_time,
        content_digest=content_digest,
    )
