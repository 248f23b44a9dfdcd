"""What the dispatcher and the inbound poller see of a bank's transport, and what it raises.

Every transport (:mod:`~gateway.transports.sftp`, :mod:`~gateway.transports.https`,
:mod:`~gateway.transports.folder`) has the same face, :class:`BankTransport`; every method returns a
``Deferred``. The protocol on the other side is ``docs/BANK_PROTOCOL.md``.

Errors form one tree under :class:`TransportError` (a :class:`~gateway.errors.YktError`). Each one
says whether trying again later may help (``retryable``); pinning failures are never retryable and
must be shown to a person, because they mean either a changed bank key or someone in between.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gateway.errors import YktError

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

#: What ``deliver`` accepts as the file: its bytes, or the path of a local file (streamed).
Payload = bytes | str | os.PathLike

#: Signature file extensions a bank may put beside a report (``docs/BANK_PROTOCOL.md``).
SIGNATURE_EXTS: tuple[str, ...] = ("p7s", "sm2")

#: Read and write in pieces of this size so memory does not grow with the file.
CHUNK_SIZE = 64 * 1024


# --------------------------------------------------------------------------------------- errors


class TransportError(YktError):
    """Root of every transport failure.

    :ivar bank: the bank id (or an address) the failure concerns, if known.
    :ivar retryable: ``True`` when the same call may succeed later unchanged.
    """

    retryable = False
    zh_default = "与银行的文件传输失败"

    def __init__(self, message: str, *, zh: str | None = None, bank: str | None = None,
                 retryable: bool | None = None) -> None:
        super().__init__(message, zh=zh or self.zh_default)
        self.bank = bank
        if retryable is not None:
            self.retryable = retryable


class TransportConfigError(TransportError):
    """Our own keys or settings for the bank cannot be used (missing file, bad key). Not retryable."""

    zh_default = "银行传输配置有误"


class BankUnavailable(TransportError):
    """The bank cannot be reached now: connection refused or reset, timeout, HTTP 503. Retryable."""

    retryable = True
    zh_default = "银行系统暂时无法连接，稍后自动重试"


class AuthenticationFailed(TransportError):
    """The bank refused our credentials (SSH key, TLS client certificate, HTTP 401/403)."""

    zh_default = "银行拒绝了我方身份认证（密钥或客户端证书）"


class HostKeyMismatch(TransportError):
    """The SFTP server's host key is not the pinned one. Never retried: a person must look."""

    zh_default = "银行SFTP主机密钥与登记的不一致，可能遭到中间人攻击，已停止传输"


class ServerCertificateMismatch(TransportError):
    """The HTTPS server's certificate is not the pinned one. Never retried: a person must look."""

    zh_default = "银行HTTPS服务器证书与登记的不一致，可能遭到中间人攻击，已停止传输"


class TransferFailed(TransportError):
    """A transfer broke off or the server answered an operation with an error. Retryable unless
    stated (``retryable=False`` for e.g. permission denied or a size that does not add up)."""

    retryable = True
    zh_default = "文件传输中断或失败"


class RemoteRefused(TransportError):
    """The bank refused the file itself (HTTP 400, or a different file already under that name).
    Retrying the same bytes will not help."""

    zh_default = "银行拒收该文件"


# -------------------------------------------------------------------------------------- receipt


@dataclass(frozen=True)
class Receipt:
    """What a delivery achieved.

    :ivar name: the file's final name at the bank.
    :ivar size: bytes delivered (or found there).
    :ivar sha256: hex SHA-256 of our bytes; ``None`` only when the file was found already there
        over SFTP and not read again (size is the evidence then, per the protocol).
    :ivar already_there: the bank already had exactly this file (a retry after a crash).
    :ivar signature_name: the detached signature's name at the bank, if one was sent.
    :ivar remote: the bank's own receipt (HTTPS JSON body), if it gave one.
    """

    name: str
    size: int
    sha256: str | None
    already_there: bool = False
    signature_name: str | None = None
    remote: dict[str, Any] | None = None


class BankTransport(Protocol):
    """The face every transport has. All methods return ``Deferred``.

    - ``deliver(name, data, signature, *, signature_ext)`` -> :class:`Receipt`: put one instruction
      file (and its detached signature ``<name>.<signature_ext>``, sent first) at the bank,
      atomically and idempotently.
    - ``list_reports()`` -> ``list[str]``: report names waiting at the bank, sorted, signatures and
      partial files left out.
    - ``fetch_report(name)`` -> ``(bytes, signature_bytes | None)``.
    - ``ack_report(name)`` -> ``None``: the report leaves the list; harmless if repeated.
    - ``close()`` -> ``None``: drop connections.
    """

    def deliver(self, name: str, data: Payload, signature: bytes | None = None, *,
                signature_ext: str | None = None) -> Deferred: ...

    def list_reports(self) -> Deferred: ...

    def fetch_report(self, name: str) -> Deferred: ...

    def ack_report(self, name: str) -> Deferred: ...

    def close(self) -> Deferred: ...


# ------------------------------------------------------------------------------------- helpers


def check_name(name: str) -> str:
    """Return ``name`` if it is a plain file name fit for the protocol; else ``ValueError``.

    A name is not empty, has no path separator, NUL or control character, does not start with a
    dot (dot names are temporary or hidden) and is not ``.``/``..``.
    """
    if (not isinstance(name, str) or not name or name.startswith(".") or "/" in name
            or "\\" in name or any(ord(c) < 32 for c in name)):
        raise ValueError(f"not a plain file name: {name!r}")
    return name


def check_signature(signature: bytes | None, signature_ext: str | None) -> str | None:
    """Return the signature file extension to use, or ``None`` when no signature travels."""
    if signature is None:
        return None
    if not signature_ext or not signature_ext.isalnum():
        raise ValueError("a detached signature needs signature_ext, e.g. 'p7s' or 'sm2'")
    return signature_ext


def is_report_name(name: str, signature_exts=SIGNATURE_EXTS) -> bool:
    """True for a name that is a report: not hidden/temporary, not a signature beside one."""
    if not name or name.startswith(".") or name.endswith(".part"):
        return False
    return not any(name.endswith("." + ext) for ext in signature_exts)


def payload_size(data: Payload) -> int:
    """Size of the payload in bytes, without reading it."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return len(data)
    return os.stat(data).st_size


def open_payload(data: Payload):
    """A binary file object reading the payload (the caller closes it)."""
    import io

    if isinstance(data, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(data))
    return open(Path(data), "rb")


def sha256_of(data: Payload) -> str:
    """Hex SHA-256 of the payload, read in chunks."""
    h = hashlib.sha256()
    with open_payload(data) as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def make_transport(bank, *, reactor, keys_dir: Path | None = None, **options) -> BankTransport:
    """Build the transport named by a bank's config (``gateway.config.model.Bank`` or a bare
    ``SftpTransport``/``HttpsTransport``/``FolderTransport`` config object).

    :param reactor: the Twisted reactor (TCP, time; the folder transport uses its thread pool).
    :param keys_dir: where relative key paths are resolved (the loaded config already resolved
        them; this is for config objects built by hand).
    :param options: passed to the transport class (timeouts, signature extensions...).
    :raises TransportConfigError: keys or certificates that cannot be read.
    """
    from gateway.config import model as m

    cfg = getattr(bank, "transport", bank)
    label = getattr(bank, "id", None)

    def keyfile(p):
        p = Path(p)
        return p if p.is_absolute() or keys_dir is None else Path(keys_dir) / p

    if isinstance(cfg, m.SftpTransport):
        from gateway.transports.sftp import SftpClient

        return SftpClient(reactor=reactor, host=cfg.host, port=cfg.port, username=cfg.username,
                          inbox=cfg.inbox, outbox=cfg.outbox, host_key=keyfile(cfg.host_key),
                          client_key=keyfile(cfg.client_key), bank=label, **options)
    if isinstance(cfg, m.HttpsTransport):
        from gateway.transports.https import HttpsClient

        return HttpsClient(reactor=reactor, url=cfg.url, server_cert=keyfile(cfg.server_cert),
                           client_cert=keyfile(cfg.client_cert), client_key=keyfile(cfg.client_key),
                           bank=label, **options)
    if isinstance(cfg, m.FolderTransport):
        from gateway.transports.folder import FolderClient

        return FolderClient(reactor=reactor, outgoing=cfg.outgoing, incoming=cfg.incoming,
                            bank=label, **options)
    raise TransportConfigError(f"bank {label!r}: unknown transport {cfg!r}", bank=label)
