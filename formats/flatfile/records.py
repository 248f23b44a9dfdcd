"""Model <-> field values (a ``dict`` keyed by field name), per the vocabulary in :mod:`.layout`.

Also the two result-file models the model module does not have: :class:`ResultRow` (what a bank
writes for one transfer) and :class:`ResultFileHeader` (what it declares up front).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from formats.flatfile.layout import FileSpec
from formats.model import CreditTransfer, PaymentHeader, TransactionStatusLine, TxStatus
from formats.reasons import ReasonTable


@dataclass(frozen=True)
class ResultRow:
    """One line of a result file as a bank writes it: the transfer it answers (``sequence`` is its
    1-based position in the instruction file), the outcome, and the bank's reason text."""

    sequence: int
    transfer: CreditTransfer
    status: TxStatus
    reason_text: str | None = None


@dataclass(frozen=True)
class ResultFileHeader:
    """What a result file's header/trailer declares. ``number_of_transactions`` and ``control_sum``
    are declared up front and checked against the rows written."""

    file_date: dt.date
    unit_code: str
    number_of_transactions: int
    control_sum: Decimal
    original_message_id: str | None = None


def instruction_edge_values(header: PaymentHeader, unit_code: str) -> dict[str, Any]:
    return {
        "date": header.requested_execution_date,
        "unit_code": unit_code,
        "message_id": header.message_id,
        "payment_info_id": header.payment_info_id,
        "debtor_name": header.debtor_name,
        "debtor_account": header.debtor_account,
    }


def result_edge_values(header: ResultFileHeader) -> dict[str, Any]:
    return {"date": header.file_date, "unit_code": header.unit_code, "message_id": header.original_message_id}


def transfer_values(tx: CreditTransfer, sequence: int) -> dict[str, Any]:
    return {
        "sequence": sequence,
        "reference": tx.end_to_end_id,
        "name": tx.creditor_name,
        "amount": tx.amount,
        "account": tx.creditor_account,
        "bank_code": tx.creditor_bank_code,
        "id_type": tx.id_type,
        "id_number": tx.id_number,
        "remark": tx.remittance,
        "instruction_id": tx.instruction_id,
    }


def result_row_values(row: ResultRow) -> dict[str, Any]:
    tx = row.transfer
    return {
        "sequence": row.sequence,
        "reference": tx.end_to_end_id,
        "name": tx.creditor_name,
        "amount": tx.amount,
        "account": tx.creditor_account,
        "status": row.status.value,
        "reason_text": row.reason_text,
    }


def _key(values: Mapping[str, Any], spec: FileSpec) -> str:
    return str(values["sequence"]) if spec.key == "sequence" else values["reference"]


def transfer_from_values(values: Mapping[str, Any], spec: FileSpec, *, bank_code: str) -> CreditTransfer:
    """A detail record's values -> :class:`CreditTransfer`. Fields the layout lacks get defaults:
    ``creditor_bank_code`` = ``bank_code``, ``remittance`` = ``""``, ``id_type`` = ``"01"``."""
    return CreditTransfer(
        end_to_end_id=_key(values, spec),
        amount=values["amount"],
        creditor_name=values["name"],
        creditor_account=values["account"],
        creditor_bank_code=values.get("bank_code") or bank_code,
        remittance=values.get("remark") or "",
        instruction_id=values.get("instruction_id"),
        id_type=values.get("id_type") or "01",
        id_number=values.get("id_number"),
    )


def status_line_from_values(values: Mapping[str, Any], spec: FileSpec, *, line: int,
                            reasons: ReasonTable | None) -> TransactionStatusLine:
    """A result detail's values -> :class:`TransactionStatusLine`.

    A rejection's reason text is mapped through ``reasons`` to ``reason_code`` (``NARR`` when the
    text is unknown or empty); ``reason_text`` keeps the bank's words. Without a table, or for a
    non-rejection, ``reason_code`` is ``None`` and the text is still kept.
    """
    status = TxStatus(values["status"])
    text = values.get("reason_text")
    code = None
    if reasons is not None and status.is_rejection:
        code = reasons.map_bank_text(text).code
    return TransactionStatusLine(
        original_end_to_end_id=_key(values, spec),
        status=status,
        reason_code=code,
        reason_text=text,
        amount=values.get("amount"),
        creditor_account=values.get("account"),
        line=line,
    )
