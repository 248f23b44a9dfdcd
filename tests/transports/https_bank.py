"""A minimal bank HTTPS server for the transport tests (twisted.web over TLS, client certificate
required). It serves the ``docs/BANK_PROTOCOL.md`` endpoints with state in memory and nothing else:
no formats, no rules. The bank simulator in ``simulators/`` is the real thing and can replace it.

Knobs: ``outage`` (every request answers 503), ``hang`` (requests are never answered).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field

from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLContextFactory
from twisted.web import resource, server
from zope.interface import implementer

PREFIX = [b"ykt", b"v1"]


@dataclass
class BankState:
    files: dict[str, tuple[bytes, bytes | None]] = field(default_factory=dict)
    reports: dict[str, tuple[bytes, bytes | None]] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    verify_requests: list[tuple[bytes, str]] = field(default_factory=list)
    outage: bool = False
    hang: bool = False
    hanging: list = field(default_factory=list)


class BankResource(resource.Resource):
    isLeaf = True

    def __init__(self, state: BankState) -> None:
        super().__init__()
        self.state = state

    def render(self, request):
        st = self.state
        if st.hang:
            st.hanging.append(request)
            return server.NOT_DONE_YET
        if st.outage:
            return self._answer(request, 503, {"status": "outage"})
        path = request.postpath
        if path[:2] != PREFIX:
            return self._answer(request, 404, {"error": "not found"})
        path = [p.decode() for p in path[2:]]
        method = request.method.decode()
        if method == "GET" and path == ["health"]:
            return self._answer(request, 200, {"status": "ok"})
        if method == "PUT" and len(path) == 2 and path[0] == "files":
            return self._put(request, path[1])
        if method == "GET" and len(path) == 2 and path[0] == "files":
            if path[1] not in st.files:
                return self._answer(request, 404, {"error": "unknown"})
            return self._answer(request, 200, self._receipt(path[1]))
        if method == "GET" and path == ["reports"]:
            return self._answer(request, 200, {"reports": sorted(set(st.reports) - st.acked)})
        if method == "GET" and len(path) == 2 and path[0] == "reports":
            if path[1] not in st.reports:
                return self._answer(request, 404, {"error": "unknown"})
            data, sig = st.reports[path[1]]
            if sig is not None:
                request.setHeader(b"X-Signature", base64.b64encode(sig))
            request.setResponseCode(200)
            return data
        if method == "POST" and len(path) == 3 and path[0] == "reports" and path[2] == "ack":
            if path[1] not in st.reports:
                return self._answer(request, 404, {"error": "unknown"})
            st.acked.add(path[1])
            request.setResponseCode(204)
            return b""
        if method == "POST" and path == ["verify"]:
            ctype = (request.getHeader(b"content-type") or b"").decode()
            body = request.content.read()
            st.verify_requests.append((body, ctype))
            request.setHeader(b"Content-Type", b"application/json")
            return json.dumps({"results": [{"query_id": "Q1", "verified": True, "reason_code": None}]}).encode()
        return self._answer(request, 404, {"error": "not found"})

    def _receipt(self, name: str) -> dict:
        data, _ = self.state.files[name]
        return {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "msg_id": name.rsplit(".", 1)[0],
                "status": "accepted"}

    def _put(self, request, name: str):
        data = request.content.read()
        if not data:
            return self._answer(request, 400, {"error": "unreadable: empty file"})
        sig = request.getHeader(b"x-signature")
        sig = base64.b64decode(sig) if sig else None
        st = self.state
        if name in st.files:
            if st.files[name][0] == data:
                return self._answer(request, 200, self._receipt(name))
            return self._answer(request, 400, {"error": "replay: same name, different bytes"})
        st.files[name] = (data, sig)
        return self._answer(request, 201, self._receipt(name))

    @staticmethod
    def _answer(request, code: int, doc: dict) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"Content-Type", b"application/json")
        return json.dumps(doc).encode()


@implementer(IOpenSSLContextFactory)
class ServerTLS:
    """Server TLS context (pyOpenSSL): our certificate, a client certificate from ``client_ca``
    required in the handshake."""

    def __init__(self, key_path, cert_path, client_ca_path) -> None:
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
        ctx.use_certificate_chain_file(str(cert_path))
        ctx.use_privatekey_file(str(key_path))
        ctx.load_verify_locations(str(client_ca_path))
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda conn, cert, err, depth, ok: bool(ok))
        ctx.set_session_id(b"ykt-test-bank")
        self.context = ctx

    def getContext(self):
        return self.context


def listen(reactor, state: BankState, key_path, cert_path, client_ca_path):
    """Listen on 127.0.0.1, an ephemeral port; TLS requiring a client certificate from
    ``client_ca_path``. Returns the listening port (call in the reactor thread)."""
    site = server.Site(BankResource(state))
    site.displayTracebacks = False
    return reactor.listenSSL(0, site, ServerTLS(key_path, cert_path, client_ca_path), interface="127.0.0.1")
