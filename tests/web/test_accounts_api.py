"""The one-card account calls of the API [Art. 10-14] over real HTTP: the same rules and audit
entries as ``ykt accounts …`` (both go through :mod:`gateway.admin.accounts`), plain bilingual
errors with the field at fault, nothing kept of a refused call; and the proxy 代领人 shown, masked,
on every item paid through one [Art. 13]."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent))
from webhelp import NOW, person, register_people  # noqa: E402


def _audit(engine, like: str) -> list[tuple[str, str, str]]:
    with Session(engine) as s:
        return [tuple(r) for r in s.execute(sa.text("select actor, action, subject from audit_log "
                                                    "where action like :a order by seq"), {"a": like})]


def test_register_change_approve_confirm_over_the_api(site, world, engine):
    """Art. 10-11, 14: a unit registers a self-declared account; a change is re-declared, approved by
    the unit and confirmed by county finance, each step with who and when, audited; the old account
    superseded and still shown; personal data masked in every answer."""
    idn, acct = person(1)
    new_acct = person(2)[1]
    unit, fin = site.token("unit_101"), site.token("fin_fj")
    r = unit.post_json("/api/v1/beneficiaries", {"name": "欧阳小明", "id_number": idn, "account": acct,
                                                 "bank": "icbc-cq", "social_security_card": True,
                                                 "chosen_by_beneficiary": True, "form_ref": "YL-2026-017"})
    assert r.status == 201, r.text
    bid, old = r.json()["beneficiary_id"], r.json()["account_id"]
    r = unit.post_json(f"/api/v1/beneficiaries/{bid}/accounts", {"account": new_acct, "bank": "icbc-cq",
                                                                 "chosen_by_beneficiary": True})
    assert r.status == 201 and r.json()["replaces_account_id"] == old, r.text
    new = r.json()["account_id"]
    assert fin.post_json(f"/api/v1/accounts/{new}/confirm", {}).status == 400  # not approved yet
    assert unit.post_json(f"/api/v1/accounts/{new}/approve", {"note": "本人签字"}).status == 200
    r = fin.post_json(f"/api/v1/accounts/{new}/confirm", {})
    assert r.status == 200 and r.json()["state"] == "active", r.text
    r = fin.get(f"/api/v1/beneficiaries/{bid}")
    data = r.json()
    assert data["name"] == "欧**明" and data["id_number"] == idn[:6] + "********" + idn[-4:]
    assert [(a["id"], a["state"]) for a in data["accounts"]] == [(old, "superseded"), (new, "active")]
    assert data["accounts"][0]["social_security_card"] and data["accounts"][1]["account"].endswith(new_acct[-4:])
    assert [(h["step"], h["by"], h["role"]) for h in data["accounts"][1]["history"]] == [
        ("declared", "beneficiary", "beneficiary"), ("approved", "user:unit_101", "unit"),
        ("active", "user:fin_fj", "county-finance")]
    assert all(h["at"] for h in data["accounts"][1]["history"])
    assert idn not in r.text and acct not in r.text and new_acct not in r.text
    assert _audit(engine, "account.%") == [
        ("beneficiary", "account.declared", f"account:{old}"), ("user:unit_101", "account.active", f"account:{old}"),
        ("beneficiary", "account.declared", f"account:{new}"), ("user:unit_101", "account.approved", f"account:{new}"),
        ("user:fin_fj", "account.superseded", f"account:{old}"), ("user:fin_fj", "account.active", f"account:{new}")]
    page = site.login("unit_101").get(f"/console/beneficiaries/{bid}")
    assert page.status == 200 and "superseded" in page.text and "欧**明" in page.text and idn not in page.text


@pytest.mark.parametrize("case,body,field,words", [
    ("no name", {"name": ""}, "name", "缺少“姓名”"),
    ("ID as a number", {"id_number": 500236197001012011}, "id_number", "应为文本"),
    ("31 February", {"id_number": "500236199002310018"}, "id_number", "无效"),
    ("bank imposed", {"chosen_by_beneficiary": False}, "chosen_by_beneficiary", "第十条"),
    ("flag as text", {"chosen_by_beneficiary": "yes"}, "chosen_by_beneficiary", "true 或 false"),
    ("unknown bank", {"bank": "no-such-bank"}, "bank", "未知的代发银行"),
    ("short account", {"account": "62170001234"}, "account", "不合理"),
    ("a wallet", {"kind": "wallet"}, "kind", "card"),
    ("another's card", {"account": "taken"}, "account", "他人"),
])
def test_bad_input_is_400_with_the_field_and_nothing_is_kept(site, world, engine, case, body, field, words):
    """Art. 10-11: a refusal names the field in plain Chinese and English, never shows the ID in full,
    and keeps nothing (the beneficiary row of a refused registration is rolled back)."""
    people = register_people(engine, world.vault)
    idn, acct = person(30)
    taken = person(1)[1]  # b1's card
    full = {"name": "张伟", "id_number": idn, "account": acct, "bank": "icbc-cq", "chosen_by_beneficiary": True}
    full.update({k: (taken if v == "taken" else v) for k, v in body.items()})
    c = site.token("unit_101")
    r = c.post_json("/api/v1/beneficiaries", full)
    assert r.status == 400, r.text
    err = r.json()
    assert err["field"] == field and words in err["message_zh"] and err["message_en"], err
    assert idn not in r.text and taken not in r.text
    assert c.post_json("/api/v1/beneficiaries/lookup", {"id_number": idn}).status == 404
    with Session(engine) as s:
        assert s.execute(sa.text("select count(*) from beneficiaries")).scalar() == 3
    assert len(people["ids"]) == 3


def test_a_body_that_is_not_json_is_400(site, world):
    r = site.token("unit_101").request("POST", "/api/v1/beneficiaries", b"name=x", "application/x-www-form-urlencoded")
    assert r.status == 400 and r.json()["field"] is None and "JSON" in r.json()["message_zh"]


def test_proxy_needs_an_approver_other_than_the_recorder(site, world, engine):
    """Art. 13 代领: the proxy's identity, relation and reason recorded by one person and approved by
    another; the caller cannot name themselves as the approver."""
    people = register_people(engine, world.vault)
    b1, proxy_id = people["b1"], person(40)[0]
    c = site.token("unit_101")
    body = {"proxy_name": "李大明", "proxy_id_number": proxy_id, "relation": "子女", "reason": "行动不便"}
    for me in ("unit_101", "user:unit_101"):
        r = c.post_json(f"/api/v1/beneficiaries/{b1}/proxies", {**body, "approved_by": me})
        assert r.status == 400 and r.json()["field"] == "approved_by", r.text
    r = c.post_json(f"/api/v1/beneficiaries/{b1}/proxies", {**body, "relation": "", "approved_by": "永乐镇-王镇长"})
    assert r.status == 400 and r.json()["field"] == "relation"
    r = c.post_json(f"/api/v1/beneficiaries/{b1}/proxies", {**body, "approved_by": "永乐镇-王镇长"})
    assert r.status == 201, r.text
    data = c.get(f"/api/v1/beneficiaries/{b1}").json()
    assert [(p["proxy_name"], p["recorded_by"], p["approved_by"]) for p in data["proxies"]] == [
        ("李*明", "user:unit_101", "永乐镇-王镇长")]
    assert proxy_id not in c.get(f"/api/v1/beneficiaries/{b1}").text
    assert _audit(engine, "proxy.%") == [("user:unit_101", "proxy.recorded", f"proxy:{r.json()['proxy_id']}")]


def test_an_item_paid_through_a_proxy_shows_the_proxy_masked(site, world, engine):
    """Art. 13: a roster with the proxy columns; the item page, the item rows and the API show
    代领人 with the proxy's name masked (and the recorded proxy's relation and approver); only the
    county's finance bureau sees it in full, through the audited reveal."""
    from gateway.intake.submit import submit_roster
    from tests.support.rosters import HEADER, csv_bytes

    people = register_people(engine, world.vault)
    b1_id, proxy_id = people["ids"][people["b1"]], person(41)[0]
    r = site.token("unit_101").post_json(f"/api/v1/beneficiaries/{people['b1']}/proxies", {
        "proxy_name": "李大明", "proxy_id_number": proxy_id, "relation": "子女", "reason": "行动不便",
        "approved_by": "永乐镇-王镇长"})
    assert r.status == 201, r.text

    def valid(cands, **kw):
        for c in cands:
            yield c, []

    roster = csv_bytes([["李老汉", b1_id, person(1)[1], "icbc-cq", "300.00", "500236101", "李大明", proxy_id],
                        ["王芳", people["ids"][people["b3"]], person(3)[1], "icbc-cq", "300.00", "500236101", "", ""]],
                       HEADER + ["代领人姓名", "代领人身份证号"])
    with Session(engine) as s, s.begin():
        batch = submit_roster(s, world.cfg, world.vault, data=roster, source_name="proxy.csv", policy_code="GDDL",
                              period="2026-12", submitted_by="clerk", now=NOW, validator=valid).batch_id
        proxied, plain = s.scalars(sa.text("select id from items where batch_id = :b order by seq"), {"b": batch}).all()
    console = site.login("unit_101")
    page = console.get(f"/console/items/{proxied}")
    assert page.status == 200
    shown = page.text.split('id="item-proxy">')[1].split("</dd>")[0]
    assert "李*明" in shown and "子女" in shown and "永乐镇-王镇长" in shown and proxy_id[:6] in shown
    assert "代领人" in page.text and "李大明" not in page.text and proxy_id not in page.text
    assert 'id="item-proxy"' not in console.get(f"/console/items/{plain}").text
    rows = console.get(f"/console/items?batch={batch}").text
    assert rows.count("代领人 Proxy 李*明") == 1 and "李大明" not in rows
    api = site.token("dept_fj").get(f"/api/v1/items/{proxied}")
    assert api.json()["item"]["proxy"]["name"] == "李*明" and "李大明" not in api.text
    full = site.token("fin_fj").request("POST", f"/api/v1/items/{proxied}/reveal").json()["item"]["proxy"]
    assert (full["name"], full["id_number"]) == ("李大明", proxy_id)
