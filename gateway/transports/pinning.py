"""TLS client connections that trust exactly one pinned server certificate (or its public key).

The bank's server certificate is registered in config (``server_cert``). A connection is accepted
only when the certificate the server presents is byte-for-byte that certificate, or carries the
same public key (SubjectPublicKeyInfo, so a renewal with the same key keeps working). The CA chain
is not consulted: a certificate from the right CA but not the pinned one is refused with
:class:`~gateway.transports.base.ServerCertificateMismatch`. We present our client certificate.

Built directly on pyOpenSSL as an ``IPolicyForHTTPS`` for ``twisted.web.client.Agent``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.python.failure import Failure
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from gateway.transports.base import ServerCertificateMismatch, TransportConfigError


def spki_sha256(cert: x509.Certificate) -> str:
    """Hex SHA-256 of the certificate's SubjectPublicKeyInfo (DER)."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def cert_sha256(cert: x509.Certificate) -> str:
    """Hex SHA-256 of the whole certificate (DER)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


@dataclass(frozen=True)
class Pins:
    """The certificates (and their keys) a server may present."""

    path: Path
    cert_hashes: frozenset[str]
    spki_hashes: frozenset[str]

    @classmethod
    def load(cls, path: Path) -> Pins:
        """Read one or more certificates (PEM, or a single DER) from ``path``.

        :raises TransportConfigError: unreadable file or no certificate in it.
        """
        try:
            raw = Path(path).read_bytes()
            certs = (x509.load_pem_x509_certificates(raw) if b"-----BEGIN" in raw
                     else [x509.load_der_x509_certificate(raw)])
        except (OSError, ValueError) as e:
            raise TransportConfigError(f"pinned server certificate {path} cannot be read: {e}",
                                       zh=f"无法读取登记的银行服务器证书 {path}") from e
        return cls(Path(path), frozenset(map(cert_sha256, certs)), frozenset(map(spki_sha256, certs)))

    def matches(self, cert: x509.Certificate) -> bool:
        return cert_sha256(cert) in self.cert_hashes or spki_sha256(cert) in self.spki_hashes


@implementer(IPolicyForHTTPS)
class PinnedPolicy:
    """Connection policy for ``Agent``: TLS 1.2+, our client certificate, the server pinned.

    :param pins: what the server may present.
    :param client_cert: our certificate (PEM; may hold the chain after it).
    :param client_key: our private key (PEM).
    :param label: names the bank in messages.
    :raises TransportConfigError: unreadable or mismatched client certificate and key.
    """

    def __init__(self, pins: Pins, client_cert: Path, client_key: Path, *, label: str = "",
                 bank: str | None = None) -> None:
        self.pins = pins
        self.label = label
        self.bank = bank
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
        ctx.set_options(SSL.OP_NO_COMPRESSION)
        try:
            ctx.use_certificate_chain_file(str(client_cert))
            ctx.use_privatekey_file(str(client_key))
            ctx.check_privatekey()
        except (SSL.Error, OSError) as e:
            raise TransportConfigError(
                f"client certificate {client_cert} / key {client_key} cannot be used: {e}",
                zh="我方HTTPS客户端证书或私钥无法使用") from e
        self.context = ctx

    def creatorForNetloc(self, hostname: bytes, port: int) -> _PinnedCreator:
        return _PinnedCreator(self, hostname.decode("ascii"), port)


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@implementer(IOpenSSLClientConnectionCreator)
class _PinnedCreator:
    def __init__(self, policy: PinnedPolicy, host: str, port: int) -> None:
        self.policy, self.host, self.port = policy, host, port

    def clientConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        conn = SSL.Connection(self.policy.context, None)
        conn.set_app_data(tlsProtocol)
        if not _is_ip(self.host):
            conn.set_tlsext_host_name(self.host.encode("idna"))
        conn.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, self._verify(tlsProtocol))
        conn.set_connect_state()
        return conn

    def _verify(self, tlsProtocol):
        policy, where = self.policy, f"{self.host}:{self.port}"

        def verify(conn, x509cert, errno, depth, ok) -> bool:
            if depth != 0:
                return True  # the chain is not what we trust; the pinned leaf is
            cert = x509cert.to_cryptography()
            if policy.pins.matches(cert):
                return True
            err = ServerCertificateMismatch(
                f"{policy.label or where}: server certificate {cert.subject.rfc4514_string()} "
                f"(sha256 {cert_sha256(cert)}) is not the pinned one in {policy.pins.path}",
                zh=f"银行HTTPS服务器证书与登记的不一致（{where}），可能遭到中间人攻击，已停止传输",
                bank=policy.bank)
            tlsProtocol.failVerification(Failure(err))
            return False

        return verify
