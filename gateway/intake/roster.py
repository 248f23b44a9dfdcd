"""Reading a department's roster (CSV in UTF-8 or GBK, or XLSX) into checked rows.

Columns (header row required; Chinese or English names; order free):

=============  ==================  ========  =====================================================
Chinese        English             required  content
=============  ==================  ========  =====================================================
姓名           name                yes       the beneficiary's name as on the ID card
身份证号       id_number           yes       18-character resident ID (GB 11643), check digit valid
银行账号       account             yes       the beneficiary's own one-card account (digits)
代发银行       bank                yes       partner bank id from config (e.g. ``cqrcb-fj``) or its 12-digit code
金额           amount              yes       yuan, positive, at most two decimals (``1500`` or ``1500.00``)
实施单位       unit                yes       implementation unit code from config (e.g. ``500236101``)
代领人姓名     proxy_name          no        proxy collector's name [Art. 13]
代领人身份证号 proxy_id_number     no        proxy collector's resident ID
备注           remark              no        free text, not sent to the bank
=============  ==================  ========  =====================================================

A roster is read whole or not at all: :func:`read_roster` yields rows only after checking the
structure, and :class:`RosterRejected` carries every row problem (row, column, value, message
in Chinese and English). Rows are numbered as a clerk sees them: the header is row 1.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import BinaryIO, Iterator

from gateway.tabular import FileRefused, RowProblem
from gateway.identity import InvalidResidentId, validate_resident_id
from gateway.packed import PackedMap

COLUMNS = {
    "name": ("姓名", "name"),
    "id_number": ("身份证号", "身份证号码", "id_number"),
    "account": ("银行账号", "账号", "卡号", "account"),
    "bank": ("代发银行", "银行", "bank"),
    "amount": ("金额", "发放金额", "amount"),
    "unit": ("实施单位", "实施单位代码", "unit"),
    "proxy_name": ("代领人姓名", "proxy_name"),
    "proxy_id_number": ("代领人身份证号", "proxy_id_number"),
    "remark": ("备注", "remark"),
}
REQUIRED = ("name", "id_number", "account", "bank", "amount", "unit")
_ALIASES = {alias.lower(): key for key, aliases in COLUMNS.items() for alias in aliases}
MAX_ROWS = 2_000_000
_ACCOUNT = re.compile(r"\d{6,32}")
_NAME_BAD = re.compile(r"[\d<>\"'=;]")
_ID_AS_NUMBER = re.compile(r"\d+(?:\.\d*)?[eE][+-]?\d+")  # 5.00236E+17; one way to split the digits


RosterProblem = RowProblem


class RosterRejected(FileRefused):
    """The roster is refused whole; ``problems`` lists every problem found."""

    what_en, what_zh = "roster", "名册"


@dataclass(frozen=True)
class RosterRow:
    row: int
    name: str
    id_number: str
    account: str
    bank: str
    amount: Decimal
    unit: str
    proxy_name: str | None = None
    proxy_id_number: str | None = None
    remark: str | None = None


@dataclass
class RosterReport:
    """What a roster read found: its rows (after a clean read) and problems."""

    source: str
    encoding: str
    problems: list[RosterProblem] = field(default_factory=list)


# ------------------------------------------------------------------------------- raw cell sources


_PROBE = 1 << 20


def _decodes(data: bytes, enc: str) -> bool:
    """Does ``data`` decode as ``enc``? Checked a megabyte at a time, so a roster of a million rows
    is never held as one decoded text (nor as a StringIO, four bytes a character) beside its bytes."""
    dec = codecs.getincrementaldecoder(enc)()
    try:
        for i in range(0, len(data), _PROBE):
            dec.decode(data[i:i + _PROBE])
        dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _csv_rows(data: bytes, report: RosterReport) -> Iterator[tuple[int, list[str]]]:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    for enc in ("utf-8", "gbk"):
        if _decodes(data, enc):
            report.encoding = enc
            break
    else:
        errors = []
        for enc in ("utf-8", "gbk"):
            try:
                data.decode(enc)
            except UnicodeDecodeError as e:
                errors.append(e)
        err = max(errors, key=lambda e: e.start)  # the encoding that read furthest is the one meant
        line = data[: err.start].count(b"\n") + 1
        report.problems.append(RosterProblem(line, None, data[err.start:err.start + 4].hex(" "),
                                             "文件编码错误，应为 UTF-8 或 GBK 编码的 CSV",
                                             f"not UTF-8 or GBK text (bad bytes at offset {err.start})"))
        return
    # decoded as it is read (the BytesIO shares the bytes): memory stays flat in the roster's size
    stream = io.TextIOWrapper(io.BytesIO(data), encoding=report.encoding, newline="")
    reader = csv.reader(stream, strict=True)
    try:
        for n, cells in enumerate(reader, 1):
            yield n, cells
    except csv.Error as e:
        report.problems.append(RosterProblem(reader.line_num, None, None, "CSV 格式错误", f"broken CSV: {e}"))


def _xlsx_rows(data: bytes, report: RosterReport) -> Iterator[tuple[int, list[str]]]:
    import zipfile

    from openpyxl import load_workbook

    report.encoding = "xlsx"
    try:
        wb = load_workbook(io.BytesIO(data), data_only=False)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        report.problems.append(RosterProblem(None, None, None, "不是有效的 XLSX 文件", f"not a readable XLSX file: {e}"))
        return
    ws = wb.worksheets[0]
    for rng in ws.merged_cells.ranges:
        report.problems.append(RosterProblem(rng.min_row, str(rng), None, "名册中不能有合并单元格，请取消合并后逐行填写",
                                             "merged cells are not allowed; unmerge and fill each row"))
    for r, row in enumerate(ws.iter_rows(), 1):
        cells = []
        for c in row:
            v = c.value
            if c.data_type == "f" or (isinstance(v, str) and v.startswith("=")):
                report.problems.append(RosterProblem(r, c.coordinate, str(v), "单元格含公式，请粘贴为数值后再提交",
                                                     "cell holds a formula; paste values only"))
                v = None
            cells.append(v)
        yield r, cells


def _cell_text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v).strip()


# ------------------------------------------------------------------------------- checking rows


def _header(cells: list, report: RosterReport) -> dict[str, int] | None:
    index: dict[str, int] = {}
    for i, raw in enumerate(cells):
        name = _cell_text(raw).lstrip("\ufeff")
        if not name:
            continue
        key = _ALIASES.get(name.lower())
        if key is None:
            report.problems.append(RosterProblem(1, name, None, f"未知的列“{name}”",
                                                 f"unknown column {name!r}; expected {', '.join(k for k in COLUMNS)}"))
        elif key in index:
            report.problems.append(RosterProblem(1, name, None, "列重复", f"column {name!r} appears twice"))
        else:
            index[key] = i
    for key in REQUIRED:
        if key not in index:
            report.problems.append(RosterProblem(1, COLUMNS[key][0], None, f"缺少必填列“{COLUMNS[key][0]}”",
                                                 f"required column {COLUMNS[key][0]} ({key}) is missing"))
    return None if report.problems else index


def _check_id(n: int, col: str, value: str, report: RosterReport) -> str | None:
    v = value.upper()
    if ("E" in v and _ID_AS_NUMBER.fullmatch(value)) or (value.endswith(".0") and value[:-2].isdigit()):
        report.problems.append(RosterProblem(n, col, value, "身份证号被 Excel 存成了数字，末几位已丢失；请把该列设为文本后重新录入",
                                             "the ID number was stored as a number and lost digits; format the column as text"))
        return None
    try:
        return validate_resident_id(v)
    except InvalidResidentId as e:
        report.problems.append(RosterProblem(n, col, value, e.zh, f"resident ID: {e.en}"))
        return None


def _check_amount(n: int, col: str, value: str, report: RosterReport) -> Decimal | None:
    try:
        d = Decimal(value.replace(",", ""))
        if not d.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        report.problems.append(RosterProblem(n, col, value, "金额不是数字", "amount is not a number"))
        return None
    if d <= 0:
        report.problems.append(RosterProblem(n, col, value, "金额必须大于零", "amount must be positive"))
        return None
    if d != d.quantize(Decimal("0.01")):
        report.problems.append(RosterProblem(n, col, value, "金额最多两位小数", "amount has more than two decimals"))
        return None
    return d.quantize(Decimal("0.01"))


def _text(cells: list, i: int | None) -> str:
    """The trimmed text of cell ``i`` of a row ('' when the column is absent or the row short)."""
    if i is None or i >= len(cells):
        return ""
    v = cells[i]
    return v.strip() if v.__class__ is str else _cell_text(v)


def read_roster(stream: BinaryIO | bytes, *, source: str, known_banks: dict[str, str], known_units: set[str],
                max_rows: int = MAX_ROWS) -> Iterator[RosterRow]:
    """Yield checked rows of a roster; raise :class:`RosterRejected` with every problem.

    ``known_banks`` maps both bank ids and 12-digit bank codes to bank ids. Rows are yielded
    lazily for CSV, so a caller inserting them inside one database transaction keeps memory
    flat; if a problem turns up later the exception arrives before the caller commits, and the
    whole unit is rolled back. Duplicate ID numbers within the roster are problems.
    """
    data = stream if isinstance(stream, bytes) else stream.read()
    report = RosterReport(source, "")
    is_xlsx = data[:4] == b"PK\x03\x04"
    rows = _xlsx_rows(data, report) if is_xlsx else _csv_rows(data, report)
    header = None
    seen = PackedMap(8, 4)  # the ID as one exact 8-byte integer -> first row (packed: 1M rows in ~15 MB)
    count = 0
    problems = report.problems
    for n, cells in rows:
        if header is None:
            header = _header(cells, report)
            if header is None:
                break
            i_name, i_id, i_acct, i_bank, i_amount, i_unit, i_pname, i_pid, i_remark = (
                header.get(k) for k in COLUMNS)
            last_col = max(header.values())
            continue
        name, id_raw, acct_raw = _text(cells, i_name), _text(cells, i_id), _text(cells, i_acct)
        bank_raw, amount_raw, unit = _text(cells, i_bank), _text(cells, i_amount), _text(cells, i_unit)
        proxy_name, proxy_raw, remark = _text(cells, i_pname), _text(cells, i_pid), _text(cells, i_remark)
        if not (name or id_raw or acct_raw or bank_raw or amount_raw or unit) and not any(_cell_text(c) for c in cells):
            continue  # blank line
        count += 1
        if count > max_rows:
            problems.append(RosterProblem(n, None, None, f"名册超过 {max_rows} 行", f"more than {max_rows} rows"))
            break
        if len(cells) > len(header) and any(_cell_text(c) for c in cells[last_col + 1:]):
            problems.append(RosterProblem(n, None, None, "本行列数多于表头", "row has more cells than the header"))
        before = len(problems)
        if not (name and id_raw and acct_raw and bank_raw and amount_raw and unit):
            vals = dict(name=name, id_number=id_raw, account=acct_raw, bank=bank_raw, amount=amount_raw, unit=unit)
            for key in REQUIRED:
                if not vals[key]:
                    problems.append(RosterProblem(n, COLUMNS[key][0], "", f"“{COLUMNS[key][0]}”不能为空",
                                                  f"{key} is required"))
        if name and (len(name) > 30 or _NAME_BAD.search(name)):
            problems.append(RosterProblem(n, "姓名", name, "姓名格式不正确", "name is not a plausible name"))
        id_number = _check_id(n, "身份证号", id_raw, report) if id_raw else None
        account = acct_raw.replace(" ", "")
        if account and not _ACCOUNT.fullmatch(account):
            problems.append(RosterProblem(n, "银行账号", acct_raw, "银行账号应为6至32位数字",
                                          "account must be 6 to 32 digits"))
        amount = _check_amount(n, "金额", amount_raw, report) if amount_raw else None
        bank = known_banks.get(bank_raw) if bank_raw else None
        if bank_raw and bank is None:
            problems.append(RosterProblem(n, "代发银行", bank_raw, "不是本县的代发银行",
                                          "not a partner bank of this county"))
        if unit and unit not in known_units:
            problems.append(RosterProblem(n, "实施单位", unit, "未知的实施单位代码",
                                          "unknown implementation unit"))
        proxy_id = None
        if proxy_name or proxy_raw:
            if not (proxy_name and proxy_raw):
                problems.append(RosterProblem(n, "代领人", None, "代领须同时填写代领人姓名和身份证号 (第十三条)",
                                              "proxy collection needs both the proxy's name and ID (Art. 13)"))
            else:
                proxy_id = _check_id(n, "代领人身份证号", proxy_raw, report)
        if id_number:
            key = int(id_number[:17]) * 11 + (10 if id_number[17] == "X" else int(id_number[17]))
            first = seen.setdefault(key.to_bytes(8, "big"), n.to_bytes(4, "big"))
            if first is not None:
                first = int.from_bytes(first, "big")
                problems.append(RosterProblem(n, "身份证号", id_raw, f"与第 {first} 行重复",
                                              f"same person as row {first}: duplicate row"))
        if len(problems) == before and not problems:
            yield RosterRow(n, name, id_number, account, bank, amount, unit, proxy_name or None,
                            proxy_id, remark or None)
    if header is None and not problems:
        problems.append(RosterProblem(None, None, None, "名册为空", "the roster is empty"))
    if problems:
        raise RosterRejected(source, problems)
    if count == 0:
        raise RosterRejected(source, [RosterProblem(None, None, None, "名册没有数据行", "the roster has no data rows")])


_CENT = Decimal("0.01")


def reread_checked(data: bytes, *, source: str, known_banks: dict[str, str], known_units: set[str]
                   ) -> Iterator[RosterRow]:
    """:func:`reread_fields` as :class:`RosterRow` values."""
    yield from (RosterRow(*t) for t in reread_fields(data, source=source, known_banks=known_banks,
                                                      known_units=known_units))


def reread_fields(data: bytes, *, source: str, known_banks: dict[str, str], known_units: set[str]
                  ) -> Iterator[tuple]:
    """The rows of a roster that :func:`read_roster` has just read through without a problem, read
    again without repeating the checks: the same rows, normalised the same way, at a fraction of the
    cost (a caller that needs the totals before it writes reads twice). :func:`reread_fields` yields
    the same rows as plain tuples in :class:`RosterRow` field order.

    Only for the very bytes :func:`read_roster` accepted; an XLSX roster is simply read again in full.
    """
    if data[:4] == b"PK\x03\x04":
        for r in read_roster(data, source=source, known_banks=known_banks, known_units=known_units):
            yield (r.row, r.name, r.id_number, r.account, r.bank, r.amount, r.unit, r.proxy_name,
                   r.proxy_id_number, r.remark)
        return
    report = RosterReport(source, "")
    rows = _csv_rows(data, report)
    header = None
    for _n, cells in rows:
        header = _header(cells, report)
        break
    if header is None:  # pragma: no cover - read_roster refused this roster
        raise RosterRejected(source, report.problems)
    i_name, i_id, i_acct, i_bank, i_amount, i_unit, i_pname, i_pid, i_remark = (header.get(k) for k in COLUMNS)
    for n, cells in rows:
        name, id_raw, acct_raw = _text(cells, i_name), _text(cells, i_id), _text(cells, i_acct)
        bank_raw, amount_raw, unit = _text(cells, i_bank), _text(cells, i_amount), _text(cells, i_unit)
        if not (name or id_raw or acct_raw or bank_raw or amount_raw or unit) and not any(_cell_text(c) for c in cells):
            continue  # blank line
        proxy_name, proxy_raw, remark = _text(cells, i_pname), _text(cells, i_pid), _text(cells, i_remark)
        yield (n, name, id_raw.upper(), acct_raw.replace(" ", ""), known_banks[bank_raw],
               Decimal(amount_raw.replace(",", "")).quantize(_CENT), unit, proxy_name or None,
               proxy_raw.upper() if proxy_raw else None, remark or None)
    if report.problems:  # pragma: no cover - read_roster refused this roster
        raise RosterRejected(source, report.problems)
