"""A running site on 127.0.0.1 (real sockets, the global reactor in a daemon thread), a database
with two counties' batches in it, and one user per role in and out of scope.

Data (``world``):
  batch A: GDDL 2026-11, 奉节 500236, FJ-NYNC, bank icbc-cq; 6 items, rows 1-4 unit 500236101, rows 5-6
           unit 500236102; after the bank report: 3 settled, 1 rejected (AC04), 2 outstanding.
  batch B: TK 2026-11, 秀山 500241, XS-MZ, bank psbc-xs; 3 items, unit 500241101, all outstanding.
  an inbound file from icbc-cq with one line matching nothing -> one exception.
"""

from __future__ import annotations

import datetime as dt
import http.client
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent.parent / "intake"))

from formats.signature.keys import make_leaf, make_test_ca  # noqa: E402
from gateway.admin import auth  # noqa: E402
from gateway.calendar import DEFAULT_CALENDAR_DIR, WorkingDayCalendar  # noqa: E402
from gateway.config import load  # noqa: E402
from gateway.db.models import InboundFile, Item  # noqa: E402
from gateway.dispatch.outbox import claim_due, mark_delivered  # noqa: E402
from gateway.dispatch.plan import plan_files  # noqa: E402
from gateway.dispatch.render import render_planned  # noqa: E402
from gateway.intake.submit import submit_roster  # noqa: E402
from gateway.keys import SigningMaterial  # noqa: E402
from gateway.privacy import PiiVault  # noqa: E402
from reconciliation.apply import apply_outcomes  # noqa: E402
from reconciliation.outcomes import Outcome  # noqa: E402
from rosters import csv_bytes, rows  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from webhelp import PASSWORD, USERS  # noqa: E402,F401

T0 = dt.datetime(2026, 11, 2, 1, 30)
CAL = WorkingDayCalendar.from_dir(DEFAULT_CALENDAR_DIR)
ARTEFACTS = Path(__file__).resolve().parent.parent / "artefacts"

class MutableClock:
    """A ``now()`` callable the test moves forward."""

    def __init__(self, t: dt.datetime) -> None:
        self.t = t

    def __call__(self) -> dt.datetime:
        return self.t

    def advance(self, **kw) -> None:
        self.t += dt.timedelta(**kw)


@pytest.fixture(scope="session")
def signing_keys():
    ca_key, ca_cert = make_test_ca("YKT web test CA")
    return {"gateway": make_leaf(ca_key, ca_cert, "gateway signing"), "bank": make_leaf(ca_key, ca_cert, "bank")}


@pytest.fixture(scope="session")
def vault():
    return PiiVault.from_text(PiiVault.new_key_line("k1"))


def _submit(engine, cfg, vault, keys, tmp_path, *, policy, body, bank):
    gw_key, gw_cert = keys["gateway"]
    signing = SigningMaterial(cfg.banks[bank].signature, gw_key, gw_cert, keys["bank"][1])

    def valid(cands, **kw):
        for c in cands:
            yield c, []

    with Session(engine) as s, s.begin():
        r = submit_roster(s, cfg, vault, data=csv_bytes(body), source_name=f"{policy}.csv", policy_code=policy,
                          period="2026-11", submitted_by="clerk", now=T0, validator=valid)
        plan_files(s, cfg, now=T0, calendar=CAL)
        render_planned(s, cfg, vault, tmp_path / "outbox", signing_for=lambda b: signing)
    with Session(engine) as s, s.begin():
        for c in claim_due(s, now=T0):
            mark_delivered(s, c.file_id, now=T0)
    return r.batch_id


@dataclass
class World:
    cfg: object
    vault: PiiVault
    batch_a: int
    batch_b: int
    items_a: dict = field(default_factory=dict)  # item id -> (unit, name, id_number, account)
    items_b: dict = field(default_factory=dict)


@pytest.fixture
def world(engine, vault, signing_keys, tmp_path) -> World:
    cfg = load("config")
    body_a = rows(6, bank="icbc-cq")
    for r in body_a[4:]:
        r[5] = "500236102"
    a = _submit(engine, cfg, vault, signing_keys, tmp_path, policy="GDDL", body=body_a, bank="icbc-cq")
    body_b = [[n, i, acct.replace("62170001", "62170009"), "psbc-xs", "300.00", "500241101"]
              for n, i, acct, *_ in rows(3)]
    b = _submit(engine, cfg, vault, signing_keys, tmp_path, policy="TK", body=body_b, bank="psbc-xs")
    w = World(cfg, vault, a, b)
    with Session(engine) as s, s.begin():
        for it in s.scalars(sa.select(Item).order_by(Item.id)):
            rec = (it.unit_code, vault.read(it, "name_enc"), vault.read(it, "id_number_enc"),
                   vault.read(it, "account_enc"))
            (w.items_a if it.batch_id == a else w.items_b)[it.id] = rec
        e2e = {it.id: it.end_to_end_id for it in s.scalars(sa.select(Item).where(Item.batch_id == a))}
        ids = sorted(e2e)
        f = InboundFile(bank_id="icbc-cq", name="pain002-1.xml", sha256="0" * 64, path="/dev/null",
                        received_at=T0, kind="pain.002", status="applied")
        s.add(f)
        s.flush()
        outcomes = [Outcome(1, e2e[ids[0]], "settled"), Outcome(2, e2e[ids[1]], "settled"),
                    Outcome(3, e2e[ids[4]], "settled"),
                    Outcome(4, e2e[ids[2]], "rejected_by_bank", reason_code="AC04", reason_text="账户已销户"),
                    Outcome(5, "NO-SUCH-E2E", "settled")]
        apply_outcomes(s, outcomes, now=T0 + dt.timedelta(hours=2), vault=vault, inbound_file_id=f.id)
        for name, (role, scope) in USERS.items():
            auth.add_user(s, cfg, username=name, secret=PASSWORD, role=role, scope=scope, now=T0, rounds=4)
    return w


# --- the site --------------------------------------------------------------------------------------

def _reactor():
    from twisted.internet import reactor

    from simulators.testing import reactor_thread

    reactor_thread()  # the process's one reactor thread, shared with the simulators
    return reactor


@dataclass
class Site:
    port: int
    clock: MutableClock
    audit_log: list
    app: object

    def client(self) -> "Client":
        return Client(self.port)

    def login(self, username: str, password: str = PASSWORD) -> "Client":
        c = self.client()
        c.get("/console/login")
        r = c.post("/console/login", {"username": username, "password": password, "csrf": c.cookies["ykt_login"],
                                      "next": "/console/"})
        assert r.status == 303, (r.status, r.text[:300])
        return c

    def token(self, username: str, password: str = PASSWORD) -> "Client":
        c = self.client()
        r = c.post_json("/api/v1/login", {"username": username, "password": password})
        assert r.status == 200, r.text
        c.bearer = r.json()["token"]
        return c


@dataclass
class Reply:
    status: int
    headers: list
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self):
        import json

        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class Client:
    """A tiny HTTP client with a cookie jar and no redirect following."""

    def __init__(self, port: int) -> None:
        self.port, self.cookies, self.bearer = port, {}, None

    def request(self, method: str, path: str, body: bytes | None = None, ctype: str | None = None) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.bearer:
            headers["Authorization"] = f"Bearer {self.bearer}"
        if ctype:
            headers["Content-Type"] = ctype
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        reply = Reply(resp.status, resp.getheaders(), resp.read())
        conn.close()
        for sc in reply.all("Set-Cookie"):
            name, _, rest = sc.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in sc:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return reply

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, form: dict) -> Reply:
        return self.request("POST", path, urlencode(form).encode(), "application/x-www-form-urlencoded")

    def post_json(self, path: str, data: dict) -> Reply:
        import json

        return self.request("POST", path, json.dumps(data).encode(), "application/json")


@pytest.fixture
def site(engine, world):
    from twisted.internet.threads import blockingCallFromThread
    from twisted.web.server import Site as TwistedSite

    from gateway import audit
    from gateway.admin.web.app import make_resource

    reactor = _reactor()
    clock = MutableClock(T0 + dt.timedelta(days=1))
    recorded: list = []

    def audit_append(session, **kw):
        recorded.append(kw)
        return audit.append(session, keys=None, **kw)

    resource = make_resource(engine=engine, config=world.cfg, vault=world.vault, clock=clock, calendar=CAL,
                             reactor=reactor, audit=audit_append)
    port = blockingCallFromThread(reactor, lambda: reactor.listenTCP(0, TwistedSite(resource),
                                                                     interface="127.0.0.1"))
    yield Site(port.getHost().port, clock, recorded, resource.app)
    blockingCallFromThread(reactor, port.stopListening)
