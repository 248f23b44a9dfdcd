"""Funding: the treasury's transfers into a partner bank's disbursement account [Art. 19].

A transfer starts the bank's credit clock for the batch it pays for [Art. 20]. Transfers arrive as
a CSV export of the treasury payment system (UTF-8 or GBK, header row required, order free):

==============  ===============  ========  ==================================================
Chinese         English          required  content
==============  ===============  ========  ==================================================
代发银行        bank             yes       partner bank id (``icbc-cq``) or its 12-digit code
金额            amount           yes       yuan, positive, at most two decimals
到账时间        received_at      yes       China time ``YYYY-MM-DD HH:MM[:SS]``
起息日          value_date       yes       ``YYYY-MM-DD``
流水号          reference        yes       the treasury/bank reference, unique per bank
批次            batch            no        the batch ref the money is for (``GDDL-2026-11-…``)
==============  ===============  ========  ==================================================

A file is imported whole or not at all: :class:`FundingRejected` lists every bad row (row,
column, value, Chinese and English message). A (bank, reference) already on record with the same
amount, times and batch is a repeat of the same transfer and is skipped and counted; with any
difference it is a conflict and refuses the file. A transfer without a batch is recorded but
attributed to no batch: it starts no clock (see :mod:`reconciliation.deadlines`).

>>> data = "代发银行,金额,到账时间,起息日,流水号\\nicbc-cq,1500.00,2026-09-30 09:10,2026-09-30,GK001\\n"
>>> rows, problems = parse_funding(data.encode(), source="f.csv", banks={"icbc-cq": "icbc-cq"})
>>> rows[0].amount_fen, rows[0].received_at, problems
(150000, datetime.datetime(2026, 9, 30, 1, 10), [])
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formats.money import to_fen, yuan
from gateway.config.model import Config
from gateway.db.models import Batch, Funding, Item
from gateway.tabular import FileRefused, RowProblem
from gateway.timeutil import utc_from_local

COLUMNS = {
    "bank": ("代发银行", "银行", "bank"),
    "amount": ("金额", "amount"),
    "received_at": ("到账时间", "received_at"),
    "value_date": ("起息日", "value_date"),
    "reference": ("流水号", "reference"),
    "batch": ("批次", "batch"),
}
REQUIRED = ("bank", "amount", "received_at", "value_date", "reference")
_ALIASES = {a.lower(): k for k, names in COLUMNS.items() for a in names}


FundingProblem = RowProblem


class FundingRejected(FileRefused):
    """The funding file is refused whole; ``problems`` lists every problem."""

    what_en, what_zh = "funding file", "拨款文件"
    outcome_en, outcome_zh = "nothing recorded", "未记录任何拨款"


@dataclass(frozen=True)
class FundingRow:
    row: int
    bank_id: str
    amount_fen: int
    received_at: dt.datetime  # naive UTC
    value_date: dt.date
    reference: str
    batch_ref: str | None


@dataclass(frozen=True)
class FundingImportResult:
    recorded: int
    repeated: int  # already on record, identical: skipped
    total_fen: int  # of the recorded rows
    unattributed: int  # recorded without a batch: start no clock

    def as_dict(self) -> dict:
        return {"recorded": self.recorded, "repeated": self.repeated, "total_fen": self.total_fen,
                "unattributed": self.unattributed}


def _decode(data: bytes) -> str | None:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    for enc in ("utf-8", "gbk"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return None


def _parse_time(text: str) -> dt.datetime:
    """``YYYY-MM-DD HH:MM[:SS]`` (or with ``T``), no zone: China local time."""
    if len(text) < 16 or text[10] not in " T":
        raise ValueError(text)
    t = dt.datetime.fromisoformat(text)
    if t.tzinfo is not None:
        raise ValueError(text)
    return t


def parse_funding(data: bytes, *, source: str, banks: dict[str, str]) -> tuple[list[FundingRow], list[FundingProblem]]:
    """Check every row; return the rows and every problem found (rows are usable only if none).

    ``banks`` maps bank ids and 12-digit bank codes to bank ids. Rows are numbered as a clerk sees
    them (the header is row 1).
    """
    problems: list[FundingProblem] = []
    text = _decode(data)
    if text is None:
        return [], [FundingProblem(None, None, None, "文件编码错误，应为 UTF-8 或 GBK 编码的 CSV", "not UTF-8 or GBK text")]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as e:
        return [], [FundingProblem(1, None, None, "CSV 格式错误", f"broken CSV: {e}")]
    if not header:
        return [], [FundingProblem(None, None, None, "文件为空", "the file is empty")]
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        name = name.strip().lstrip("\ufeff")
        if not name:
            continue
        key = _ALIASES.get(name.lower())
        if key is None:
            problems.append(FundingProblem(1, name, None, f"未知的列“{name}”", f"unknown column {name!r}"))
        elif key in index:
            problems.append(FundingProblem(1, name, None, "列重复", f"column {name!r} appears twice"))
        else:
            index[key] = i
    for key in REQUIRED:
        if key not in index:
            problems.append(FundingProblem(1, COLUMNS[key][0], None, f"缺少必填列“{COLUMNS[key][0]}”",
                                           f"required column {COLUMNS[key][0]} ({key}) is missing"))
    if problems:
        return [], problems
    out: list[FundingRow] = []
    seen: dict[tuple[str, str], int] = {}
    try:
        for n, cells in enumerate(reader, 2):
            if not any(c.strip() for c in cells):
                continue

            def cell(key: str) -> str:
                i = index.get(key)
                return cells[i].strip() if i is not None and i < len(cells) else ""

            def bad(key: str, zh: str, en: str) -> None:
                problems.append(FundingProblem(n, COLUMNS[key][0], cell(key), zh, en))

            ok = True
            bank = banks.get(cell("bank"))
            if bank is None:
                bad("bank", "未知的代发银行", "unknown partner bank (give its id or 12-digit code)")
                ok = False
            amount_fen = None
            try:
                amount = yuan(cell("amount").replace(",", ""))
                if amount <= 0:
                    raise ValueError("not positive")
                amount_fen = to_fen(amount)
            except (ValueError, TypeError):
                bad("amount", "金额应为大于零、最多两位小数的数字（元）", "amount must be positive yuan with at most two decimals")
                ok = False
            received = None
            try:
                local_time = _parse_time(cell("received_at"))
                received = utc_from_local(local_time.date(), local_time.time())
            except ValueError:
                bad("received_at", "到账时间格式应为 YYYY-MM-DD HH:MM（北京时间）",
                    "received_at must be YYYY-MM-DD HH:MM[:SS], China time")
                ok = False
            value_date = None
            try:
                value_date = dt.date.fromisoformat(cell("value_date"))
            except ValueError:
                bad("value_date", "起息日格式应为 YYYY-MM-DD", "value_date must be YYYY-MM-DD")
                ok = False
            reference = cell("reference")
            if not reference or len(reference) > 64:
                bad("reference", "流水号不能为空，最长 64 个字符", "reference is required, at most 64 characters")
                ok = False
            elif bank is not None:
                first = seen.get((bank, reference))
                if first is not None:
                    bad("reference", f"流水号与第 {first} 行重复", f"reference repeats row {first} for the same bank")
                    ok = False
                else:
                    seen[(bank, reference)] = n
            if ok:
                out.append(FundingRow(n, bank, amount_fen, received, value_date, reference, cell("batch") or None))
    except csv.Error as e:
        problems.append(FundingProblem(reader.line_num, None, None, "CSV 格式错误", f"broken CSV: {e}"))
    if not out and not problems:
        problems.append(FundingProblem(None, None, None, "文件中没有拨款记录", "the file holds no transfers"))
    return out, problems


def import_funding(session: Session, cfg: Config, data: bytes, *, source: str, now: dt.datetime) -> FundingImportResult:
    """Record every transfer of a funding CSV, or none (:class:`FundingRejected` lists every problem).

    The caller commits. ``source`` names the file (kept with each row as ``import:<name>``);
    ``now`` is accepted for symmetry with other importers and for the log line.
    """
    banks: dict[str, str] = {}
    for b in cfg.banks.values():
        banks[b.id] = b.id
        banks[b.bank_code] = b.id
    rows, problems = parse_funding(data, source=source, banks=banks)

    refs = {r.batch_ref for r in rows if r.batch_ref}
    batch_ids: dict[str, int] = {}
    if refs:
        batch_ids = dict(session.execute(sa.select(Batch.ref, Batch.id).where(Batch.ref.in_(refs))).all())
        served = set(session.execute(sa.select(Item.batch_id, Item.bank_id).where(
            Item.batch_id.in_(list(batch_ids.values()))).distinct()).all()) if batch_ids else set()
    existing: dict[tuple[str, str], Funding] = {}
    by_bank: dict[str, set[str]] = {}
    for r in rows:
        by_bank.setdefault(r.bank_id, set()).add(r.reference)
    for bank_id, references in by_bank.items():
        for f in session.scalars(sa.select(Funding).where(Funding.bank_id == bank_id,
                                                          Funding.reference.in_(references))):
            existing[(f.bank_id, f.reference)] = f
    new_rows, repeated = [], 0
    for r in rows:
        batch_id = None
        if r.batch_ref:
            batch_id = batch_ids.get(r.batch_ref)
            if batch_id is None:
                problems.append(FundingProblem(r.row, "批次", r.batch_ref, "没有这个批次", "no batch with this ref"))
                continue
            if (batch_id, r.bank_id) not in served:
                problems.append(FundingProblem(r.row, "批次", r.batch_ref, "该批次没有由这家银行代发的发放",
                                               f"the batch has no items paid through {r.bank_id}"))
                continue
        old = existing.get((r.bank_id, r.reference))
        if old is not None:
            same = (old.amount_fen, old.received_at, old.value_date, old.batch_id) == (
                r.amount_fen, r.received_at, r.value_date, batch_id)
            if same:
                repeated += 1
                continue
            problems.append(FundingProblem(r.row, "流水号", r.reference,
                                           "该银行的这个流水号已记录过，但金额、时间或批次不同",
                                           "this bank reference is already on record with a different amount, time "
                                           "or batch"))
            continue
        new_rows.append(dict(bank_id=r.bank_id, batch_id=batch_id, amount_fen=r.amount_fen, received_at=r.received_at,
                             value_date=r.value_date, reference=r.reference, source=f"import:{Path(source).name}"[:64]))
    if problems:
        problems.sort(key=lambda p: (p.row or 0))
        raise FundingRejected(source, problems)
    if new_rows:
        session.execute(sa.insert(Funding), new_rows)
        from gateway import audit

        for r in new_rows:
            audit.append(session, actor=f"import:{Path(source).name}"[:64], action="funding.recorded",
                         subject=f"funding:{r['bank_id']}:{r['reference']}",
                         detail={"bank": r["bank_id"], "amount_fen": r["amount_fen"], "value_date": str(r["value_date"])},
                         now=now)
    return FundingImportResult(len(new_rows), repeated, sum(r["amount_fen"] for r in new_rows),
                               sum(1 for r in new_rows if r["batch_id"] is None))
