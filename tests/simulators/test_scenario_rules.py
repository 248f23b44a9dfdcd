"""Scenario item rules match on account, name, ID number and amount (a range, bounds included); all the
conditions of a rule must hold. One small table per condition: (value the payment carries, decision)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from simulators.scenario import ItemFacts, Scenario

SETTLED = ("ACSC", None)


def _decide(rule: dict, *, account="6217000000000009", name="王伟", id_number=None, amount="300.00"):
    s = Scenario.from_mapping({"rule": [rule]}, source="table")
    d = s.decide_item(ItemFacts("M1", "M1.xml", 1, "E1", account, name, id_number, Decimal(amount)), seed=0)
    return d.status, d.reason


@pytest.mark.parametrize("account, expected", [
    ("6217000000000001", ("RJCT", "AC04")),
    ("6217000000000002", ("RJCT", "AC04")),
    ("6217000000000003", SETTLED),
    ("621700000000000", SETTLED),  # a prefix is not the account
])
def test_rule_on_account(account, expected):
    rule = {"account": ["6217000000000001", "6217000000000002"], "outcome": "reject", "reason": "AC04"}
    assert _decide(rule, account=account) == expected


@pytest.mark.parametrize("name, expected", [
    ("冉小梅", ("RJCT", "BE01")),
    ("冉小梅 ", SETTLED),  # names are compared exactly
    ("冉小", SETTLED),
    ("向大明", SETTLED),
])
def test_rule_on_name(name, expected):
    assert _decide({"name": "冉小梅", "outcome": "reject", "reason": "BE01"}, name=name) == expected


@pytest.mark.parametrize("id_number, expected", [
    ("500236198503120021", ("RJCT", "BE01")),
    ("500236198503120022", SETTLED),
    (None, SETTLED),  # a payment without an ID number never matches an ID rule
])
def test_rule_on_id_number(id_number, expected):
    rule = {"id_number": ["500236198503120021"], "outcome": "reject", "reason": "BE01"}
    assert _decide(rule, id_number=id_number) == expected


@pytest.mark.parametrize("amount, expected", [
    ("99.99", SETTLED),
    ("100.00", ("RJCT", "AM02")),
    ("250.50", ("RJCT", "AM02")),
    ("500.00", ("RJCT", "AM02")),
    ("500.01", SETTLED),
])
def test_rule_on_amount_range_bounds_included(amount, expected):
    rule = {"amount_min": "100.00", "amount_max": "500.00", "outcome": "reject", "reason": "AM02"}
    assert _decide(rule, amount=amount) == expected


@pytest.mark.parametrize("amount, expected", [("300.00", ("RJCT", "AM02")), ("300.01", SETTLED)])
def test_rule_on_one_amount(amount, expected):
    assert _decide({"amount": "300.00", "outcome": "reject", "reason": "AM02"}, amount=amount) == expected


@pytest.mark.parametrize("account, amount, expected", [
    ("6217000000000001", "50.00", ("RJCT", "AC06")),
    ("6217000000000001", "50.01", SETTLED),  # the account matches, the amount does not
    ("6217000000000002", "50.00", SETTLED),  # the amount matches, the account does not
])
def test_every_condition_of_a_rule_must_hold(account, amount, expected):
    rule = {"account": "6217000000000001", "amount_max": "50.00", "outcome": "reject", "reason": "AC06"}
    assert _decide(rule, account=account, amount=amount) == expected


def test_return_rule_on_amount_credits_then_returns_after_its_days():
    s = Scenario.from_mapping({"rule": [{"amount_min": "1000.00", "outcome": "return", "days": 3, "reason": "AC04"}]},
                              source="table")
    big = s.decide_item(ItemFacts("M1", "M1.xml", 1, "E1", "6217", "王伟", None, Decimal("1000.00")), seed=0)
    small = s.decide_item(ItemFacts("M1", "M1.xml", 2, "E2", "6217", "王伟", None, Decimal("999.99")), seed=0)
    assert (big.status, big.return_days, big.return_reason) == ("ACSC", 3, "AC04")
    assert (small.status, small.return_days) == ("ACSC", 0)
