"""Small clients for the tests: HTTPS with a client certificate (urllib), report readers."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request

from formats.iso20022.pain002 import read_pain002
from simulators.scenario import Scenario


def accept_all(**extra) -> Scenario:
    """A fresh scenario: every account not in the (empty) book is credited; ``extra`` adds TOML-like keys."""
    data = {"book": {"unknown": "accept"}}
    data.update(extra)
    return Scenario.from_mapping(data, source="test")


def https(rb, method: str, path: str, body: bytes | None = None, headers: dict | None = None, *, cert: bool = True):
    """``(status, headers, body)`` from the bank's API, as the gateway (client certificate) would call it."""
    ctx = ssl.create_default_context(cafile=str(rb.keys.tls_ca_cert))
    if cert:
        ctx.load_cert_chain(str(rb.keys.gateway_tls_cert), str(rb.keys.gateway_tls_key))
    req = urllib.request.Request(rb.https_url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def put_file(rb, f):
    headers = {"X-Signature": base64.b64encode(f.signature).decode()} if f.signature else {}
    status, _, body = https(rb, "PUT", f"/files/{f.name}", f.path.read_bytes(), headers)
    return status, json.loads(body)


def reports(rb) -> dict[str, bytes]:
    """Every report in the outbox by name."""
    return {n: rb.core.report_path(n).read_bytes() for n in rb.core.list_reports()}


def status_reports(rb):
    return [read_pain002(b, source=n) for n, b in reports(rb).items() if b"pain.002" in b[:200]]


class SftpLoginFailed(Exception):
    """The bank's SSH server closed the connection before an SFTP session was open (e.g. a refused login)."""


def sftp_session(rb, *, password: str | None = None, key=None):
    """An SFTP session (twisted.conch client, the bank's host key pinned) as the bank's user, logging in with
    ``password`` and/or the private key file ``key``; each tried once. Returns ``(client, close)``: call the
    ``FileTransferClient``'s methods through ``rb._rt.call``. :raises SftpLoginFailed: no session."""
    from twisted.conch.error import ConchError
    from twisted.conch.ssh import channel, common, connection, keys, transport, userauth
    from twisted.conch.ssh.filetransfer import FileTransferClient
    from twisted.internet import defer, protocol

    pinned = keys.Key.fromFile(str(rb.bank_keys.ssh_host_pub))
    ready: defer.Deferred = defer.Deferred()

    class Channel(channel.SSHChannel):
        name = b"session"

        def channelOpen(self, data):
            d = self.conn.sendRequest(self, b"subsystem", common.NS(b"sftp"), wantReply=True)
            d.addCallbacks(self._subsystem, ready.errback)

        def _subsystem(self, _):
            client = FileTransferClient()
            client.makeConnection(self)
            self.dataReceived = client.dataReceived
            ready.callback(client)

    class Connection(connection.SSHConnection):
        def serviceStarted(self):
            self.openChannel(Channel(conn=self))

    class Auth(userauth.SSHUserAuthClient):
        def __init__(self):
            super().__init__(rb.username.encode(), Connection())
            self._password, self._key = password, key

        def getPassword(self, prompt=None):
            pw, self._password = self._password, None
            return defer.succeed(pw.encode()) if pw is not None else None

        def getPublicKey(self):
            if self._key is None:
                return None
            return keys.Key.fromFile(str(self._key)).public()

        def getPrivateKey(self):
            k, self._key = self._key, None
            return defer.succeed(keys.Key.fromFile(str(k)))

    class Transport(transport.SSHClientTransport):
        def verifyHostKey(self, host_key, fingerprint):
            if keys.Key.fromString(host_key) != pinned:
                return defer.fail(ConchError("host key does not match the pinned one"))
            return defer.succeed(True)

        def connectionSecure(self):
            self.requestService(Auth())

        def connectionLost(self, reason):
            super().connectionLost(reason)
            if not ready.called:
                ready.errback(SftpLoginFailed(reason.getErrorMessage()))

    def connect():
        protocol.ClientCreator(rb._rt.reactor, Transport).connectTCP("127.0.0.1", rb.sftp_port)
        return ready

    client = rb._rt.call(connect)
    return client, lambda: rb._rt.call(lambda: client.transport.conn.transport.loseConnection())


def sftp_upload(rb, client, f) -> None:
    """Upload instruction file ``f`` as the protocol says: signature, ``.<name>.part``, rename.
    :raises twisted.conch.ssh.filetransfer.SFTPError: the bank refused (the rename fails with the reason)."""
    from twisted.conch.ssh.filetransfer import FXF_CREAT, FXF_TRUNC, FXF_WRITE

    def put(remote: str, data: bytes):
        d = client.openFile(remote.encode(), FXF_WRITE | FXF_CREAT | FXF_TRUNC, {})
        return d.addCallback(lambda h: h.writeChunk(0, data).addCallback(lambda _: h.close()))

    if f.signature is not None:
        rb._rt.call(put, f"/inbox/{f.signature_name}", f.signature)
    rb._rt.call(put, f"/inbox/.{f.name}.part", f.path.read_bytes())
    rb._rt.call(client.renameFile, f"/inbox/.{f.name}.part".encode(), f"/inbox/{f.name}".encode())
