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
