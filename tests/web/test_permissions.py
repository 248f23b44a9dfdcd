"""The permission matrix: every role against every endpoint, in and out of its scope, over real HTTP,
for the console (session cookie) and the API (bearer token).

The expected answers are written out here, not read from the application's route table, so a
change to who may see what has to change this table too; and every endpoint of that table must have
a row here (:func:`test_the_matrix_has_a_row_for_every_endpoint_of_the_app`).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent))
from webhelp import USERS, person, register_people  # noqa: E402

F, D, U, B, A = "finance", "department", "unit", "bank", "auditor"

# endpoint -> roles allowed (200); every other role gets 403
ALLOWED = {
    "/me": {F, D, U, B, A},
    "/banks": {F, B, A},
    "/files": {F, B, A},
    "/batches": {F, D, A},
    "/batches/{a}": {F, D, A},
    "/batches/{a}/findings": {F, D, A},
    "/items": {F, D, U, A},
    "/items/{item_a}": {F, D, U, A},
    "/exceptions": {F, B, A},
    "/corrections": {F, D, U, A},
    "/compliance": {F, D, B, A},
    "/disclosure": {F, D, U, A},
    "/beneficiaries/{b1}": {F, D, U, A},
}

# the one-card account calls [Art. 10-14], API only: "METHOD path" -> roles allowed; every other role
# gets 403. In scope (a beneficiary of unit 500236101) -> STATUS; out of scope -> 404 (403 for a unit
# asking to register for another unit).
POSTS = {
    "POST /beneficiaries/lookup": {F, D, U, A},
    "POST /beneficiaries": {U},
    "POST /beneficiaries/{b3}/accounts": {U},
    "POST /beneficiaries/{b1}/proxies": {U},
    "POST /accounts/{declared}/approve": {U},
    "POST /accounts/{approved}/confirm": {F},
}
STATUS = {"POST /beneficiaries": 201, "POST /beneficiaries/{b3}/accounts": 201, "POST /beneficiaries/{b1}/proxies": 201}
# who sees the beneficiaries of unit 500236101 (奉节县): its county's finance, departments and auditor
SEES_UNIT_101 = {"fin_fj", "dept_fj", "dept_mz", "unit_101", "aud_fj", "aud_all"}

# objects each user may see: batches, items (by unit), banks
SEES_BATCH = {"fin_fj": "A", "fin_xs": "B", "dept_fj": "A", "dept_mz": "", "aud_fj": "A", "aud_all": "AB"}
SEES_BANKS = {"fin_fj": {"icbc-cq", "cqrcb-fj"}, "fin_xs": {"icbc-cq", "psbc-xs"}, "aud_fj": {"icbc-cq", "cqrcb-fj"},
              "aud_all": {"icbc-cq", "cqrcb-fj", "psbc-xs"}, "bank_icbc": {"icbc-cq"}, "bank_rcb": {"cqrcb-fj"}}


def _paths(world, people=None) -> dict[str, str]:
    item_a = min(i for i, rec in world.items_a.items() if rec[0] == "500236101")
    ids = {k: v for k, v in (people or {"b1": 0}).items() if k != "ids"}
    return {k: k.format(a=world.batch_a, item_a=item_a, **ids) for k in ALLOWED}


@pytest.fixture
def people(engine, world):
    return register_people(engine, world.vault)


def _post_body(key: str, people: dict, n: int) -> dict:
    """A valid body for each account call; ``n`` makes a registration's person new."""
    b1_id = people["ids"][people["b1"]]
    idn, acct = person(100 + n)
    return {"POST /beneficiaries/lookup": {"id_number": b1_id},
            "POST /beneficiaries": {"name": "张伟", "id_number": idn, "account": acct, "bank": "icbc-cq",
                                    "unit": "500236101", "chosen_by_beneficiary": True},
            "POST /beneficiaries/{b3}/accounts": {"account": person(150 + n)[1], "bank": "icbc-cq",
                                                  "chosen_by_beneficiary": True},
            "POST /beneficiaries/{b1}/proxies": {"proxy_name": "李大明", "proxy_id_number": person(180 + n)[0],
                                                 "relation": "子女", "reason": "行动不便", "approved_by": "永乐镇-王镇长"},
            "POST /accounts/{declared}/approve": {"note": "本人到场签字"},
            "POST /accounts/{approved}/confirm": {}}[key]


def _expected_item_units(user: str) -> set[str] | None:
    role, scope = USERS[user]
    if role == U:
        return {scope}
    return {"fin_fj": {"500236101", "500236102"}, "fin_xs": {"500241101"}, "dept_fj": {"500236101", "500236102"},
            "dept_mz": set(), "aud_fj": {"500236101", "500236102"},
            "aud_all": {"500236101", "500236102", "500241101"}}.get(user)


def test_api_matrix(site, world, people, engine):
    """Art. 10-14 and 30-35: every role against every endpoint, in and out of its scope; the account
    calls change only what an allowed role in scope asked for."""
    for n, user in enumerate(sorted(USERS)):
        c = site.token(user)  # one login each: the login rate limit is 10 a minute
        _api_row(c, world, people, user)
        _api_posts(c, world, people, user, n)
    with Session(engine) as s:
        acts = s.execute(sa.text("select actor, action from audit_log where action like 'account.%' "
                                 "or action like 'proxy.%' order by seq")).all()
        n_ben = s.execute(sa.text("select count(*) from beneficiaries")).scalar()
    # in the order of the rows: fin_fj confirms; unit_101 registers (declared by the beneficiary, entered
    # by the unit), records a change (declared by the beneficiary), a proxy, and approves
    by_web = [(a, act) for a, act in acts if a.startswith("user:")]
    assert by_web == [("user:fin_fj", "account.superseded"), ("user:fin_fj", "account.active"),
                      ("user:unit_101", "account.active"), ("user:unit_101", "proxy.recorded"),
                      ("user:unit_101", "account.approved")], by_web
    assert n_ben == 4  # the three of the fixture and unit_101's registration; nothing of a refused call


def _api_posts(c, world, people, user, n):
    role, _scope = USERS[user]
    ids = {k: v for k, v in people.items() if k != "ids"}
    for key, roles in POSTS.items():
        method, path = key.split(" ", 1)
        r = c.request(method, "/api/v1" + path.format(**ids), _json(_post_body(key, people, n)), "application/json")
        if role not in roles:
            assert r.status == 403, (user, key, r.status)
            continue
        in_scope = user in SEES_UNIT_101
        if in_scope:
            assert r.status == STATUS.get(key, 200), (user, key, r.status, r.text[:300])
        else:
            assert r.status == (403 if key == "POST /beneficiaries" else 404), (user, key, r.status, r.text[:300])
        _assert_masked(world, r.text)
        assert people["ids"][people["b1"]] not in r.text


def _json(data: dict) -> bytes:
    import json

    return json.dumps(data).encode()


def _api_row(c, world, people, user):
    role, _scope = USERS[user]
    paths = _paths(world, people)
    for key, path in paths.items():
        r = c.get("/api/v1" + path)
        want_ok = role in ALLOWED[key]
        if not want_ok:
            assert r.status == 403, (user, path, r.status)
            continue
        in_scope = True
        if key.startswith("/batches/"):
            in_scope = "A" in SEES_BATCH[user]
        if key == "/items/{item_a}":
            in_scope = "500236101" in _expected_item_units(user)
        if key.startswith("/beneficiaries/"):
            in_scope = user in SEES_UNIT_101
        assert r.status == (200 if in_scope else 404), (user, path, r.status, r.text[:200])
        if r.status != 200:
            continue
        data = r.json()
        if key == "/batches":
            got = {b["id"] for b in data["batches"]}
            assert got == {world.batch_a if x == "A" else world.batch_b for x in SEES_BATCH[user]}, user
        if key == "/items":
            assert {i["unit"] for i in data["items"]} == _expected_item_units(user), user
            _assert_masked(world, r.text)
        if key == "/banks":
            assert {b["id"] for b in data["banks"]} == SEES_BANKS[user], user
        if key == "/files":
            banks = {f["bank"] for f in data["outbound"]} | {f["bank"] for f in data["inbound"]}
            assert banks <= SEES_BANKS[user], user
            if user == "bank_rcb":
                assert data == {"outbound": [], "inbound": []}
            if user == "bank_icbc":
                assert {f["batch_id"] for f in data["outbound"]} == {world.batch_a}
        if key == "/exceptions":
            expect = 1 if "icbc-cq" in SEES_BANKS[user] else 0
            assert len(data["exceptions"]) == expect, user
        if key == "/corrections":
            units = {i["unit"] for i in data["items"]}
            assert units <= (_expected_item_units(user) or set()), user
            sees_rejected = "500236101" in (_expected_item_units(user) or set())
            assert len(data["items"]) == (1 if sees_rejected else 0), user
            _assert_masked(world, r.text)
        if key == "/compliance":
            if role == B:
                assert {b["bank"] for b in data["banks"]} <= {USERS[user][1]}
        if key == "/items/{item_a}":
            _assert_masked(world, r.text)
        if key == "/beneficiaries/{b1}":
            assert data["name"] == "李*汉" and data["masked"] and people["ids"][people["b1"]] not in r.text


def _assert_masked(world, text: str) -> None:
    for _unit, name, id_number, account in list(world.items_a.values()) + list(world.items_b.values()):
        assert id_number not in text and account not in text
        assert f'"{name}"' not in text


def test_console_matrix(site, world, people):
    for user in sorted(USERS):
        _console_row(site, world, people, user)


def _console_row(site, world, people, user):
    role, _scope = USERS[user]
    c = site.login(user)
    for key, path in _paths(world, people).items():
        r = c.get("/console" + path)
        if role not in ALLOWED[key]:
            assert r.status == 403, (user, path, r.status)
            continue
        in_scope = True
        if key.startswith("/batches/"):
            in_scope = "A" in SEES_BATCH[user]
        if key == "/items/{item_a}":
            in_scope = "500236101" in _expected_item_units(user)
        if key.startswith("/beneficiaries/"):
            in_scope = user in SEES_UNIT_101
        assert r.status == (200 if in_scope else 404), (user, path, r.status)
        if r.status == 200:
            assert r.header("Content-Type").startswith("text/html")
            assert "built-in method" not in r.text and "bound method" not in r.text, (user, path)
            for _u, _name, id_number, account in list(world.items_a.values()) + list(world.items_b.values()):
                assert id_number not in r.text and account not in r.text


def test_anonymous_gets_401_from_the_api_and_a_login_redirect_from_the_console(site, world):
    c = site.client()
    for key, path in _paths(world).items():
        r = c.get("/api/v1" + path)
        assert r.status == 401 and "Bearer" in r.header("WWW-Authenticate"), path
        r = c.get("/console" + path)
        assert r.status == 303 and r.header("Location").startswith("/console/login?next=/console"), path
    for key in POSTS:
        method, path = key.split(" ", 1)
        r = c.request(method, "/api/v1" + re.sub(r"\{\w+\}", "1", path), b"{}", "application/json")
        assert r.status == 401, key
    c.bearer = "made-up-token"
    assert c.get("/api/v1/batches").status == 401
    r = c.post("/console/items/1/reveal", {"csrf": "x"})
    assert r.status == 303


def test_the_matrix_has_a_row_for_every_endpoint_of_the_app():
    """A new endpoint without a row in ALLOWED or POSTS fails here (and a row for a removed one)."""
    from gateway.admin.web.app import ENDPOINTS

    def norm(path: str) -> str:
        return re.sub(r"\{\w+\}", "{id}", path)

    expected = {("GET", norm(k)) for k in ALLOWED} | {tuple(norm(k).split(" ", 1)) for k in POSTS}
    assert {(ep.method, ep.path) for ep in ENDPOINTS} == expected
    assert set(STATUS) <= set(POSTS)


def test_account_calls_are_api_only_and_the_console_refuses_them(site, world, people):
    """The console serves no account call, even with a good CSRF token: 404, nothing registered."""
    c = site.login("unit_101")
    page = c.get("/console/")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    idn, acct = person(90)
    r = c.post("/console/beneficiaries", {"csrf": csrf, "name": "张伟", "id_number": idn, "account": acct,
                                          "bank": "icbc-cq", "chosen_by_beneficiary": "true"})
    assert r.status == 404
    assert site.token("unit_101").post_json("/api/v1/beneficiaries/lookup", {"id_number": idn}).status == 404


def test_public_pages_need_no_login(site):
    c = site.client()
    for path in ("/public/", "/public/policies", "/public/query", "/health"):
        assert c.get(path).status == 200, path
    r = c.get("/public/policies.csv")
    assert r.status == 200 and "耕地地力保护补贴" in r.body.decode("utf-8-sig")


def test_a_console_cookie_is_no_api_token_and_a_token_is_no_console_cookie(site):
    c = site.login("fin_fj")
    assert c.get("/api/v1/batches").status == 401
    t = site.token("fin_fj")
    t.cookies["ykt_session"] = t.bearer
    t.bearer = None
    assert t.get("/console/batches").status == 303


# --- unmasked personal data: finance of the county only, audited -----------------------------------

def _item(world, unit="500236101"):
    return min(i for i, rec in world.items_a.items() if rec[0] == unit)


def test_only_finance_of_the_county_sees_an_item_unmasked_and_it_is_audited(site, world):
    item = _item(world)
    _unit, name, id_number, account = world.items_a[item]
    c = site.token("fin_fj")
    assert name not in c.get(f"/api/v1/items/{item}").json()["item"]["name"]
    r = c.request("POST", f"/api/v1/items/{item}/reveal")
    assert r.status == 200, r.text
    got = r.json()["item"]
    assert (got["name"], got["id_number"], got["account"]) == (name, id_number, account)
    viewed = [a for a in site.audit_log if a["action"] == "personal_data.viewed"]
    assert [(a["actor"], a["subject"]) for a in viewed] == [("user:fin_fj", f"item:{item}")]
    for user, status in (("fin_xs", 404), ("aud_all", 403), ("aud_fj", 403), ("dept_fj", 403), ("unit_101", 403),
                         ("unit_102", 403), ("bank_icbc", 403)):
        r = site.token(user).request("POST", f"/api/v1/items/{item}/reveal")
        assert r.status == status, (user, r.status)
        assert id_number not in r.text
    assert len([a for a in site.audit_log if a["action"] == "personal_data.viewed"]) == 1


def test_console_reveal_needs_the_csrf_token(site, world):
    item = _item(world)
    _unit, name, id_number, _account = world.items_a[item]
    c = site.login("fin_fj")
    page = c.get(f"/console/items/{item}")
    assert page.status == 200 and id_number not in page.text and "记入审计" in page.text
    for bad in ({}, {"csrf": ""}, {"csrf": "forged"}):
        r = c.post(f"/console/items/{item}/reveal", bad)
        assert r.status == 403 and id_number not in r.text
    assert not [a for a in site.audit_log if a["action"] == "personal_data.viewed"]
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    r = c.post(f"/console/items/{item}/reveal", {"csrf": csrf})
    assert r.status == 200 and id_number in r.text and name in r.text
    assert len([a for a in site.audit_log if a["action"] == "personal_data.viewed"]) == 1
    # another user's CSRF token is no good either
    other = site.login("fin_fj")
    r = other.post(f"/console/items/{item}/reveal", {"csrf": csrf})
    assert r.status == 403


def test_auditor_exports_the_audit_trail_others_may_not(site, world):
    site.login("fin_fj")  # something in the trail
    r = site.token("aud_fj").get("/api/v1/audit/export")
    assert r.status == 200 and '"session.opened"' in r.text
    for user in ("fin_fj", "dept_fj", "unit_101", "bank_icbc"):
        assert site.token(user).get("/api/v1/audit/export").status == 403


def test_notice_preview_is_masked_and_limited_to_the_viewers_units(site, world):
    q = "/api/v1/disclosure?unit=500236101&policy=GDDL&period=2026-11"
    data = site.token("unit_101").get(q).json()
    settled_101 = [rec for i, rec in sorted(world.items_a.items()) if rec[0] == "500236101"][:2]  # rows 1-2 settled
    assert [r["name"] for r in data["preview"]["rows"]] == [rec[1][0] + "*" * (len(rec[1]) - 2) + rec[1][-1]
                                                            if len(rec[1]) > 2 else rec[1][0] + "*"
                                                            for rec in settled_101]
    _assert_masked(world, site.token("unit_101").get(q).text)
    assert site.token("unit_102").get(q).json()["preview"] is None
    assert site.token("fin_xs").get(q).json()["preview"] is None


def test_an_item_held_out_of_a_payment_file_is_in_its_countys_exceptions_queue(site, world, engine):
    """Art. 15, 34: an item whose personal data failed its check at dispatch (``gateway.dispatch.render``)
    has no bank file; it is in the exceptions queue of those who see its county, and of nobody else."""
    import datetime as dt
    import json

    from gateway.db.models import Item, ReconException
    from gateway.dispatch.render import HELD_KIND

    item = _item(world)
    with Session(engine) as s, s.begin():
        e2e = s.get(Item, item).end_to_end_id
        s.add(ReconException(reference=e2e, kind=HELD_KIND, created_at=dt.datetime(2026, 11, 2, 8, 0),
                             detail=json.dumps({"item_id": item, "en": "held out", "zh": "已暂扣"})))
    for user, sees in (("fin_fj", True), ("aud_fj", True), ("aud_all", True), ("fin_xs", False),
                       ("bank_icbc", False)):
        rows = site.token(user).get("/api/v1/exceptions").json()["exceptions"]
        assert any(r["kind"] == HELD_KIND and r["reference"] == e2e for r in rows) == sees, user
