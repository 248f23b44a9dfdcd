"""What the validation rules see and what they say [Art. 18].

The intake turns each roster row into a :class:`Candidate`; the rule engine returns, per
candidate, a list of :class:`Finding`. A ``reject`` finding keeps the item from being paid; a
``review`` finding holds it until a person clears or confirms it. Every finding has a code, a
Chinese and an English message, and its evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

REJECT = "reject"
REVIEW = "review"


@dataclass(frozen=True)
class Candidate:
    """One roster row, in plain text (it is encrypted when stored)."""

    seq: int  # row number in the roster (1 = first data row)
    name: str
    id_number: str
    account: str
    amount: Decimal
    unit_code: str
    bank_id: str | None
    policy_code: str
    period: str  # YYYY-MM
    proxy_name: str | None = None
    proxy_id_number: str | None = None
    # household register number 户口簿户号, when the roster carries it; otherwise the household
    # recorded at registration is used (rule "household")
    household: str | None = None
    # the blind indexes of id_number, account, name and proxy_id_number, when the caller has already
    # computed them (the intake stores them with the item): the engine then does not compute them
    # again. They must be ``vault.blind_index(kind, value)`` of the same vault; None = not given.
    id_hash: str | None = None
    account_hash: str | None = None
    name_hash: str | None = None
    proxy_id_hash: str | None = None


@dataclass(frozen=True)
class Finding:
    seq: int
    code: str  # e.g. "ID_CHECKSUM", "AMOUNT_OVER_STANDARD", "DUPLICATE_IN_BATCH"
    severity: str  # REJECT or REVIEW
    message_zh: str
    message_en: str
    evidence: dict = field(default_factory=dict)

    @property
    def rejects(self) -> bool:
        return self.severity == REJECT
