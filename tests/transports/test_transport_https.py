"""HTTPS transport against a real twisted.web TLS server on a loopback port (``https_bank``)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import https_bank
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from sshd_server import free_port

from formats.signature.keys import make_leaf, make_test_ca
from gateway.config import model as m
from gateway.transports import (
    AuthenticationFailed,
    BankUnavailable,
    RemoteRefused,
    ServerCertificateMismatch,
    make_transport,
)
from gateway.transports.https import HttpsClient


@pytest.fixture(scope="session")
def tls(tmp_path_factory) -> dict[str, Path]:
    """Certificates: the bank's CA and server, our CA and client, and some that must not work."""
    d = tmp_path_factory.mktemp("tls")
    out: dict[str, Path] = {}

    def save(name: str, pem: bytes) -> Path:
        (d / name).write_bytes(pem)
        out[name] = d / name
        return d / name

    bank_ca_key, bank_ca = make_test_ca("Bank CA")
    gw_ca_key, gw_ca = make_test_ca("Finance Bureau CA")
    stranger_ca_key, stranger_ca = make_test_ca("Stranger CA")
    server_key, server_cert = make_leaf(bank_ca_key, bank_ca, "bank-https", server=True)
    _, other_server = make_leaf(bank_ca_key, bank_ca, "bank-https", server=True)  # same CA, same name
    client_key, client_cert = make_leaf(gw_ca_key, gw_ca, "gateway", client=True)
    stranger_key, stranger_cert = make_leaf(stranger_ca_key, stranger_ca, "gateway", client=True)
    for name, pem in [("server.key", server_key), ("server.crt", server_cert), ("other_server.crt", other_server),
                      ("gw_ca.crt", gw_ca), ("client.key", client_key), ("client.crt", client_cert),
                      ("stranger.key", stranger_key), ("stranger.crt", stranger_cert)]:
        save(name, pem)
    # Another certificate for the server's own key (a renewal): pinned by key, it still matches.
    key = serialization.load_pem_private_key(server_key, None)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "renewed")])
    renewed = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(dt.datetime(2020, 1, 1)).not_valid_after(dt.datetime(2099, 1, 1))
               .sign(key, hashes.SHA256()))
    save("renewed_same_key.crt", renewed.public_bytes(serialization.Encoding.PEM))
    return out


@pytest.fixture
def bank(tls, twisted_reactor):
    state = https_bank.BankState()
    port = twisted_reactor.call(
        https_bank.listen, twisted_reactor.reactor, state, tls["server.key"], tls["server.crt"], tls["gw_ca.crt"])
    state.url = f"https://127.0.0.1:{port.getHost().port}/ykt/v1"
    yield state
    twisted_reactor.call(_abort_hanging, state)
    twisted_reactor.call(port.stopListening)


def _abort_hanging(state) -> None:
    for request in state.hanging:
        if request.channel is not None and request.channel.transport is not None:
            request.channel.transport.loseConnection()


def client_for(url: str, tls, reactor, **kw) -> HttpsClient:
    opts = {"reactor": reactor, "url": url, "server_cert": tls["server.crt"], "client_cert": tls["client.crt"],
            "client_key": tls["client.key"], "bank": "test-bank"}
    opts.update(kw)
    return HttpsClient(**opts)


@pytest.fixture
def client(bank, tls, twisted_reactor):
    c = client_for(bank.url, tls, twisted_reactor.reactor)
    yield c
    twisted_reactor.call(c.close)


def test_deliver_then_deliver_again_is_idempotent(bank, tls, twisted_reactor, in_reactor):
    cfg = m.HttpsTransport(url=bank.url, server_cert=tls["server.crt"], client_cert=tls["client.crt"],
                           client_key=tls["client.key"])
    t = make_transport(cfg, reactor=twisted_reactor.reactor)
    try:
        body = b"<Document>pain.001 MSG1</Document>"
        first = in_reactor(t.deliver, "MSG1.xml", body, b"CMS-SIG", signature_ext="p7s")
        assert not first.already_there and first.sha256 == hashlib.sha256(body).hexdigest()
        assert first.remote["status"] == "accepted" and first.remote["sha256"] == first.sha256
        assert bank.files["MSG1.xml"] == (body, b"CMS-SIG")
        again = in_reactor(t.deliver, "MSG1.xml", body, b"CMS-SIG", signature_ext="p7s")
        assert again.already_there and again.remote["sha256"] == first.sha256
        assert in_reactor(t.receipt, "MSG1.xml")["msg_id"] == "MSG1"
        assert in_reactor(t.receipt, "NOPE.xml") is None
    finally:
        in_reactor(t.close)


def test_deliver_streams_from_a_path(client, bank, in_reactor, tmp_path):
    src = tmp_path / "MSG2.txt"
    src.write_bytes(b"0123456789" * 100_000)
    r = in_reactor(client.deliver, "MSG2.txt", src)
    assert r.size == 1_000_000 and bank.files["MSG2.txt"] == (src.read_bytes(), None)


def test_400_is_remote_refused(client, bank, in_reactor):
    with pytest.raises(RemoteRefused) as e:
        in_reactor(client.deliver, "EMPTY.xml", b"")
    assert not e.value.retryable and "400" in str(e.value)


def test_reports_list_fetch_ack_and_verify(client, bank, in_reactor):
    bank.reports["R1.xml"] = (b"<pain.002/>", b"bank-sig")
    bank.reports["R2.txt"] = ("成功|1\r\n".encode("gbk"), None)
    assert in_reactor(client.list_reports) == ["R1.xml", "R2.txt"]
    assert in_reactor(client.fetch_report, "R1.xml") == (b"<pain.002/>", b"bank-sig")
    assert in_reactor(client.fetch_report, "R2.txt") == ("成功|1\r\n".encode("gbk"), None)
    in_reactor(client.ack_report, "R1.xml")
    assert in_reactor(client.list_reports) == ["R2.txt"]
    answer = in_reactor(client.verify, b"<acmt.023/>", "application/xml")
    assert b'"verified": true' in answer and bank.verify_requests == [(b"<acmt.023/>", "application/xml")]
    assert in_reactor(client.health) is True


def test_a_certificate_from_the_right_ca_that_is_not_pinned_is_refused(bank, tls, twisted_reactor, in_reactor):
    c = client_for(bank.url, tls, twisted_reactor.reactor, server_cert=tls["other_server.crt"])
    with pytest.raises(ServerCertificateMismatch) as e:
        in_reactor(c.deliver, "MSG3.xml", b"roster")
    assert not e.value.retryable and "中间人" in e.value.zh
    assert bank.files == {}
    in_reactor(c.close)


def test_pinned_by_public_key_a_renewed_certificate_still_works(bank, tls, twisted_reactor, in_reactor):
    c = client_for(bank.url, tls, twisted_reactor.reactor, server_cert=tls["renewed_same_key.crt"])
    assert in_reactor(c.list_reports) == []
    in_reactor(c.close)


def test_503_is_bank_unavailable(client, bank, in_reactor):
    bank.outage = True
    with pytest.raises(BankUnavailable) as e:
        in_reactor(client.deliver, "MSG4.xml", b"x")
    assert e.value.retryable and "503" in str(e.value)
    bank.outage = False
    assert not in_reactor(client.deliver, "MSG4.xml", b"x").already_there


def test_a_client_certificate_from_an_unknown_ca_is_refused(bank, tls, twisted_reactor, in_reactor):
    c = client_for(bank.url, tls, twisted_reactor.reactor, client_cert=tls["stranger.crt"],
                   client_key=tls["stranger.key"])
    with pytest.raises(AuthenticationFailed) as e:
        in_reactor(c.list_reports)
    assert not e.value.retryable
    in_reactor(c.close)


def test_refused_port_is_bank_unavailable(tls, twisted_reactor, in_reactor):
    c = client_for(f"https://127.0.0.1:{free_port()}/ykt/v1", tls, twisted_reactor.reactor)
    with pytest.raises(BankUnavailable):
        in_reactor(c.list_reports)


def test_no_answer_times_out(client, bank, tls, twisted_reactor, in_reactor):
    bank.hang = True
    c = client_for(bank.url, tls, twisted_reactor.reactor, timeout=0.5)
    with pytest.raises(BankUnavailable) as e:
        in_reactor(c.list_reports)
    assert "0.5s" in str(e.value)
    in_reactor(c.close)
