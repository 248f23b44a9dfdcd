"""SFTP client transport (twisted.conch), per ``docs/BANK_PROTOCOL.md``.

One SSH connection per :class:`SftpClient`, opened on first use and kept until :meth:`close` or
until it breaks (then the next call opens a new one). The bank's host key is pinned: the server
must present exactly the key in the pinned OpenSSH ``.pub`` file, otherwise
:class:`~gateway.transports.base.HostKeyMismatch` and nothing is sent. We authenticate with our
private key only (no password, no keyboard-interactive).

Delivery of ``<name>``: ``stat inbox/<name>`` (same size: already there, done; other size:
:class:`RemoteRefused`), then the signature ``inbox/<name>.<ext>``, then the data to
``inbox/.<name>.part`` streamed in 64 KiB writes with a bounded number outstanding, checked by
size, then ``rename`` to ``inbox/<name>``. A rename never overwrites (SFTP v3 semantics), so a
file the bank already took is never replaced.

Reports: ``outbox/`` is listed (hidden, ``.part``, signature files and directories left out),
fetched with its signature, and acknowledged by renaming into ``outbox/archive/`` (created on
demand), the data file first, then its signature.
"""

from __future__ import annotations

import hashlib
import posixpath
import stat as statmod
from pathlib import Path

from twisted.conch.ssh import channel, common, connection, keys, transport, userauth
from twisted.conch.ssh.filetransfer import (
    FX_FAILURE,
    FX_NO_SUCH_FILE,
    FX_PERMISSION_DENIED,
    FXF_CREAT,
    FXF_READ,
    FXF_TRUNC,
    FXF_WRITE,
    FileTransferClient,
    SFTPError,
)
from twisted.internet import defer
from twisted.internet import error as neterror
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol
from twisted.python.failure import Failure

from gateway.transports.base import (
    CHUNK_SIZE,
    SIGNATURE_EXTS,
    AuthenticationFailed,
    BankUnavailable,
    HostKeyMismatch,
    Payload,
    Receipt,
    RemoteRefused,
    TransferFailed,
    TransportConfigError,
    TransportError,
    check_name,
    check_signature,
    is_report_name,
    open_payload,
    payload_size,
)

#: Write requests in flight at once during an upload (each ``CHUNK_SIZE``): bounds memory.
MAX_OUTSTANDING_WRITES = 16


def load_pinned_host_key(path: Path) -> keys.Key:
    """The pinned host public key from an OpenSSH ``.pub`` file (``ssh-ed25519 AAAA... comment``)."""
    try:
        key = keys.Key.fromFile(str(path))
    except (OSError, keys.BadKeyError) as e:
        raise TransportConfigError(f"pinned SSH host key {path} cannot be read: {e}",
                                   zh=f"无法读取登记的银行SFTP主机公钥 {path}") from e
    return key.public()


def load_client_key(path: Path) -> keys.Key:
    """Our private key for public-key authentication (OpenSSH or PEM, unencrypted)."""
    try:
        key = keys.Key.fromFile(str(path))
    except (OSError, keys.BadKeyError, keys.EncryptedKeyError) as e:
        raise TransportConfigError(f"SSH client key {path} cannot be read: {e}",
                                   zh=f"无法读取我方SFTP客户端私钥 {path}") from e
    if key.isPublic():
        raise TransportConfigError(f"SSH client key {path} is a public key, a private key is needed",
                                   zh=f"我方SFTP客户端密钥 {path} 不是私钥")
    return key


# ---------------------------------------------------------------------------- conch plumbing


class _Session:
    """One SSH connection being set up or in use; :meth:`wait` gives its FileTransferClient.

    The first error seen during setup (host key, authentication, subsystem) wins, so the caller
    learns *why* the server hung up rather than only that it did.
    """

    def __init__(self, client: SftpClient) -> None:
        self.client = client
        self.sftp: FileTransferClient | None = None
        self.proto: _ClientTransport | None = None
        self.error: TransportError | None = None
        self.setup_failure: Failure | None = None
        self.waiters: list[defer.Deferred] = []
        self.lost_waiters: list[defer.Deferred] = []
        self.is_lost = False
        self.archive_ok = False

    def wait(self) -> defer.Deferred:
        if self.setup_failure is not None:
            return defer.fail(self.setup_failure)
        if self.sftp is not None:
            return defer.succeed(self.sftp)
        d: defer.Deferred = defer.Deferred()
        self.waiters.append(d)
        return d

    def fail(self, err: TransportError) -> None:
        if self.error is None:
            self.error = err

    def established(self, sftp: FileTransferClient) -> None:
        self.sftp = sftp
        waiters, self.waiters = self.waiters, []
        for d in waiters:
            d.callback(sftp)

    def setup_failed(self, reason: Failure) -> None:
        if self.sftp is not None or self.setup_failure is not None:
            return
        self.setup_failure = Failure(self.error) if self.error is not None else reason
        waiters, self.waiters = self.waiters, []
        for d in waiters:
            d.errback(self.setup_failure)

    def connection_lost(self, reason: Failure) -> None:
        self.is_lost = True
        self.setup_failed(Failure(BankUnavailable(
            f"{self.client.where}: connection closed during SSH setup: {reason.getErrorMessage()}",
            bank=self.client.bank)))
        waiters, self.lost_waiters = self.lost_waiters, []
        for d in waiters:
            d.callback(None)

    def when_lost(self) -> defer.Deferred:
        if self.is_lost:
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        self.lost_waiters.append(d)
        return d

    def abort(self) -> None:
        if self.proto is not None and self.proto.transport is not None:
            self.proto.transport.abortConnection()


class _ClientTransport(transport.SSHClientTransport):
    def __init__(self, session: _Session) -> None:
        super().__init__()
        self.session = session
        c = session.client
        # Ask only for the pinned key's algorithms, so a server with several host keys shows that one.
        wanted = c.host_key.supportedSignatureAlgorithms()
        self.supportedPublicKeys = [a for a in self.supportedPublicKeys if a in wanted] or wanted

    def verifyHostKey(self, hostKey: bytes, fingerprint) -> defer.Deferred:
        c = self.session.client
        if hostKey != c.host_key.blob():
            try:
                shown = "SHA256:" + keys.Key.fromString(hostKey).fingerprint(keys.FingerprintFormats.SHA256_BASE64)
            except Exception:  # noqa: BLE001 - only used for the message
                shown = "unreadable key"
            expected = "SHA256:" + c.host_key.fingerprint(keys.FingerprintFormats.SHA256_BASE64)
            err = HostKeyMismatch(
                f"{c.where}: SSH host key {shown} is not the pinned key {expected} ({c.host_key_path})",
                zh=f"银行SFTP主机密钥不符：收到 {shown}，登记的是 {expected}；可能遭到中间人攻击，已停止传输",
                bank=c.bank)
            self.session.fail(err)
            return defer.fail(err)
        return defer.succeed(True)

    def connectionSecure(self) -> None:
        c = self.session.client
        self.requestService(_UserAuth(c.username.encode(), _Connection(self.session), c.client_key))

    def sendDisconnect(self, reason, desc) -> None:
        if reason == transport.DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE:
            c = self.session.client
            self.session.fail(AuthenticationFailed(
                f"{c.where}: the server refused our SSH key for user {c.username!r}",
                zh=f"银行SFTP服务器拒绝了我方密钥（用户 {c.username}）", bank=c.bank))
        super().sendDisconnect(reason, desc)

    def receiveError(self, reasonCode, description) -> None:
        c = self.session.client
        self.session.fail(BankUnavailable(
            f"{c.where}: server disconnected (code {reasonCode}): {description.decode(errors='replace')}",
            bank=c.bank))
        super().receiveError(reasonCode, description)

    def connectionLost(self, reason=None) -> None:
        super().connectionLost(reason)
        self.session.connection_lost(reason)


class _UserAuth(userauth.SSHUserAuthClient):
    preferredOrder = (b"publickey",)

    def __init__(self, user: bytes, instance, key: keys.Key) -> None:
        super().__init__(user, instance)
        self._key = key
        self._offered = False

    def getPublicKey(self):
        if self._offered:  # called again after a failure: nothing more to offer
            return None
        self._offered = True
        return self._key.public()

    def getPrivateKey(self):
        return defer.succeed(self._key)

    def auth_password(self):
        return False

    def auth_keyboard_interactive(self):
        return False


class _Connection(connection.SSHConnection):
    def __init__(self, session: _Session) -> None:
        super().__init__()
        self.session = session

    def serviceStarted(self) -> None:
        super().serviceStarted()
        self.openChannel(_SftpChannel(self.session, localWindow=2 * 1024 * 1024, conn=self))


class _SftpChannel(channel.SSHChannel):
    name = b"session"

    def __init__(self, session: _Session, **kw) -> None:
        super().__init__(**kw)
        self.session = session
        self.sftp: FileTransferClient | None = None

    def openFailed(self, reason) -> None:
        c = self.session.client
        self.session.fail(TransferFailed(f"{c.where}: SSH session channel refused: {reason}", bank=c.bank))
        self.conn.transport.loseConnection()

    def channelOpen(self, specificData) -> None:
        d = self.conn.sendRequest(self, b"subsystem", common.NS(b"sftp"), wantReply=True)
        d.addCallbacks(self._subsystem_ok, self._subsystem_refused)

    def _subsystem_refused(self, reason) -> None:
        c = self.session.client
        self.session.fail(TransferFailed(f"{c.where}: the server refused the sftp subsystem",
                                         zh="银行服务器未提供SFTP子系统", bank=c.bank, retryable=False))
        self.conn.transport.loseConnection()

    def _subsystem_ok(self, _) -> None:
        session = self.session

        class _Sftp(FileTransferClient):
            def gotServerVersion(self, serverVersion, extData):
                session.established(self)

        self.sftp = _Sftp()
        self.sftp.makeConnection(self)
        self.dataReceived = self.sftp.dataReceived

    def closed(self) -> None:
        if self.sftp is not None:
            self.sftp.connectionLost(Failure(neterror.ConnectionDone("sftp channel closed")))
        self.conn.transport.loseConnection()


# ------------------------------------------------------------------------------------- client


class SftpClient:
    """Exchange files with one bank over SFTP. Implements ``BankTransport``.

    :param reactor: provides ``IReactorTCP`` and ``IReactorTime``.
    :param host, port, username: the bank's SFTP server and our account there.
    :param inbox, outbox: the bank's directories (``/inbox``, ``/outbox`` in the protocol).
    :param host_key: the pinned host public key file (OpenSSH ``.pub``).
    :param client_key: our private key file.
    :param bank: the bank id, for messages.
    :param connect_timeout: seconds for the TCP connection.
    :param setup_timeout: seconds for key exchange, authentication and the sftp subsystem.
    :param request_timeout: seconds any single SFTP request may wait for its answer; after that the
        connection is dropped and :class:`TransferFailed` (retryable) raised.
    :param signature_exts: extensions of signature files beside reports.
    :param max_report_size: reports larger than this are refused (not retryable).
    :raises TransportConfigError: keys that cannot be read.
    """

    def __init__(self, *, reactor, host: str, port: int, username: str, inbox: str, outbox: str,
                 host_key: Path, client_key: Path, bank: str | None = None,
                 connect_timeout: float = 10.0, setup_timeout: float = 30.0,
                 request_timeout: float = 60.0, signature_exts=SIGNATURE_EXTS,
                 max_report_size: int = 512 * 1024 * 1024) -> None:
        self.reactor = reactor
        self.host, self.port, self.username = host, port, username
        self.inbox, self.outbox = inbox, outbox
        self.archive = posixpath.join(outbox, "archive")
        self.host_key_path = Path(host_key)
        self.host_key = load_pinned_host_key(self.host_key_path)
        self.client_key = load_client_key(Path(client_key))
        self.bank = bank
        self.connect_timeout = connect_timeout
        self.setup_timeout = setup_timeout
        self.request_timeout = request_timeout
        self.signature_exts = tuple(signature_exts)
        self.max_report_size = max_report_size
        self._session: _Session | None = None
        self._waiting: list[defer.Deferred] = []

    @property
    def where(self) -> str:
        return f"sftp://{self.username}@{self.host}:{self.port}" + (f" (bank {self.bank})" if self.bank else "")

    # -- public face ------------------------------------------------------------------------

    def deliver(self, name: str, data: Payload, signature: bytes | None = None, *,
                signature_ext: str | None = None) -> defer.Deferred:
        """Upload one file (signature first, data under ``.<name>.part``, then rename); see module doc.

        :returns: Deferred firing with a :class:`Receipt` (``already_there=True`` when the final
            name already holds a file of the same size).
        """
        try:
            check_name(name)
            ext = check_signature(signature, signature_ext)
            size = payload_size(data)
        except (ValueError, OSError) as e:
            return defer.fail(e)
        return self._run(self._deliver(name, data, size, signature, ext))

    def list_reports(self) -> defer.Deferred:
        """Names of the reports in ``outbox/``, sorted."""
        return self._run(self._list_reports())

    def fetch_report(self, name: str) -> defer.Deferred:
        """``(data, signature or None)`` of one report in ``outbox/``."""
        try:
            check_name(name)
        except ValueError as e:
            return defer.fail(e)
        return self._run(self._fetch_report(name))

    def ack_report(self, name: str) -> defer.Deferred:
        """Move the report (then its signature) into ``outbox/archive/``; harmless if repeated."""
        try:
            check_name(name)
        except ValueError as e:
            return defer.fail(e)
        return self._run(self._ack_report(name))

    def close(self) -> defer.Deferred:
        """Close the SSH connection, if any; fires once it is closed."""
        s, self._session = self._session, None
        if s is None or s.is_lost:
            return defer.succeed(None)
        if s.proto is None or s.proto.transport is None:  # still connecting over TCP
            s.setup_failed(Failure(BankUnavailable(f"{self.where}: closed while connecting", bank=self.bank)))
            return defer.succeed(None)
        d = s.when_lost()
        s.proto.transport.loseConnection()
        return d

    # -- connection ---------------------------------------------------------------------------

    def _run(self, coro) -> defer.Deferred:
        d = defer.Deferred.fromCoroutine(coro)
        return d.addErrback(self._translate)

    def _translate(self, f: Failure):
        """Any failure out of an operation becomes a TransportError (ValueError/OSError of the
        caller's own arguments pass through)."""
        if f.check(TransportError, ValueError, OSError) and not f.check(neterror.ConnectError):
            return f
        if f.check(neterror.ConnectionRefusedError, neterror.TimeoutError, neterror.DNSLookupError,
                   neterror.ConnectError, neterror.NoRouteError):
            raise BankUnavailable(f"{self.where}: cannot connect: {f.getErrorMessage()}",
                                  bank=self.bank) from f.value
        if f.check(defer.TimeoutError, defer.CancelledError):
            raise TransferFailed(f"{self.where}: no answer within {self.request_timeout:g}s",
                                 zh="银行SFTP服务器响应超时", bank=self.bank) from f.value
        if f.check(neterror.ConnectionLost, neterror.ConnectionDone):
            raise TransferFailed(f"{self.where}: connection lost during transfer", bank=self.bank) from f.value
        if f.check(SFTPError):
            code = f.value.code
            raise TransferFailed(f"{self.where}: server error {code}: {f.value.message}",
                                 bank=self.bank, retryable=code not in (FX_PERMISSION_DENIED,)) from f.value
        raise TransferFailed(f"{self.where}: {f.getErrorMessage()}", bank=self.bank) from f.value

    async def _sftp(self) -> FileTransferClient:
        s = self._session
        if s is None or s.is_lost or s.setup_failure is not None:
            s = self._session = _Session(self)
            self._connect(s)
        return await s.wait()

    def _connect(self, s: _Session) -> None:
        endpoint = HostnameEndpoint(self.reactor, self.host, self.port, timeout=self.connect_timeout)
        s.proto = _ClientTransport(s)

        def setup_timed_out():
            s.fail(BankUnavailable(f"{self.where}: SSH setup not finished within {self.setup_timeout:g}s",
                                   zh="银行SFTP服务器握手超时", bank=self.bank))
            if s.proto.transport is not None:
                s.abort()
            else:
                connecting.cancel()

        timer = self.reactor.callLater(self.setup_timeout, setup_timed_out)

        def settled(result):
            if timer.active():
                timer.cancel()
            return result

        ready = s.wait()
        ready.addBoth(settled)
        ready.addErrback(lambda f: None)  # reported to the callers through their own wait()
        connecting = connectProtocol(endpoint, s.proto)
        connecting.addErrback(s.setup_failed)

    def _timed(self, d: defer.Deferred) -> defer.Deferred:
        """Limit one SFTP request to ``request_timeout``; on timeout drop the connection."""
        session = self._session

        def on_timeout(result, timeout):
            if session is not None:
                session.abort()
            return result

        d.addTimeout(self.request_timeout, self.reactor, onTimeoutCancel=on_timeout)
        return d

    async def _stat(self, sftp, path: str) -> dict | None:
        try:
            return await self._timed(sftp.getAttrs(path.encode()))
        except SFTPError as e:
            if e.code == FX_NO_SUCH_FILE:
                return None
            raise

    # -- operations ---------------------------------------------------------------------------

    async def _deliver(self, name, data, size, signature, ext) -> Receipt:
        sftp = await self._sftp()
        final = posixpath.join(self.inbox, name)
        found = await self._stat(sftp, final)
        if found is not None:
            return self._already_there(name, size, found, ext)
        sig_name = None
        if signature is not None:
            sig_name = f"{name}.{ext}"
            await self._write(sftp, posixpath.join(self.inbox, sig_name), open_payload(signature))
        part = posixpath.join(self.inbox, f".{name}.part")
        written, digest = await self._write(sftp, part, open_payload(data), expected_size=size)
        try:
            await self._timed(sftp.renameFile(part.encode(), final.encode()))
        except SFTPError:
            found = await self._stat(sftp, final)  # someone (an earlier attempt) got there first
            if found is None:
                raise
            return self._already_there(name, size, found, ext)
        return Receipt(name=name, size=written, sha256=digest, already_there=False,
                       signature_name=sig_name)

    def _already_there(self, name, size, attrs, ext) -> Receipt:
        if statmod.S_ISDIR(attrs.get("permissions", 0)) or attrs.get("size") != size:
            raise RemoteRefused(
                f"{self.where}: {self.inbox}/{name} already exists with size {attrs.get('size')}, "
                f"ours is {size}: a different file under the same name",
                zh=f"银行收件目录已有同名但内容不同的文件 {name}，不会覆盖", bank=self.bank)
        return Receipt(name=name, size=size, sha256=None, already_there=True,
                       signature_name=f"{name}.{ext}" if ext else None)

    async def _write(self, sftp, path: str, source, expected_size: int | None = None):
        """Stream ``source`` (a binary file object, closed here) to ``path``; ``(size, sha256)``."""
        digest = hashlib.sha256()
        with source:
            fh = await self._timed(sftp.openFile(path.encode(), FXF_WRITE | FXF_CREAT | FXF_TRUNC, {}))
            errors: list[Failure] = []
            pending: list[defer.Deferred] = []
            offset = 0
            try:
                while not errors:
                    chunk = source.read(CHUNK_SIZE)
                    if not chunk:
                        break
                    digest.update(chunk)
                    d = self._timed(fh.writeChunk(offset, chunk))
                    d.addErrback(errors.append)
                    pending.append(d)
                    offset += len(chunk)
                    if len(pending) >= MAX_OUTSTANDING_WRITES:
                        await pending.pop(0)
                for d in pending:
                    await d
                if errors:
                    errors[0].raiseException()
                attrs = await self._timed(fh.getAttrs())
            finally:
                try:
                    close = fh.close()
                except Exception:  # noqa: BLE001 - connection already gone; the first error wins
                    close = None
                if close is not None:
                    close.addErrback(errors.append)
                    await self._timed(close)
            if errors:
                errors[0].raiseException()
        if expected_size is not None and (offset != expected_size or attrs.get("size") != offset):
            raise TransferFailed(
                f"{self.where}: {path}: wrote {offset} bytes, server has {attrs.get('size')}, "
                f"expected {expected_size}", bank=self.bank)
        return offset, digest.hexdigest()

    async def _listdir(self, sftp, path: str) -> list[tuple[str, dict]]:
        directory = await self._timed(sftp.openDirectory(path.encode()))
        entries = []
        try:
            while True:
                try:
                    batch = await self._timed(directory.read())
                except EOFError:
                    break
                entries += [(n.decode("utf-8", "surrogateescape"), attrs) for n, _, attrs in batch]
        finally:
            await self._timed(directory.close())
        return entries

    async def _list_reports(self) -> list[str]:
        sftp = await self._sftp()
        names = []
        for n, attrs in await self._listdir(sftp, self.outbox):
            mode = attrs.get("permissions")
            if mode is not None and not statmod.S_ISREG(mode):
                continue
            if is_report_name(n, self.signature_exts):
                names.append(n)
        return sorted(names)

    async def _read(self, sftp, path: str) -> bytes:
        fh = await self._timed(sftp.openFile(path.encode(), FXF_READ, {}))
        try:
            attrs = await self._timed(fh.getAttrs())
            if attrs.get("size", 0) > self.max_report_size:
                raise TransferFailed(f"{self.where}: {path} is {attrs['size']} bytes, more than the "
                                     f"{self.max_report_size} allowed", bank=self.bank, retryable=False)
            parts, offset = [], 0
            while True:
                try:
                    chunk = await self._timed(fh.readChunk(offset, CHUNK_SIZE))
                except EOFError:
                    break
                if not chunk:
                    break
                parts.append(chunk)
                offset += len(chunk)
                if offset > self.max_report_size:
                    raise TransferFailed(f"{self.where}: {path} grew past {self.max_report_size} bytes",
                                         bank=self.bank, retryable=False)
            return b"".join(parts)
        finally:
            await self._timed(fh.close())

    async def _fetch_report(self, name: str):
        sftp = await self._sftp()
        path = posixpath.join(self.outbox, name)
        try:
            data = await self._read(sftp, path)
        except SFTPError as e:
            if e.code == FX_NO_SUCH_FILE:
                raise TransferFailed(f"{self.where}: no report {path}", zh=f"银行发件目录中没有报告 {name}",
                                     bank=self.bank, retryable=False) from e
            raise
        signature = None
        for ext in self.signature_exts:
            try:
                signature = await self._read(sftp, f"{path}.{ext}")
                break
            except SFTPError as e:
                if e.code != FX_NO_SUCH_FILE:
                    raise
        return data, signature

    async def _ensure_archive(self, sftp) -> None:
        if self._session is not None and self._session.archive_ok:
            return
        try:
            await self._timed(sftp.makeDirectory(self.archive.encode(), {}))
        except SFTPError as e:
            if e.code not in (FX_FAILURE, FX_PERMISSION_DENIED) and e.code != 11:  # 11: FX_FILE_ALREADY_EXISTS (v5+)
                raise
            attrs = await self._stat(sftp, self.archive)
            if attrs is None or not statmod.S_ISDIR(attrs.get("permissions", 0)):
                raise
        if self._session is not None:
            self._session.archive_ok = True

    async def _ack_report(self, name: str) -> None:
        sftp = await self._sftp()
        await self._ensure_archive(sftp)
        for n in [name] + [f"{name}.{ext}" for ext in self.signature_exts]:
            src, dst = posixpath.join(self.outbox, n), posixpath.join(self.archive, n)
            try:
                await self._timed(sftp.renameFile(src.encode(), dst.encode()))
            except SFTPError:
                if await self._stat(sftp, src) is None:
                    continue  # not there (no such signature, or acknowledged before)
                if n == name and await self._stat(sftp, dst) is not None:
                    raise TransferFailed(
                        f"{self.where}: cannot archive {src}: {dst} already exists",
                        zh=f"无法归档报告 {name}：归档目录已有同名文件", bank=self.bank, retryable=False)
                raise
