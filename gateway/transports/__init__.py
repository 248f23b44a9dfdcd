"""Bank transports: SFTP (twisted.conch), HTTPS (client certificate, pinned server certificate) and a
plain folder, all with the face :class:`~gateway.transports.base.BankTransport`."""

from gateway.transports.base import (
    AuthenticationFailed,
    BankTransport,
    BankUnavailable,
    HostKeyMismatch,
    Receipt,
    RemoteRefused,
    ServerCertificateMismatch,
    TransferFailed,
    TransportConfigError,
    TransportError,
    make_transport,
)

__all__ = [
    "AuthenticationFailed", "BankTransport", "BankUnavailable", "HostKeyMismatch", "Receipt",
    "RemoteRefused", "ServerCertificateMismatch", "TransferFailed", "TransportConfigError",
    "TransportError", "make_transport",
]
