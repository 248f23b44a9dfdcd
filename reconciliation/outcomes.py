"""Bank reports of every kind, normalised into one stream of outcomes for matching.

An :class:`Outcome` names an item (by EndToEndId, or by its sequence in one of our files), the
state the bank reports, the reason, and what the bank says about amount and account so that they
can be checked. A :class:`FileOutcome` is a whole-file answer (pain.002 group status with no
transaction lines, e.g. a file refused for its signature or a replayed MsgId).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Iterator

from formats.model import CreditDebit, EntryDetail, TransactionStatusLine, TxStatus
from reconciliation.lifecycle import ACCEPTED, REJECTED_BY_BANK, RETURNED, SETTLED

BY_E2E = "e2e"
RETURN_MARK = "退汇"  # flat result files mark a return (refund) line's reason text with this prefix
BY_FILE_SEQ = "file_seq"


@dataclass(frozen=True)
class Outcome:
    line: int
    reference: str
    new_state: str
    by: str = BY_E2E
    original_msg_id: str | None = None  # needed when ``by == BY_FILE_SEQ``
    reason_code: str | None = None
    reason_text: str | None = None
    amount: Decimal | None = None
    account: str | None = None
    bank_date: dt.date | None = None  # the bank's booking date of a credit or return, when it says


@dataclass(frozen=True)
class FileOutcome:
    original_msg_id: str
    new_state: str
    reason_code: str | None = None
    reason_text: str | None = None
    line: int = 0


def state_for_status(status: TxStatus) -> str | None:
    """The lifecycle state a transaction status means, or None (pending: nothing to record)."""
    if status.is_rejection:
        return REJECTED_BY_BANK
    if status.is_settled:
        return SETTLED
    if status in (TxStatus.ACCEPTED, TxStatus.ACCEPTED_TECHNICAL, TxStatus.ACCEPTED_SETTLEMENT_IN_PROCESS,
                  TxStatus.ACCEPTED_WITH_CHANGE):
        return ACCEPTED
    return None


def from_status_report(header, lines: Iterable[TransactionStatusLine]) -> Iterator[Outcome | FileOutcome]:
    """pain.002: per-transaction statuses; a group status with no lines applies to the whole file."""
    any_line = False
    for t in lines:
        any_line = True
        state = state_for_status(t.status)
        if state:
            yield Outcome(t.line, t.original_end_to_end_id, state, reason_code=t.reason_code,
                          reason_text=t.reason_text, amount=t.amount, account=t.creditor_account)
    if not any_line and header.group_status is not None:
        state = state_for_status(header.group_status)
        if state:
            yield FileOutcome(header.original_message_id, state, header.group_reason_code, header.group_reason_text)


def from_entries(entries: Iterable[EntryDetail]) -> Iterator[Outcome]:
    """camt.054 / camt.053: a debit of the disbursement account to the beneficiary confirms the credit
    (settled); a return credits it back (returned), naming the original EndToEndId and the reason."""
    for e in entries:
        if e.is_return:
            yield Outcome(e.line, e.end_to_end_id, RETURNED, reason_code=e.return_reason_code,
                          reason_text=e.return_reason_text, amount=e.amount, account=e.counterparty_account,
                          bank_date=e.booking_date)
        elif e.credit_debit == CreditDebit.DEBIT:
            yield Outcome(e.line, e.end_to_end_id, SETTLED, amount=e.amount, account=e.counterparty_account,
                          bank_date=e.booking_date)
        # a credit that is not a return is the treasury funding the account: recorded by funding import


def from_flat_results(lines: Iterable[TransactionStatusLine], *, original_msg_id: str, key: str
                      ) -> Iterator[Outcome]:
    """A flat result file: keyed by sequence in ``original_msg_id`` (or by EndToEndId when the layout
    echoes it). Flat layouts have no return record, so a bank reports a refund as a later failed
    line whose text starts with 退汇 (docs/BANK_PROTOCOL.md)."""
    by = BY_FILE_SEQ if key == "sequence" else BY_E2E
    for t in lines:
        state = state_for_status(t.status)
        if state == REJECTED_BY_BANK and (t.reason_text or "").startswith(RETURN_MARK):
            state = RETURNED  # a later failure line marked 退汇 is the money coming back (cross-bank refund)
        if state:
            yield Outcome(t.line, t.original_end_to_end_id, state, by=by, original_msg_id=original_msg_id,
                          reason_code=t.reason_code, reason_text=t.reason_text, amount=t.amount,
                          account=t.creditor_account)
