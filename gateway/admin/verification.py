"""Online account verification with the partner bank [Art. 12, 18].

The rule engine never waits for a bank: it reads ``account_verifications`` (a cache with an
expiry). This module fills that cache:

* :class:`BankVerifier` — an asynchronous client (Twisted + treq) that POSTs an acmt.023 (or the
  bank's JSON) to ``<base url>/verify`` and reads the acmt.024 (or JSON) answer, as
  ``docs/BANK_PROTOCOL.md`` describes. HTTPS with a client certificate; the server certificate
  (or its CA) is pinned (:func:`https_client`). Any failure — connection refused, TLS refused,
  timeout, HTTP error, unreadable answer, a query the bank did not answer — becomes the status
  ``unavailable`` for the queries concerned, which the engine reports as ``ACCOUNT_NOT_VERIFIED``
  (review): an outage is never a silent pass.
* :func:`refresh` — verify a list of :class:`AccountCheck` and store the answers.
* :func:`store_answers` / :func:`status_of` — the cache side, synchronous.

Reason codes (``config/reason_codes.toml``) to status: AC01 unknown, AC04 closed, AC06 frozen (or
lost when the bank's text says 挂失), BE01 name mismatch (or ID mismatch when the text names the
ID: 证件/身份证). Any other negative answer is kept as ``refused`` with its code, a review.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable

from sqlalchemy import delete, insert, tuple_
from sqlalchemy.orm import Session
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from gateway.admin.models import AccountVerification
from gateway.privacy import PiiVault

OK, UNAVAILABLE, REFUSED = "ok", "unavailable", "refused"
DEFAULT_TTL = dt.timedelta(days=30)
OUTAGE_TTL = dt.timedelta(hours=1)  # retry soon; until then the item is held for review


@dataclass(frozen=True)
class AccountCheck:
    """What is asked: does ``account`` at ``bank_id`` belong to ``name`` with ``id_number``?"""

    bank_id: str
    account: str
    name: str
    id_number: str
    bank_code: str | None = None


@dataclass(frozen=True)
class Answer:
    check: AccountCheck
    status: str  # ok | name_mismatch | id_mismatch | closed | frozen | lost | unknown | refused | unavailable
    reason_code: str | None = None
    reason_text: str | None = None


def status_of(verified: bool, code: str | None, text: str | None) -> str:
    """The cache status for one bank answer."""
    if verified:
        return OK
    t = text or ""
    if code == "AC01":
        return "unknown"
    if code == "AC04":
        return "closed"
    if code == "AC06":
        return "lost" if "挂失" in t else "frozen"
    if code == "BE01":
        return "id_mismatch" if ("证件" in t or "身份证" in t) else "name_mismatch"
    return REFUSED


def store_answers(session: Session, vault: PiiVault, answers: Iterable[Answer], *, now: dt.datetime,
                  ttl: dt.timedelta = DEFAULT_TTL, outage_ttl: dt.timedelta = OUTAGE_TTL) -> int:
    """Write answers to the cache (replacing earlier ones for the same account + person); returns
    how many. An ``unavailable`` answer expires after ``outage_ttl``."""
    now = now.astimezone(dt.timezone.utc).replace(tzinfo=None) if now.tzinfo else now
    rows = {}
    for a in answers:
        c = a.check
        key = (vault.blind_index("account", c.account), vault.blind_index("id", c.id_number),
               vault.blind_index("name", c.name))
        rows[key] = {"account_hash": key[0], "id_hash": key[1], "name_hash": key[2], "bank_id": c.bank_id,
                     "status": a.status, "reason_code": a.reason_code, "reason_text": (a.reason_text or None),
                     "checked_at": now, "expires_at": now + (outage_ttl if a.status == UNAVAILABLE else ttl)}
    keys = list(rows)
    for i in range(0, len(keys), 500):
        part = keys[i:i + 500]
        session.execute(delete(AccountVerification).where(
            tuple_(AccountVerification.account_hash, AccountVerification.id_hash, AccountVerification.name_hash)
            .in_(part)))
    if rows:
        session.execute(insert(AccountVerification), list(rows.values()))
    return len(rows)


# --------------------------------------------------------------------------- the async client


@implementer(IPolicyForHTTPS)
class _ClientCertPolicy:
    """``IPolicyForHTTPS``: pins the bank's certificate (or CA) and presents our client certificate."""

    def __init__(self, trust_pem: bytes, client_key_pem: bytes, client_cert_pem: bytes, hostname: str | None = None):
        from twisted.internet import ssl

        self._trust = ssl.Certificate.loadPEM(trust_pem)
        self._client = ssl.PrivateCertificate.loadPEM(client_key_pem + b"\n" + client_cert_pem)
        self._hostname = hostname

    def creatorForNetloc(self, hostname: bytes, port: int):
        from twisted.internet import ssl

        return ssl.optionsForClientTLS(self._hostname or hostname.decode("ascii"), trustRoot=self._trust,
                                       clientCertificate=self._client)


def https_client(reactor, *, trust_pem: bytes, client_key_pem: bytes, client_cert_pem: bytes,
                 hostname: str | None = None):
    """A ``treq.client.HTTPClient`` that speaks HTTPS with our client certificate and trusts only
    ``trust_pem`` (the bank's server certificate or the CA that issued it)."""
    from treq.client import HTTPClient
    from twisted.web.client import Agent

    policy = _ClientCertPolicy(trust_pem, client_key_pem, client_cert_pem, hostname)
    return HTTPClient(Agent(reactor, contextFactory=policy))


class BankVerifier:
    """Asks one bank about accounts. ``http`` is a treq ``HTTPClient`` (see :func:`https_client`;
    tests may pass ``treq.testing.StubTreq``); ``clock`` an ``IReactorTime``.

    :param codec: ``"acmt"`` (acmt.023/acmt.024, XML) or ``"json"`` (the bank's JSON).
    :param timeout: seconds before the request counts as an outage.
    """

    def __init__(self, *, bank_id: str, base_url: str, http, clock, codec: str = "acmt", timeout: float = 30.0,
                 bank_code: str | None = None, message_id: Callable[[], str] | None = None,
                 now: Callable[[], dt.datetime] | None = None):
        if codec not in ("acmt", "json"):
            raise ValueError(f"codec must be 'acmt' or 'json', not {codec!r}")
        self.bank_id, self.url = bank_id, base_url.rstrip("/") + "/verify"
        self.http, self.clock, self.codec, self.timeout = http, clock, codec, timeout
        self.bank_code = bank_code
        self._message_id = message_id or (lambda: "VRF" + uuid.uuid4().hex[:24])
        self._now = now or (lambda: dt.datetime.fromtimestamp(clock.seconds(), dt.timezone.utc))

    def _encode(self, checks: list[AccountCheck]) -> tuple[bytes, bytes, str]:
        if self.codec == "json":
            body = {"message_id": self._message_id(), "queries": [
                {"query_id": str(i), "name": c.name, "id_number": c.id_number, "account": c.account}
                for i, c in enumerate(checks, 1)]}
            return json.dumps(body, ensure_ascii=False).encode(), b"application/json", body["message_id"]
        from formats.iso20022.acmt import write_acmt023
        from formats.model import VerificationQuery, VerificationRequest

        mid = self._message_id()
        req = VerificationRequest(mid, self._now(), tuple(
            VerificationQuery(str(i), c.name, c.account, c.id_number, c.bank_code or self.bank_code)
            for i, c in enumerate(checks, 1)))
        return write_acmt023(req), b"application/xml", mid

    def _decode(self, data: bytes) -> dict[str, tuple[bool, str | None, str | None]]:
        if self.codec == "json":
            doc = json.loads(data.decode("utf-8"))
            return {str(r["query_id"]): (bool(r["verified"]), r.get("reason_code"), r.get("reason_text"))
                    for r in doc["results"]}
        from formats.iso20022.acmt import read_acmt024

        report = read_acmt024(data, source=f"{self.bank_id} acmt.024")
        return {r.query_id: (r.verified, r.reason_code, r.reason_text) for r in report.results}

    def verify(self, checks: Iterable[AccountCheck]):
        """A Deferred firing with one :class:`Answer` per check, in order. Never errbacks for a
        bank failure: those answers are ``unavailable`` with the failure as reason text."""
        from twisted.internet import defer

        checks = list(checks)
        if not checks:
            return defer.succeed([])
        body, ctype, _mid = self._encode(checks)

        def outage(why: str) -> list[Answer]:
            return [Answer(c, UNAVAILABLE, None, why[:500]) for c in checks]

        timed_out = object()

        @defer.inlineCallbacks
        def exchange():
            resp = yield self.http.post(self.url, data=body, headers={b"Content-Type": [ctype]})
            data = yield resp.content()
            return resp.code, data

        @defer.inlineCallbacks
        def go():
            d = exchange()
            d.addTimeout(self.timeout, self.clock, onTimeoutCancel=lambda _result, _t: timed_out)
            try:
                got = yield d
            except Exception as e:  # noqa: BLE001 - any transport failure is an outage, reported
                return outage(f"{type(e).__name__}: {e}"[:500])
            if got is timed_out:
                return outage(f"no answer within {self.timeout:g} s")
            code, data = got
            if code != 200:
                return outage(f"HTTP {code}")
            try:
                answered = self._decode(data)
            except Exception as e:  # noqa: BLE001 - an unreadable answer is not a pass
                return outage(f"unreadable answer: {e}"[:500])
            out = []
            for i, c in enumerate(checks, 1):
                got = answered.get(str(i))
                if got is None:
                    out.append(Answer(c, UNAVAILABLE, None, "the bank did not answer this query"))
                else:
                    verified, code, text = got
                    out.append(Answer(c, status_of(verified, code, text), code, text))
            return out

        return go()


def refresh(verifier: BankVerifier, session_factory, vault: PiiVault, checks: Iterable[AccountCheck], *,
            now: Callable[[], dt.datetime], ttl: dt.timedelta = DEFAULT_TTL, batch_size: int = 500):
    """Verify ``checks`` in requests of ``batch_size`` and store every answer (outages too);
    returns a Deferred firing with ``{status: count}``. Each request's answers are committed in
    their own short transaction (``session_factory()`` gives a session)."""
    from twisted.internet import defer

    checks = list(checks)

    @defer.inlineCallbacks
    def go():
        counts: dict[str, int] = {}
        for i in range(0, len(checks), batch_size):
            answers = yield verifier.verify(checks[i:i + batch_size])
            with session_factory() as s, s.begin():
                store_answers(s, vault, answers, now=now(), ttl=ttl)
            for a in answers:
                counts[a.status] = counts.get(a.status, 0) + 1
        return counts

    return go()
