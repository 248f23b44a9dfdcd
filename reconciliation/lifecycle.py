"""The item lifecycle: one table of transitions, states derived from the append-only event log.

::

    submitted -> rejected_by_validation                  (back to the department)
    submitted -> validated -> sent -> accepted -> settled
                               sent -> rejected_by_bank   (back to the department -> resubmitted as a new item)
                           accepted -> rejected_by_bank
                            settled -> returned           (refund, e.g. cross-bank; back to the department)

``sent -> settled`` is allowed directly (a bank may confirm the credit without a separate
acceptance). A transition not in the table is refused with :class:`IllegalTransition`; an event
that repeats the current state is a no-op (applying the same report twice changes nothing).

>>> state_after(["submitted", "validated", "sent", "accepted", "settled"])
'settled'
>>> check_transition("settled", "sent")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
...
reconciliation.lifecycle.IllegalTransition: settled -> sent is not allowed
"""

from __future__ import annotations

from typing import Iterable

SUBMITTED = "submitted"
REJECTED_BY_VALIDATION = "rejected_by_validation"
VALIDATED = "validated"
SENT = "sent"
ACCEPTED = "accepted"
SETTLED = "settled"
REJECTED_BY_BANK = "rejected_by_bank"
RETURNED = "returned"

STATES = (SUBMITTED, REJECTED_BY_VALIDATION, VALIDATED, SENT, ACCEPTED, SETTLED, REJECTED_BY_BANK, RETURNED)

TRANSITIONS: dict[str, frozenset[str]] = {
    SUBMITTED: frozenset({VALIDATED, REJECTED_BY_VALIDATION}),
    VALIDATED: frozenset({SENT}),
    SENT: frozenset({ACCEPTED, SETTLED, REJECTED_BY_BANK}),
    ACCEPTED: frozenset({SETTLED, REJECTED_BY_BANK}),
    SETTLED: frozenset({RETURNED}),
    REJECTED_BY_VALIDATION: frozenset(),
    REJECTED_BY_BANK: frozenset(),
    RETURNED: frozenset(),
}

# where the item stands for the batch proof: sent = settled + rejected + returned + outstanding
FINAL_FAILED = frozenset({REJECTED_BY_BANK, RETURNED})
OUTSTANDING = frozenset({SENT, ACCEPTED})
# a failed item goes back to the department for correction [Art. 22]
NEEDS_CORRECTION = frozenset({REJECTED_BY_VALIDATION, REJECTED_BY_BANK, RETURNED})


class IllegalTransition(ValueError):
    def __init__(self, current: str | None, new: str) -> None:
        super().__init__(f"{current or 'nothing'} -> {new} is not allowed")
        self.current, self.new = current, new


def check_transition(current: str | None, new: str) -> bool:
    """True if ``new`` is a real change, False if it repeats ``current``; raises if illegal."""
    if new not in TRANSITIONS:
        raise IllegalTransition(current, new)
    if current is None:
        if new != SUBMITTED:
            raise IllegalTransition(current, new)
        return True
    if new == current:
        return False
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(current, new)
    return True


def state_after(events: Iterable[str]) -> str | None:
    """Replay ``events`` (oldest first) and return the resulting state; raises on an illegal step."""
    state = None
    for e in events:
        if check_transition(state, e):
            state = e
    return state
