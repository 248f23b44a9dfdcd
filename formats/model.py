"""The models every codec reads into and writes from. Frozen dataclasses; money is ``Decimal``.

Large documents are never held whole: a writer takes the header plus an *iterable* of
transactions, and a reader exposes the header plus an *iterator* of entries (see each codec's
``open_*`` function). The ``read_*`` helpers that return complete models are for small files
and tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum


class TxStatus(str, Enum):
    """ISO 20022 external payment transaction status codes used here."""

    RECEIVED = "RCVD"
    ACCEPTED_TECHNICAL = "ACTC"
    ACCEPTED = "ACCP"
    ACCEPTED_SETTLEMENT_IN_PROCESS = "ACSP"
    ACCEPTED_SETTLEMENT_COMPLETED = "ACSC"
    ACCEPTED_CREDIT_SETTLEMENT_COMPLETED = "ACCC"
    ACCEPTED_WITH_CHANGE = "ACWC"
    PARTIALLY_ACCEPTED = "PART"
    PENDING = "PDNG"
    REJECTED = "RJCT"

    @property
    def is_rejection(self) -> bool:
        return self is TxStatus.REJECTED

    @property
    def is_settled(self) -> bool:
        return self in (TxStatus.ACCEPTED_SETTLEMENT_COMPLETED, TxStatus.ACCEPTED_CREDIT_SETTLEMENT_COMPLETED)


# --------------------------------------------------------------------------- payment instruction


@dataclass(frozen=True)
class PaymentHeader:
    """Group header + the single payment information block of one instruction file.

    ``number_of_transactions`` and ``control_sum`` are declared up front (a streaming writer
    must emit them before the transactions) and are checked against the transactions written.
    """

    message_id: str
    created_at: dt.datetime
    payment_info_id: str
    requested_execution_date: dt.date
    initiating_party: str
    debtor_name: str
    debtor_account: str
    debtor_bank_code: str
    number_of_transactions: int
    control_sum: Decimal
    currency: str = "CNY"


@dataclass(frozen=True)
class CreditTransfer:
    """One payment to one beneficiary.

    ``end_to_end_id`` is our item reference and travels to the bank and back; ``remittance``
    names the policy and period (e.g. ``"耕地地力保护补贴 2026-11"``). ``id_type`` / ``id_number``
    are the beneficiary's identity document, carried by flat files and by ISO 20022 ``Cdtr/Id``.
    """

    end_to_end_id: str
    amount: Decimal
    creditor_name: str
    creditor_account: str
    creditor_bank_code: str
    remittance: str
    instruction_id: str | None = None
    id_type: str = "01"  # 01 = resident identity card (居民身份证)
    id_number: str | None = None


@dataclass(frozen=True)
class PaymentInstruction:
    header: PaymentHeader
    transactions: tuple[CreditTransfer, ...]


# --------------------------------------------------------------------------- status report


@dataclass(frozen=True)
class StatusReportHeader:
    """pain.002 group header plus the original group information and status."""

    message_id: str
    created_at: dt.datetime
    original_message_id: str
    original_message_type: str
    group_status: TxStatus | None = None
    group_reason_code: str | None = None
    group_reason_text: str | None = None
    original_number_of_transactions: int | None = None
    original_control_sum: Decimal | None = None


@dataclass(frozen=True)
class TransactionStatusLine:
    """One per-transaction status. ``line`` is the source line it was read from (0 if written)."""

    original_end_to_end_id: str
    status: TxStatus
    reason_code: str | None = None
    reason_text: str | None = None
    original_instruction_id: str | None = None
    amount: Decimal | None = None
    creditor_account: str | None = None
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class StatusReport:
    header: StatusReportHeader
    transactions: tuple[TransactionStatusLine, ...]


# --------------------------------------------------------------------------- notifications / statements


class CreditDebit(str, Enum):
    CREDIT = "CRDT"
    DEBIT = "DBIT"


@dataclass(frozen=True)
class EntryDetail:
    """One transaction detail (``TxDtls``) of a booked entry in camt.054 / camt.053.

    A *credit confirmation* to a beneficiary appears on the disbursement account as a debit
    with ``is_return=False``; a *return* (refund, e.g. cross-bank) is a credit back with
    ``is_return=True``, the original ``end_to_end_id`` and a return reason.
    """

    end_to_end_id: str
    amount: Decimal
    credit_debit: CreditDebit
    is_return: bool = False
    return_reason_code: str | None = None
    return_reason_text: str | None = None
    entry_reference: str | None = None
    booking_date: dt.date | None = None
    value_date: dt.date | None = None
    counterparty_name: str | None = None
    counterparty_account: str | None = None
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class NotificationHeader:
    """camt.054 / camt.053 group header and the account it reports on."""

    message_id: str
    created_at: dt.datetime
    account: str
    message_type: str  # e.g. "camt.054.001.08"
    report_id: str | None = None


@dataclass(frozen=True)
class Notification:
    header: NotificationHeader
    entries: tuple[EntryDetail, ...]


# --------------------------------------------------------------------------- account verification


@dataclass(frozen=True)
class VerificationQuery:
    """Does ``account`` belong to ``name`` with identity ``id_number``, and is it usable?"""

    query_id: str
    name: str
    account: str
    id_number: str | None = None
    bank_code: str | None = None


@dataclass(frozen=True)
class VerificationRequest:
    message_id: str
    created_at: dt.datetime
    queries: tuple[VerificationQuery, ...]


@dataclass(frozen=True)
class VerificationResult:
    """``verified`` True means name/ID match and the account is active; otherwise ``reason_code``
    (AC01 unknown account, AC04 closed, AC06 blocked/frozen, BE01 name mismatch …)."""

    query_id: str
    verified: bool
    reason_code: str | None = None
    reason_text: str | None = None


@dataclass(frozen=True)
class VerificationReport:
    message_id: str
    created_at: dt.datetime
    original_message_id: str
    results: tuple[VerificationResult, ...]
