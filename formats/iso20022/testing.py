"""Deterministic sample messages for tests, the benchmark and the bank simulator's demos.

Public API in the spirit of ``treq.testing``: nothing here reads a clock or random source;
the same arguments give the same models.

>>> h = sample_payment_header(3)
>>> [t.end_to_end_id for t in sample_credit_transfers(3)]
['E0000000001', 'E0000000002', 'E0000000003']
>>> sum(t.amount for t in sample_credit_transfers(3)) == h.control_sum
True
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Iterator

from formats.model import (
    CreditDebit,
    CreditTransfer,
    EntryDetail,
    NotificationHeader,
    PaymentHeader,
    StatusReportHeader,
    TransactionStatusLine,
    TxStatus,
)
from formats.money import from_fen

CREATED = dt.datetime(2026, 11, 2, 9, 30, 0)
_NAMES = ("张三", "李四", "王五", "赵六", "欧阳娜娜")


def _fen(i: int) -> int:
    return 10_000 + (i * 137) % 50_000  # 100.00 .. 599.99 yuan


def sample_payment_header(n: int, *, message_id: str = "YKT20261102000001") -> PaymentHeader:
    """Header for :func:`sample_credit_transfers` ``(n)`` with the right count and sum."""
    total = from_fen(sum(_fen(i) for i in range(1, n + 1)))
    return PaymentHeader(
        message_id=message_id, created_at=CREATED, payment_info_id=message_id + "-P1",
        requested_execution_date=dt.date(2026, 11, 3), initiating_party="重庆市某县财政局",
        debtor_name="某县财政局惠民惠农补贴专户", debtor_account="3100021509024901234",
        debtor_bank_code="313653000013", number_of_transactions=n, control_sum=total,
    )


def sample_credit_transfers(n: int) -> Iterator[CreditTransfer]:
    """``n`` payments, generated lazily (memory does not grow with ``n``)."""
    for i in range(1, n + 1):
        yield CreditTransfer(
            end_to_end_id=f"E{i:010d}", amount=from_fen(_fen(i)), creditor_name=_NAMES[i % len(_NAMES)],
            creditor_account=f"6222{i:015d}", creditor_bank_code="102653000019",
            remittance="耕地地力保护补贴 2026-11", instruction_id=f"I{i:010d}",
            id_number=f"500101{1950 + i % 50}0101{i % 10000:04d}"[:18],
        )


def sample_status_header(n: int) -> StatusReportHeader:
    return StatusReportHeader(
        message_id="BANK-STS-000001", created_at=CREATED, original_message_id="YKT20261102000001",
        original_message_type="pain.001.001.09", group_status=TxStatus.PARTIALLY_ACCEPTED,
        original_number_of_transactions=n,
    )


def sample_status_lines(n: int) -> Iterator[TransactionStatusLine]:
    for i in range(1, n + 1):
        if i % 10 == 0:
            yield TransactionStatusLine(f"E{i:010d}", TxStatus.REJECTED, "AC04", "账户已销户", f"I{i:010d}",
                                        from_fen(_fen(i)), f"6222{i:015d}")
        else:
            yield TransactionStatusLine(f"E{i:010d}", TxStatus.ACCEPTED_SETTLEMENT_COMPLETED,
                                        original_instruction_id=f"I{i:010d}", amount=from_fen(_fen(i)))


def sample_notification_header(message_type: str = "camt.054.001.08") -> NotificationHeader:
    return NotificationHeader("BANK-NTF-000001", CREATED, "3100021509024901234", message_type, "NTF-1")


def sample_entries(n: int, *, batch: int = 100) -> Iterator[EntryDetail]:
    """Debits to beneficiaries booked in batches of ``batch`` details; every 20th is a return."""
    for i in range(1, n + 1):
        if i % 20 == 0:
            yield EntryDetail(f"E{i:010d}", from_fen(_fen(i)), CreditDebit.CREDIT, True, "AC04", "账户已销户",
                              entry_reference=f"R{i:08d}", booking_date=dt.date(2026, 11, 5))
        else:
            yield EntryDetail(f"E{i:010d}", from_fen(_fen(i)), CreditDebit.DEBIT,
                              entry_reference=f"B{i // batch:08d}", booking_date=dt.date(2026, 11, 3),
                              counterparty_name=_NAMES[i % len(_NAMES)], counterparty_account=f"6222{i:015d}")


__all__ = [
    "sample_payment_header", "sample_credit_transfers", "sample_status_header", "sample_status_lines",
    "sample_notification_header", "sample_entries", "CREATED",
]

