"""The public self-service query 自助查询: own payments only, masked, rate-limited, no enumeration."""

from __future__ import annotations

import re

from gateway.identity import with_check_digit

UNKNOWN_ID = with_check_digit("11010119900101123")


def _result(html: str) -> str:
    """The part of the page that answers (between the form and the footer note)."""
    return html.split("</form>", 1)[1].split('<p class="small">', 1)[0]


def test_a_person_sees_their_own_payments_masked(site, world):
    item = min(i for i, rec in world.items_a.items() if rec[0] == "500236101")
    _unit, name, id_number, account = world.items_a[item]
    r = site.client().post("/public/query", {"name": name, "id_number": id_number.lower()})
    assert r.status == 200 and 'id="query-result"' in r.text
    assert "耕地地力保护补贴" in r.text and "1500.00" in r.text
    assert id_number not in r.text and account not in r.text and account[-4:] in r.text
    assert re.search(r"<td>" + name[0] + r"\*", r.text)
    same_person = [rec for rec in list(world.items_a.values()) + list(world.items_b.values()) if rec[2] == id_number]
    assert r.text.count("<tr><td>") == len(same_person)


def test_no_hint_whether_an_id_exists(site, world):
    _unit, name, id_number, _account = next(iter(world.items_a.values()))
    c = site.client()
    wrong_name = c.post("/public/query", {"name": name + "某", "id_number": id_number})
    unknown_id = c.post("/public/query", {"name": name, "id_number": UNKNOWN_ID})
    assert wrong_name.status == unknown_id.status == 200
    assert _result(wrong_name.text) == _result(unknown_id.text)
    assert 'id="query-none"' in wrong_name.text and 'id="query-result"' not in wrong_name.text


def test_queries_are_rate_limited_per_client_address(site, world):
    c = site.client()
    for _ in range(5):
        assert c.post("/public/query", {"name": "张三", "id_number": UNKNOWN_ID}).status == 200
    r = c.post("/public/query", {"name": "张三", "id_number": UNKNOWN_ID})
    assert r.status == 429 and "查询过于频繁" in r.text
    assert r.header("Retry-After") == "60"
    site.clock.advance(seconds=61)
    assert c.post("/public/query", {"name": "张三", "id_number": UNKNOWN_ID}).status == 200


def test_a_malformed_query_is_refused_with_a_reason(site):
    r = site.client().post("/public/query", {"name": "", "id_number": "123"})
    assert r.status == 400 and 'id="query-error"' in r.text and 'id="query-result"' not in r.text
