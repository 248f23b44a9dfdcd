"""HTTPS client transport (treq over twisted.web), per ``docs/BANK_PROTOCOL.md``.

TLS with our client certificate; the server certificate is pinned (:mod:`.pinning`). Endpoints,
relative to the bank's base URL:

=============================  ===============================================================
``PUT /files/<name>``          deliver (``X-Signature``: base64 detached signature); 201 new,
                               200 these exact bytes were already there
``GET /files/<name>``          the bank's receipt (:meth:`HttpsClient.receipt`)
``GET /reports``               ``{"reports": [...]}``
``GET /reports/<name>``        the report; ``X-Signature`` beside it
``POST /reports/<name>/ack``   204
``POST /verify``               online account verification (:meth:`HttpsClient.verify`)
``GET /health``                :meth:`HttpsClient.health`
=============================  ===============================================================

Status codes: 503 (and 502/504) -> :class:`BankUnavailable`; 400/409/413/422 ->
:class:`RemoteRefused`; 401/403 -> :class:`AuthenticationFailed`; other failures ->
:class:`TransferFailed`. Every call has a deadline; an upload's grows with its size.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path
from urllib.parse import quote

import treq
from OpenSSL import SSL
from treq.client import HTTPClient
from twisted.internet import defer
from twisted.internet import error as neterror
from twisted.internet.task import Cooperator
from twisted.python.failure import Failure
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool
from twisted.web.http_headers import Headers

from gateway.transports.base import (
    AuthenticationFailed,
    BankUnavailable,
    Payload,
    Receipt,
    RemoteRefused,
    ServerCertificateMismatch,
    TransferFailed,
    TransportError,
    check_name,
    check_signature,
    open_payload,
    payload_size,
)
from gateway.transports.pinning import PinnedPolicy, Pins

_CERT_ALERTS = ("certificate", "unknown ca", "handshake failure", "access denied")


class _HashingReader:
    """A file wrapper that hashes what is read through it (so the upload is read only once)."""

    def __init__(self, f) -> None:
        self.f, self.sha = f, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        chunk = self.f.read(n)
        self.sha.update(chunk)
        return chunk

    def seek(self, *a):
        return self.f.seek(*a)

    def tell(self):
        return self.f.tell()

    def close(self):
        self.f.close()


class HttpsClient:
    """Exchange files with one bank over HTTPS. Implements ``BankTransport``.

    :param reactor: provides ``IReactorTCP`` and ``IReactorTime``.
    :param url: the bank's base URL, e.g. ``https://127.0.0.1:8443/ykt/v1``.
    :param server_cert: the pinned server certificate (PEM or DER).
    :param client_cert, client_key: ours (PEM).
    :param bank: the bank id, for messages.
    :param connect_timeout: seconds for the TCP connection.
    :param timeout: seconds for one request and its answer (uploads get ``size / min_upload_rate``
        more).
    :param min_upload_rate: bytes per second an upload is allowed to be as slow as.
    :param max_report_size: larger answers are refused (not retryable).
    :raises TransportConfigError: certificates or keys that cannot be used.
    """

    def __init__(self, *, reactor, url: str, server_cert: Path, client_cert: Path, client_key: Path,
                 bank: str | None = None, connect_timeout: float = 10.0, timeout: float = 60.0,
                 min_upload_rate: float = 256 * 1024, max_report_size: int = 512 * 1024 * 1024) -> None:
        self.reactor = reactor
        self.url = url.rstrip("/")
        self.bank = bank
        self.timeout = timeout
        self.min_upload_rate = min_upload_rate
        self.max_report_size = max_report_size
        self.where = self.url + (f" (bank {bank})" if bank else "")
        self._policy = PinnedPolicy(Pins.load(Path(server_cert)), Path(client_cert), Path(client_key),
                                    label=self.where, bank=bank)
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = 2
        self._pool.retryAutomatically = False  # a retry is the dispatcher's decision, not ours
        agent = Agent(reactor, contextFactory=self._policy, connectTimeout=connect_timeout, pool=self._pool)
        self._http = HTTPClient(agent)
        self._cooperator = Cooperator(scheduler=lambda f: reactor.callLater(0, f), started=True)

    # -- public face ------------------------------------------------------------------------

    def deliver(self, name: str, data: Payload, signature: bytes | None = None, *,
                signature_ext: str | None = None) -> defer.Deferred:
        """``PUT /files/<name>``, streamed from ``data``. 201 -> new receipt; 200 -> ``already_there``.

        The bank's receipt is in ``Receipt.remote``; when it names a sha256 different from ours the
        bank got other bytes than we sent: :class:`TransferFailed` (not retryable).
        """
        try:
            check_name(name)
            check_signature(signature, signature_ext)
            size = payload_size(data)
        except (ValueError, OSError) as e:
            return defer.fail(e)
        return self._run(self._deliver(name, data, size, signature), self.timeout + size / self.min_upload_rate)

    def list_reports(self) -> defer.Deferred:
        """``GET /reports`` -> sorted names not yet acknowledged."""
        return self._run(self._list_reports())

    def fetch_report(self, name: str) -> defer.Deferred:
        """``GET /reports/<name>`` -> ``(bytes, signature or None)``."""
        try:
            check_name(name)
        except ValueError as e:
            return defer.fail(e)
        return self._run(self._fetch_report(name))

    def ack_report(self, name: str) -> defer.Deferred:
        """``POST /reports/<name>/ack``."""
        try:
            check_name(name)
        except ValueError as e:
            return defer.fail(e)
        return self._run(self._simple("POST", f"/reports/{quote(name, safe='')}/ack", ok=(200, 204)))

    def receipt(self, name: str) -> defer.Deferred:
        """``GET /files/<name>`` -> the bank's receipt dict, or ``None`` when it does not know the file."""
        try:
            check_name(name)
        except ValueError as e:
            return defer.fail(e)
        return self._run(self._receipt(name))

    def verify(self, body: bytes, content_type: str) -> defer.Deferred:
        """``POST /verify`` (acmt.023 as ``application/xml`` or the bank's JSON) -> the answer's bytes."""
        return self._run(self._simple("POST", "/verify", ok=(200,), data=body,
                                      headers={"Content-Type": [content_type]}))

    def health(self) -> defer.Deferred:
        """``GET /health`` -> ``True``; :class:`BankUnavailable` when the bank says it is down."""
        return self._run(self._simple("GET", "/health", ok=(200,))).addCallback(lambda _: True)

    def close(self) -> defer.Deferred:
        """Close kept-alive connections."""
        return self._pool.closeCachedConnections()

    # -- machinery ----------------------------------------------------------------------------

    def _run(self, coro, timeout: float | None = None) -> defer.Deferred:
        d = defer.Deferred.fromCoroutine(coro)
        limit = timeout or self.timeout
        d.addTimeout(limit, self.reactor)
        return d.addErrback(self._translate, limit)

    async def _request(self, method: str, path: str, *, data=None, headers=None):
        """Send one request; return ``(status, headers, body)`` with the body read (capped)."""
        hdrs = Headers(headers or {})
        resp = await self._http.request(method, self.url + path, data=data, headers=hdrs,
                                        reactor=self.reactor, unbuffered=True)
        parts, got = [], 0

        def collect(chunk: bytes) -> None:
            nonlocal got
            got += len(chunk)
            if got > self.max_report_size:
                raise TransferFailed(f"{self.where}: answer to {method} {path} exceeds "
                                     f"{self.max_report_size} bytes", bank=self.bank, retryable=False)
            parts.append(chunk)

        await treq.collect(resp, collect)
        return resp.code, resp.headers, b"".join(parts)

    def _status_error(self, method: str, path: str, code: int, body: bytes) -> TransportError:
        text = body[:500].decode("utf-8", "replace")
        what = f"{self.where}: {method} {path} -> HTTP {code}: {text}"
        if code in (502, 503, 504):
            return BankUnavailable(what, bank=self.bank)
        if code in (401, 403):
            return AuthenticationFailed(what, bank=self.bank)
        if code in (400, 409, 413, 415, 422):
            return RemoteRefused(what, zh=f"银行拒收（HTTP {code}）：{text}", bank=self.bank)
        return TransferFailed(what, bank=self.bank, retryable=code >= 500 or code == 429)

    async def _simple(self, method: str, path: str, *, ok, data=None, headers=None) -> bytes:
        code, _, body = await self._request(method, path, data=data, headers=headers)
        if code not in ok:
            raise self._status_error(method, path, code, body)
        return body

    def _json(self, method: str, path: str, body: bytes):
        try:
            return json.loads(body)
        except ValueError as e:
            raise TransferFailed(f"{self.where}: {method} {path}: the answer is not JSON", bank=self.bank,
                                 retryable=False) from e

    async def _deliver(self, name, data, size, signature) -> Receipt:
        path = f"/files/{quote(name, safe='')}"
        headers = {"Content-Type": ["application/octet-stream"]}
        if signature is not None:
            headers["X-Signature"] = [base64.b64encode(signature).decode("ascii")]
        reader = _HashingReader(open_payload(data))
        try:
            producer = FileBodyProducer(reader, cooperator=self._cooperator)
            code, _, body = await self._request("PUT", path, data=producer, headers=headers)
        finally:
            reader.close()
        if code not in (200, 201):
            raise self._status_error("PUT", path, code, body)
        remote = self._json("PUT", path, body) if body.strip() else None
        ours = reader.sha.hexdigest()
        theirs = remote.get("sha256") if isinstance(remote, dict) else None
        if theirs is not None and theirs != ours:
            raise TransferFailed(f"{self.where}: the bank holds {name} with sha256 {theirs}, we sent {ours}",
                                 zh=f"银行收到的文件 {name} 与我方发送的不一致", bank=self.bank, retryable=False)
        return Receipt(name=name, size=size, sha256=ours, already_there=code == 200,
                       signature_name=None, remote=remote)

    async def _receipt(self, name):
        path = f"/files/{quote(name, safe='')}"
        code, _, body = await self._request("GET", path)
        if code == 404:
            return None
        if code != 200:
            raise self._status_error("GET", path, code, body)
        return self._json("GET", path, body)

    async def _list_reports(self) -> list[str]:
        body = await self._simple("GET", "/reports", ok=(200,))
        doc = self._json("GET", "/reports", body)
        names = doc.get("reports") if isinstance(doc, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise TransferFailed(f"{self.where}: GET /reports: no list of names in the answer",
                                 bank=self.bank, retryable=False)
        for n in names:
            try:
                check_name(n)
            except ValueError as e:
                raise TransferFailed(f"{self.where}: the bank lists an unsafe report name {n!r}",
                                     zh="银行报告名称不合法", bank=self.bank, retryable=False) from e
        return sorted(names)

    async def _fetch_report(self, name: str):
        path = f"/reports/{quote(name, safe='')}"
        code, headers, body = await self._request("GET", path)
        if code == 404:
            raise TransferFailed(f"{self.where}: no report {name}", zh=f"银行没有报告 {name}",
                                 bank=self.bank, retryable=False)
        if code != 200:
            raise self._status_error("GET", path, code, body)
        sig = headers.getRawHeaders("X-Signature")
        if not sig:
            return body, None
        try:
            return body, base64.b64decode(sig[0], validate=True)
        except (binascii.Error, ValueError) as e:
            raise TransferFailed(f"{self.where}: report {name}: X-Signature is not base64",
                                 bank=self.bank, retryable=False) from e

    def _translate(self, f: Failure, limit: float):
        causes = list(_causes(f.value))
        for e in causes:
            if isinstance(e, ServerCertificateMismatch):
                raise e
        if f.check(TransportError):
            return f
        for e in causes:
            if isinstance(e, (defer.TimeoutError, defer.CancelledError)):
                raise BankUnavailable(f"{self.where}: no answer within {limit:g}s",
                                      zh="银行HTTPS服务响应超时", bank=self.bank) from f.value
            if isinstance(e, (neterror.ConnectError, neterror.DNSLookupError)):
                raise BankUnavailable(f"{self.where}: cannot connect: {e}", bank=self.bank) from f.value
        for e in causes:
            if isinstance(e, SSL.Error):
                text = str(e).lower()
                if "alert" in text and any(a in text for a in _CERT_ALERTS):
                    raise AuthenticationFailed(f"{self.where}: the bank refused our client certificate: {e}",
                                               zh="银行拒绝了我方HTTPS客户端证书", bank=self.bank) from f.value
                raise TransferFailed(f"{self.where}: TLS error: {e}", bank=self.bank) from f.value
        raise TransferFailed(f"{self.where}: {f.getErrorMessage()}", bank=self.bank) from f.value


def _causes(exc):
    """``exc`` and everything it wraps (twisted.web's ``reasons`` lists, ``__cause__``, ``__context__``)."""
    seen, stack = set(), [exc]
    while stack:
        e = stack.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        for r in getattr(e, "reasons", None) or ():
            stack.append(r.value if isinstance(r, Failure) else r)
        stack += [e.__cause__, e.__context__]
