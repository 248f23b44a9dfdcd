"""Key and certificate makers for tests, simulators and the demo. Never for production keys.

These are the only place in ``formats/`` that uses randomness (key generation). Certificates get a
fixed, wide validity window by default (2020-01-01 .. 2099-12-31) so nothing here reads the clock
and the certificates work for TLS on any machine date in between.

>>> ca_key, ca_cert = make_test_ca("Test Finance CA")
>>> key, cert = make_leaf(ca_key, ca_cert, "bank-sim", server=True, client=True)
>>> cert.startswith(b"-----BEGIN CERTIFICATE-----")
True
>>> private_hex, public_hex = make_sm2_keypair()
>>> len(private_hex), len(public_hex)
(64, 128)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets

from asn1crypto import core as asn1
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
DEFAULT_NOT_AFTER = dt.datetime(2099, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)

#: SM2 curve order and generator (GB/T 32918.5), used by :func:`make_sm2_keypair`.
SM2_N = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
SM2_CURVE_OID = "1.2.156.10197.1.301"
_EC_PUBLIC_KEY_OID = "1.2.840.10045.2.1"


def _new_private_key(key_type: str):
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"key_type must be 'rsa' or 'ec', not {key_type!r}")


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "yikatong test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def make_test_ca(
    cn: str,
    *,
    key_type: str = "rsa",
    not_before: dt.datetime = DEFAULT_NOT_BEFORE,
    not_after: dt.datetime = DEFAULT_NOT_AFTER,
) -> tuple[bytes, bytes]:
    """A self-signed CA: returns ``(key_pem, cert_pem)`` (PKCS#8 key, unencrypted).

    :param cn: the CA's common name.
    :param key_type: ``"rsa"`` (2048 bits) or ``"ec"`` (P-256).
    """
    key = _new_private_key(key_type)
    name = _name(cn)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _pem_key(key), cert.public_bytes(serialization.Encoding.PEM)


def _san_entries(san) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for item in san:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(item)))
        except ValueError:
            entries.append(x509.DNSName(item))
    return entries


def make_leaf(
    ca_key_pem: bytes,
    ca_cert_pem: bytes,
    cn: str,
    *,
    server: bool = False,
    client: bool = False,
    san=("127.0.0.1", "localhost"),
    key_type: str = "rsa",
    not_before: dt.datetime = DEFAULT_NOT_BEFORE,
    not_after: dt.datetime = DEFAULT_NOT_AFTER,
) -> tuple[bytes, bytes]:
    """A leaf certificate issued by the CA: returns ``(key_pem, cert_pem)``.

    Key usage allows signatures (CMS, XML) and TLS. ``server`` / ``client`` add the TLS server
    and client extended key usages; with neither, no extended key usage is set, so the
    certificate is good for any purpose. ``san`` entries that parse as IP addresses become
    IP SANs, the rest DNS names.
    """
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    key = _new_private_key(key_type)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=key_type == "rsa",
                data_encipherment=False, key_agreement=key_type == "ec", key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(_san_entries(san)), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return _pem_key(key), cert.public_bytes(serialization.Encoding.PEM)


# --------------------------------------------------------------------------- SM2


def make_sm2_keypair() -> tuple[str, str]:
    """A fresh SM2 key pair as gmssl hex: ``(private_key_hex (64), public_key_hex (128, X||Y))``."""
    from gmssl.sm2 import CryptSM2, default_ecc_table

    d = secrets.randbelow(SM2_N - 2) + 1  # 1 <= d <= n-2 (GB/T 32918.1: d in [1, n-2])
    private_hex = f"{d:064x}"
    public_hex = CryptSM2(private_key=private_hex, public_key="")._kg(d, default_ecc_table["g"])
    return private_hex, public_hex.lower()


class _SM2PublicKeyAlgorithm(asn1.Sequence):
    _fields = [("algorithm", asn1.ObjectIdentifier), ("parameters", asn1.ObjectIdentifier)]


class _SubjectPublicKeyInfo(asn1.Sequence):
    _fields = [("algorithm", _SM2PublicKeyAlgorithm), ("public_key", asn1.OctetBitString)]


class _ECPrivateKey(asn1.Sequence):  # RFC 5915
    _fields = [
        ("version", asn1.Integer),
        ("private_key", asn1.OctetString),
        ("parameters", asn1.ObjectIdentifier, {"explicit": 0}),
        ("public_key", asn1.OctetBitString, {"explicit": 1}),
    ]


def _pem(label: str, der: bytes) -> bytes:
    import base64
    import textwrap

    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode("ascii")


def sm2_public_key_pem(public_key_hex: str) -> bytes:
    """The gmssl public key hex as a SubjectPublicKeyInfo PEM (what ``openssl pkeyutl -pubin`` reads)."""
    point = bytes.fromhex("04" + _strip_04(public_key_hex))
    spki = _SubjectPublicKeyInfo(
        {"algorithm": {"algorithm": _EC_PUBLIC_KEY_OID, "parameters": SM2_CURVE_OID}, "public_key": point}
    )
    return _pem("PUBLIC KEY", spki.dump())


def sm2_private_key_pem(private_key_hex: str, public_key_hex: str) -> bytes:
    """The gmssl key pair as an RFC 5915 ``EC PRIVATE KEY`` PEM (what ``openssl pkeyutl -inkey`` reads)."""
    key = _ECPrivateKey(
        {
            "version": 1,
            "private_key": bytes.fromhex(private_key_hex.rjust(64, "0")),
            "parameters": SM2_CURVE_OID,
            "public_key": bytes.fromhex("04" + _strip_04(public_key_hex)),
        }
    )
    return _pem("EC PRIVATE KEY", key.dump())


def _strip_04(public_key_hex: str) -> str:
    """``X||Y`` hex, dropping one uncompressed-point prefix ``04`` if present (130 hex digits)."""
    if len(public_key_hex) == 130 and public_key_hex[:2] == "04":
        return public_key_hex[2:]
    return public_key_hex
