"""Online verification with the bank over real HTTPS with client certificates [Art. 12, 18].

The partner-bank simulator's HTTPS server is not ready yet, so these tests start a real
twisted.web HTTPS server (certificates from ``formats.signature.keys``; a client certificate is
required) that answers ``POST /ykt/v1/verify`` as ``docs/BANK_PROTOCOL.md`` says, from a small
account book, with acmt.024 or JSON. The answers go into the cache and the rule engine reads them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from formats.iso20022.acmt import read_acmt023, write_acmt024
from formats.model import VerificationReport, VerificationResult
from formats.signature.keys import make_leaf, make_test_ca
from gateway.admin.verification import AccountCheck, BankVerifier, https_client, refresh, store_answers, status_of
from gateway.validation.engine import validate
from gateway.validation.model import REJECT, REVIEW
from gateway.validation.rules import RuleSet
from vhelp import NOW, card, cand, rid

ZHANG, LI, WANG, ZHAO, QIAN = rid(), rid(), rid(), rid(), rid()
A_OK, A_CLOSED, A_FROZEN, A_LOST = card(), card(), card(), card()
# the bank's book: account -> (name, id, state)
BOOK = {A_OK: ("张三", ZHANG, "active"), A_CLOSED: ("李四", LI, "closed"), A_FROZEN: ("王五", WANG, "frozen"),
        A_LOST: ("钱七", QIAN, "lost")}


def bank_answer(account, name, id_number):
    entry = BOOK.get(account)
    if entry is None:
        return False, "AC01", "卡号不存在"
    if entry[0] != name:
        return False, "BE01", "户名不符"
    if id_number and entry[1] != id_number:
        return False, "BE01", "证件号码不符"
    return {"active": (True, None, None), "closed": (False, "AC04", "账户已销户"),
            "frozen": (False, "AC06", "账户冻结"), "lost": (False, "AC06", "挂失")}[entry[2]]


@pytest.fixture(scope="module")
def pki():
    ca_key, ca = make_test_ca("Test Bank CA")
    srv = make_leaf(ca_key, ca, "bank.test", server=True)
    cli = make_leaf(ca_key, ca, "yikatong gateway", client=True)
    other_ca_key, other_ca = make_test_ca("Someone else")
    stranger = make_leaf(other_ca_key, other_ca, "stranger", client=True)
    return {"ca": ca, "server": srv, "client": cli, "stranger": stranger}


@pytest.fixture(scope="module")
def bank(pki, call_in_reactor):
    """A real HTTPS server requiring a client certificate from the CA; ``mode`` switches outages."""
    from twisted.internet import reactor, ssl
    from twisted.web import resource, server

    state = {"mode": "up", "requests": 0}

    class Verify(resource.Resource):
        isLeaf = True

        def render_POST(self, request):
            state["requests"] += 1
            if state["mode"] == "down":
                request.setResponseCode(503)
                return b"maintenance"
            body = request.content.read()
            if request.getHeader("content-type") == "application/json":
                q = json.loads(body)
                res = [dict(zip(("verified", "reason_code", "reason_text"),
                                bank_answer(x["account"], x["name"], x["id_number"])), query_id=x["query_id"])
                       for x in q["queries"]]
                request.setHeader("content-type", "application/json")
                return json.dumps({"results": res}, ensure_ascii=False).encode()
            req = read_acmt023(body, source="test")
            results = tuple(VerificationResult(x.query_id, *bank_answer(x.account, x.name, x.id_number))
                            for x in req.queries)
            if state["mode"] == "partial":
                results = results[:1]
            request.setHeader("content-type", "application/xml")
            return write_acmt024(VerificationReport("RPT1", dt.datetime(2026, 11, 2, 9, 0), req.message_id, results))

    root = resource.Resource()
    v1 = resource.Resource()
    ykt = resource.Resource()
    root.putChild(b"ykt", ykt)
    ykt.putChild(b"v1", v1)
    v1.putChild(b"verify", Verify())
    key, cert = pki["server"]
    opts = ssl.PrivateCertificate.loadPEM(key + b"\n" + cert).options(ssl.Certificate.loadPEM(pki["ca"]))
    port = call_in_reactor(lambda: reactor.listenSSL(0, server.Site(root), opts, interface="127.0.0.1"))
    state["url"] = f"https://127.0.0.1:{port.getHost().port}/ykt/v1"
    yield state
    call_in_reactor(port.stopListening)


def verifier(pki, bank, codec="acmt", who="client", url=None, timeout=10.0):
    from twisted.internet import reactor

    key, cert = pki[who]
    http = https_client(reactor, trust_pem=pki["ca"], client_key_pem=key, client_cert_pem=cert)
    return BankVerifier(bank_id="icbc-cq", base_url=url or bank["url"], http=http, clock=reactor, codec=codec,
                        timeout=timeout, bank_code="102653000019")


CHECKS = [
    AccountCheck("icbc-cq", A_OK, "张三", ZHANG),  # ok
    AccountCheck("icbc-cq", A_OK, "张叁", ZHANG),  # name mismatch (homophone)
    AccountCheck("icbc-cq", A_CLOSED, "李四", LI),  # closed
    AccountCheck("icbc-cq", A_FROZEN, "王五", WANG),  # frozen
    AccountCheck("icbc-cq", card(), "赵六", ZHAO),  # unknown account
    AccountCheck("icbc-cq", A_LOST, "钱七", QIAN),  # reported lost
]
STATUSES = ["ok", "name_mismatch", "closed", "frozen", "unknown", "lost"]


@pytest.mark.parametrize("codec", ["acmt", "json"])
def test_bank_answers_over_https_with_client_certificate(pki, bank, call_in_reactor, codec):
    """Art. 12: account/identity consistency and card status asked of the bank (acmt.023/024 or JSON)."""
    bank["mode"] = "up"
    answers = call_in_reactor(verifier(pki, bank, codec).verify, CHECKS)
    assert [a.status for a in answers] == STATUSES
    assert answers[1].reason_code == "BE01" and answers[2].reason_code == "AC04"


def _engine_findings(session, cfg, vault, checks):
    rs = dataclasses.replace(RuleSet.default("DB"), rules=("online_verification",))
    cands = [cand(i, name=c.name, id_number=c.id_number, account=c.account, bank="icbc-cq")
             for i, c in enumerate(checks, 1)]
    return {c.seq: [(f.code, f.severity) for f in fs] for c, fs in validate(
        cands, policy=cfg.policies["DB"], config=cfg, session=session, vault=vault, now=NOW, rules=rs)}


def test_name_mismatch_closed_frozen_unknown_each_found(pki, bank, call_in_reactor, session, cfg, vault):
    """Must show: name mismatch, closed, frozen and unknown accounts found via the bank, through the cache."""
    bank["mode"] = "up"
    answers = call_in_reactor(verifier(pki, bank).verify, CHECKS)
    store_answers(session, vault, answers, now=NOW)
    assert _engine_findings(session, cfg, vault, CHECKS) == {
        1: [], 2: [("ACCOUNT_NAME_MISMATCH", REJECT)], 3: [("ACCOUNT_CLOSED", REJECT)],
        4: [("ACCOUNT_FROZEN", REJECT)], 5: [("ACCOUNT_UNKNOWN", REJECT)], 6: [("ACCOUNT_LOST", REJECT)]}


@pytest.mark.parametrize("how", ["http 503", "connection refused", "unknown client certificate", "partial answer"])
def test_outage_gives_could_not_verify_review(pki, bank, call_in_reactor, session, cfg, vault, how):
    """Must show: a bank outage is "could not verify" (review), never a silent pass — even when a
    good answer was cached before (the new answer replaces it)."""
    store_answers(session, vault, [a for a in call_in_reactor(verifier(pki, bank).verify, CHECKS[:1])], now=NOW)
    v = {"http 503": lambda: verifier(pki, bank),
         "connection refused": lambda: verifier(pki, bank, url="https://127.0.0.1:1/ykt/v1"),
         "unknown client certificate": lambda: verifier(pki, bank, who="stranger"),
         "partial answer": lambda: verifier(pki, bank)}[how]()
    bank["mode"] = {"http 503": "down", "partial answer": "partial"}.get(how, "up")
    try:
        answers = call_in_reactor(v.verify, CHECKS[1:3] if how == "partial answer" else CHECKS[:2])
    finally:
        bank["mode"] = "up"
    assert any(a.status == "unavailable" for a in answers)
    store_answers(session, vault, answers, now=NOW)
    found = _engine_findings(session, cfg, vault, CHECKS[1:3] if how == "partial answer" else CHECKS[:2])
    assert ("ACCOUNT_NOT_VERIFIED", REVIEW) in [f for fs in found.values() for f in fs]
    if how != "partial answer":
        assert found == {1: [("ACCOUNT_NOT_VERIFIED", REVIEW)], 2: [("ACCOUNT_NOT_VERIFIED", REVIEW)]}


def test_timeout_is_an_outage(pki, call_in_reactor):
    """A bank that accepts the connection and never answers: unavailable after the timeout."""
    from twisted.internet import protocol, reactor

    class Silent(protocol.Protocol):
        pass

    port = call_in_reactor(lambda: reactor.listenTCP(0, protocol.Factory.forProtocol(Silent), interface="127.0.0.1"))
    try:
        v = verifier(pki, {"url": ""}, url=f"https://127.0.0.1:{port.getHost().port}/ykt/v1", timeout=0.5)
        answers = call_in_reactor(v.verify, CHECKS[:1])
    finally:
        call_in_reactor(port.stopListening)
    assert [a.status for a in answers] == ["unavailable"] and "0.5" in answers[0].reason_text


def test_refresh_fills_the_cache(pki, bank, call_in_reactor, engine, cfg, vault):
    """The asynchronous refresher stores every answer in short transactions."""
    from sqlalchemy.orm import Session, sessionmaker

    bank["mode"] = "up"
    counts = call_in_reactor(refresh, verifier(pki, bank), sessionmaker(engine), vault, CHECKS, now=lambda: NOW,
                             batch_size=4)
    assert counts == {s: 1 for s in STATUSES}
    with Session(engine) as s:
        assert _engine_findings(s, cfg, vault, CHECKS)[3] == [("ACCOUNT_CLOSED", REJECT)]


@pytest.mark.parametrize("verified,code,text,want", [
    (True, None, None, "ok"), (False, "AC01", "卡号不存在", "unknown"), (False, "AC04", None, "closed"),
    (False, "AC06", "账户冻结", "frozen"), (False, "AC06", "挂失", "lost"), (False, "BE01", "户名不符", "name_mismatch"),
    (False, "BE01", "身份证号不符", "id_mismatch"), (False, "MD07", "客户已身故", "refused"), (False, None, None, "refused"),
])
def test_status_of_reason_codes(verified, code, text, want):
    assert status_of(verified, code, text) == want
