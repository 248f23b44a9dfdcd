"""The bank's HTTPS API (twisted.web over TLS with a required client certificate): only moves bytes.

Paths below the base path of the bank's URL (e.g. ``/ykt/v1``), as in docs/BANK_PROTOCOL.md::

    PUT  /files/<name>          upload (X-Signature: base64 detached signature)
    GET  /files/<name>          the receipt
    GET  /reports               reports not yet acknowledged
    GET  /reports/<name>        a report (X-Signature for detached schemes)
    POST /reports/<name>/ack    the gateway has it
    POST /verify                acmt.023 -> acmt.024, or JSON
    GET  /health
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
from pathlib import Path

from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from zope.interface import implementer
from twisted.python import log
from twisted.web import resource, server

from formats.errors import FormatError
from simulators.bank import BankError


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLS:
    """A pyOpenSSL server context (``listenSSL`` takes it) that *requires* a client certificate
    issued by ``client_ca``: a client without one is refused in the handshake. TLS 1.2 or newer."""

    def __init__(self, cert: Path, key: Path, client_ca: Path) -> None:
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
        ctx.use_certificate_chain_file(str(cert))
        ctx.use_privatekey_file(str(key))
        ctx.check_privatekey()
        ctx.load_verify_locations(str(client_ca))
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda conn, cert, errno, depth, ok: bool(ok))
        ctx.set_session_id(b"ykt-bank-sim")
        self._ctx = ctx

    def getContext(self) -> SSL.Context:
        return self._ctx

    def serverConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        return SSL.Connection(self._ctx, None)


def tls_options(cert: Path, key: Path, client_ca: Path) -> ServerTLS:
    return ServerTLS(cert, key, client_ca)


def _json(request, code: int, body: dict) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


class BankApi(resource.Resource):
    """One resource for the whole API (``isLeaf``): dispatches on method and path.

    :param bank: the :class:`simulators.service.SimulatedBank` (``receive``, ``core``, ``available``, ``run``).
    :param base_path: e.g. ``"/ykt/v1"``.
    """

    isLeaf = True

    def __init__(self, bank, base_path: str) -> None:
        super().__init__()
        self.bank = bank
        self.base = [p.encode() for p in base_path.strip("/").split("/") if p]

    def render(self, request):
        parts = [p for p in request.prepath + request.postpath if p != b""]
        if parts[: len(self.base)] != self.base:
            return _json(request, 404, {"error": "not found"})
        parts = [p.decode("utf-8", "replace") for p in parts[len(self.base):]]
        method = request.method.decode()
        if not self.bank.available("https"):
            request.setHeader(b"retry-after", b"60")
            return _json(request, 503, {"status": "unavailable", "error": "the bank is in a maintenance window"})
        try:
            return self._route(request, method, parts)
        except BankError as e:
            return _json(request, 400, {"error": str(e)})

    def _route(self, request, method: str, parts: list[str]):
        core = self.bank.core
        if parts == ["health"] and method == "GET":
            return _json(request, 200, {"status": "ok"})
        if len(parts) == 2 and parts[0] == "files":
            name = parts[1]
            if method == "PUT":
                return self._put(request, name)
            if method == "GET":
                body = core.receipt_json(name)
                if body is None:
                    return _json(request, 404, {"error": f"no file {name!r}"})
                request.setHeader(b"content-type", b"application/json; charset=utf-8")
                return body
        if parts == ["reports"] and method == "GET":
            return _json(request, 200, {"reports": core.list_reports()})
        if len(parts) == 2 and parts[0] == "reports" and method == "GET":
            path = core.report_path(parts[1])
            if path is None:
                return _json(request, 404, {"error": f"no report {parts[1]!r}"})
            sig = core.report_signature(parts[1])
            if sig is not None:
                request.setHeader(b"x-signature", base64.b64encode(sig))
            request.setHeader(b"content-type", b"application/xml" if path.suffix == ".xml" else b"text/plain; charset=gbk")
            return path.read_bytes()
        if len(parts) == 3 and parts[0] == "reports" and parts[2] == "ack" and method == "POST":
            return self._deferred(request, self.bank.run(core.ack, parts[1]),
                                  lambda ok: (request.setResponseCode(204), b"")[1] if ok
                                  else _json(request, 404, {"error": f"no report {parts[1]!r}"}))
        if parts == ["verify"] and method == "POST":
            ctype = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
            data = request.content.read()
            if ctype == b"application/json":
                fn, out_type = core.verify_json, b"application/json; charset=utf-8"
            else:
                fn, out_type = core.verify_xml, b"application/xml"

            def answer(body):
                request.setHeader(b"content-type", out_type)
                return body

            return self._deferred(request, self.bank.run(fn, data), answer)
        return _json(request, 404 if method in ("GET", "PUT", "POST") else 405, {"error": f"no {method} /{'/'.join(parts)}"})

    def _put(self, request, name: str):
        core = self.bank.core
        core.check_name(name)  # BankError -> 400
        sig_header = request.getHeader(b"x-signature")
        signature = None
        if sig_header is not None:
            try:
                signature = base64.b64decode(sig_header, validate=True)
            except (binascii.Error, ValueError):
                return _json(request, 400, {"error": "X-Signature is not base64"})
        staged = core.inbox / f".{name}.http{id(request)}.part"
        request.content.seek(0)
        with open(staged, "wb") as out:
            shutil.copyfileobj(request.content, out)

        def answer(intake):
            body = json.loads(intake.receipt.to_json())
            code = 409 if intake.replay else 200 if intake.repeat else 201
            return _json(request, code, body)

        return self._deferred(request, self.bank.receive(name, staged, signature), answer,
                              cleanup=lambda: os.path.exists(staged) and os.remove(staged))

    def _deferred(self, request, d, on_result, cleanup=None):
        def ok(result):
            body = on_result(result)
            if not request.finished and not request._disconnected:
                request.write(body)
                request.finish()

        def err(f):
            if cleanup:
                cleanup()
            if f.check(BankError, FormatError):
                body = _json(request, 400, {"error": str(f.value)})
            else:
                log.err(f, "bank API")
                body = _json(request, 500, {"error": "internal error"})
            if not request.finished and not request._disconnected:
                request.write(body)
                request.finish()

        d.addCallbacks(ok, err)
        return server.NOT_DONE_YET


def make_site(bank, base_path: str) -> server.Site:
    site = server.Site(BankApi(bank, base_path))
    site.displayTracebacks = False
    site.noisy = False
    return site
