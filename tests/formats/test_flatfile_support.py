"""Shared builders for the flat-file tests (no tests here): shipped layouts, the reason table, sample data.

Regenerate the golden files after an intended format change with
``YKT_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/formats/test_flatfile.py -k golden`` and
review the diff by eye: the golden files are the contract with the bank.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from decimal import Decimal
from functools import cache
from pathlib import Path

from formats.flatfile import FileLayout, ResultFileHeader, ResultRow, layout_from_mapping
from formats.model import CreditTransfer, PaymentHeader, TxStatus
from formats.reasons import ReasonTable

ROOT = Path(__file__).resolve().parents[2]
LAYOUT_DIR = ROOT / "config" / "layouts"
GOLDEN_DIR = Path(__file__).resolve().parent / "golden_flat"
LAYOUT_NAMES = ("rcb_pipe", "fixed_width")
UNIT = "500101001"


@cache
def layout(name: str) -> FileLayout:
    with open(LAYOUT_DIR / f"{name}.toml", "rb") as f:
        return layout_from_mapping(tomllib.load(f), source=f"layouts/{name}.toml")


@cache
def reasons() -> ReasonTable:
    with open(ROOT / "config" / "reason_codes.toml", "rb") as f:
        return ReasonTable.from_mapping(tomllib.load(f), source="reason_codes.toml")


def transfers() -> list[CreditTransfer]:
    policy = "耕地地力保护补贴 2026-11"
    return [
        CreditTransfer("YKT-B7-000001", Decimal("520.00"), "张三", "6217001234567890", "RCB001", policy,
                       id_number="500101199001011234"),
        CreditTransfer("YKT-B7-000002", Decimal("1234.56"), "阿依古丽·买买提", "6217001234567891", "RCB001", policy,
                       id_number="65010119850505002X"),
        CreditTransfer("YKT-B7-000003", Decimal("0.01"), "欧阳娜娜", "101001", "RCB001", ""),
    ]


def payment_header(txs: list[CreditTransfer] | None = None) -> PaymentHeader:
    txs = transfers() if txs is None else txs
    return PaymentHeader(
        message_id="YKT20261103B7", created_at=dt.datetime(2026, 11, 2, 9, 30), payment_info_id="YKT20261103B7-1",
        requested_execution_date=dt.date(2026, 11, 3), initiating_party="綦江区财政局", debtor_name="綦江区财政局",
        debtor_account="3100100100001", debtor_bank_code="RCB001", number_of_transactions=len(txs),
        control_sum=sum((t.amount for t in txs), Decimal("0.00")))


def result_rows() -> list[ResultRow]:
    a, b, c = transfers()
    return [
        ResultRow(1, a, TxStatus.ACCEPTED_SETTLEMENT_COMPLETED, "交易成功"),
        ResultRow(2, b, TxStatus.REJECTED, "户名不符"),
        ResultRow(3, c, TxStatus.REJECTED, "账户已销户"),
    ]


def result_header(rows: list[ResultRow] | None = None) -> ResultFileHeader:
    rows = result_rows() if rows is None else rows
    return ResultFileHeader(dt.date(2026, 11, 4), UNIT, len(rows),
                            sum((r.transfer.amount for r in rows), Decimal("0.00")), "YKT20261103B7")
