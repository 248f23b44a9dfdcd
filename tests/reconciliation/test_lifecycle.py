"""The item lifecycle as one transition table: every pair of states is either allowed or refused."""

import itertools

import pytest

from reconciliation.lifecycle import STATES, TRANSITIONS, IllegalTransition, check_transition, state_after

ALLOWED = {
    ("submitted", "validated"), ("submitted", "rejected_by_validation"),
    ("validated", "sent"),
    ("sent", "accepted"), ("sent", "settled"), ("sent", "rejected_by_bank"),
    ("accepted", "settled"), ("accepted", "rejected_by_bank"),
    ("settled", "returned"),
}


@pytest.mark.parametrize("current, new", list(itertools.product(STATES, STATES)))
def test_every_transition(current, new):
    if current == new:
        assert check_transition(current, new) is False  # a repeat is a no-op: idempotent reports
    elif (current, new) in ALLOWED:
        assert check_transition(current, new) is True
    else:
        with pytest.raises(IllegalTransition):
            check_transition(current, new)


def test_table_is_exactly_the_documented_one():
    assert {(a, b) for a, bs in TRANSITIONS.items() for b in bs} == ALLOWED


def test_first_event_must_be_submitted():
    assert check_transition(None, "submitted") is True
    for s in STATES:
        if s != "submitted":
            with pytest.raises(IllegalTransition):
                check_transition(None, s)


def test_replay():
    assert state_after(["submitted", "validated", "sent", "settled", "settled", "returned"]) == "returned"
    with pytest.raises(IllegalTransition):
        state_after(["submitted", "sent"])
    with pytest.raises(IllegalTransition):
        check_transition("settled", "bogus")
