"""Hypothesis strategies for the ISO 20022 models (tests only; needs the ``dev`` extra).

Texts are what the formats can carry: 1..N characters XML allows, not blank.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

from formats.model import (
    CreditDebit, CreditTransfer, EntryDetail, NotificationHeader, PaymentHeader, StatusReportHeader,
    TransactionStatusLine, TxStatus, VerificationQuery, VerificationReport, VerificationRequest, VerificationResult,
)
from formats.money import from_fen

_chars = st.characters(blacklist_categories=("Cs", "Cc", "Cn", "Co")) | st.sampled_from("\t\n\r&<>\"'")


def texts(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_chars, min_size=1, max_size=max_size).filter(lambda s: s.strip() != "")


amounts = st.integers(1, 10**13).map(from_fen)
datetimes = st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2100, 1, 1),
                         timezones=st.none() | st.just(dt.timezone(dt.timedelta(hours=8))) | st.just(dt.timezone.utc))
dates = st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1))
codes = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), min_size=1, max_size=8)


@st.composite
def credit_transfer(draw) -> CreditTransfer:
    id_number = draw(st.none() | texts(35))
    return CreditTransfer(
        end_to_end_id=draw(texts(35)), amount=draw(amounts), creditor_name=draw(texts(140)),
        creditor_account=draw(texts(34)), creditor_bank_code=draw(texts(35)), remittance=draw(texts(140)),
        instruction_id=draw(st.none() | texts(35)),
        id_type=draw(texts(35)) if id_number is not None else "01", id_number=id_number,
    )


@st.composite
def payment(draw, max_size: int = 5) -> tuple[PaymentHeader, list[CreditTransfer]]:
    txs = draw(st.lists(credit_transfer(), min_size=1, max_size=max_size))
    header = PaymentHeader(
        message_id=draw(texts(35)), created_at=draw(datetimes), payment_info_id=draw(texts(35)),
        requested_execution_date=draw(dates), initiating_party=draw(texts(140)), debtor_name=draw(texts(140)),
        debtor_account=draw(texts(34)), debtor_bank_code=draw(texts(35)),
        number_of_transactions=len(txs), control_sum=sum((t.amount for t in txs), from_fen(0)),
    )
    return header, txs


V03_TX = [s for s in TxStatus if s.value in {"ACTC", "RJCT", "PDNG", "ACCP", "ACSP", "ACSC", "ACWC"}]


@st.composite
def status_report(draw, version: str = "pain.002.001.12") -> tuple[StatusReportHeader, list[TransactionStatusLine]]:
    tx_statuses = V03_TX if version.endswith(".03") else list(TxStatus)
    group_statuses = V03_TX + [TxStatus.RECEIVED, TxStatus.PARTIALLY_ACCEPTED] if version.endswith(".03") else list(TxStatus)
    header = StatusReportHeader(
        message_id=draw(texts(35)), created_at=draw(datetimes), original_message_id=draw(texts(35)),
        original_message_type=draw(texts(35)), group_status=draw(st.none() | st.sampled_from(group_statuses)),
        group_reason_code=draw(st.none() | codes), group_reason_text=draw(st.none() | texts(300)),
        original_number_of_transactions=draw(st.none() | st.integers(0, 10**9)),
        original_control_sum=draw(st.none() | amounts),
    )
    lines = draw(st.lists(st.builds(
        TransactionStatusLine, original_end_to_end_id=texts(35), status=st.sampled_from(tx_statuses),
        reason_code=st.none() | codes, reason_text=st.none() | texts(250),
        original_instruction_id=st.none() | texts(35), amount=st.none() | amounts,
        creditor_account=st.none() | texts(34),
    ), max_size=5))
    return header, lines


@st.composite
def entry_detail(draw) -> EntryDetail:
    is_return = draw(st.booleans())
    return EntryDetail(
        end_to_end_id=draw(texts(35)), amount=draw(amounts), credit_debit=draw(st.sampled_from(list(CreditDebit))),
        is_return=is_return,
        return_reason_code=draw(st.none() | codes) if is_return else None,
        return_reason_text=draw(st.none() | texts(250)) if is_return else None,
        entry_reference=draw(st.none() | st.sampled_from(["B1", "B2", "R1"])),
        booking_date=draw(st.none() | dates), value_date=draw(st.none() | dates),
        counterparty_name=draw(st.none() | texts(140)), counterparty_account=draw(st.none() | texts(34)),
    )


@st.composite
def notification(draw, message_type: str) -> tuple[NotificationHeader, list[EntryDetail]]:
    header = NotificationHeader(draw(texts(35)), draw(datetimes), draw(texts(34)), message_type, draw(texts(35)))
    return header, draw(st.lists(entry_detail(), max_size=6))


verification_request = st.builds(
    VerificationRequest, message_id=texts(35), created_at=datetimes,
    queries=st.lists(st.builds(VerificationQuery, query_id=texts(35), name=texts(140), account=texts(34),
                               id_number=st.none() | texts(35), bank_code=st.none() | texts(35)),
                     min_size=1, max_size=4, unique_by=lambda q: q.query_id).map(tuple),
)


@st.composite
def _result(draw) -> VerificationResult:
    code = draw(st.none() | st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), min_size=1, max_size=4))
    text = draw(st.none() | (texts(500) if code is not None else texts(35)))
    return VerificationResult(draw(texts(35)), draw(st.booleans()), code, text)


verification_report = st.builds(
    VerificationReport, message_id=texts(35), created_at=datetimes, original_message_id=texts(35),
    results=st.lists(_result(), min_size=1, max_size=4, unique_by=lambda r: r.query_id).map(tuple),
)
