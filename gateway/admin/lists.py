"""Screening lists [Art. 18]: deceased (with date of death), public employees 财政供养人员, disabled,
supported persons 供养人员, registered poor 建档立卡 — imported from CSV or XLSX.

Each import is a full snapshot of the list, numbered per kind (version 1, 2, …) with the date it
takes effect; the rule engine uses, for a period, the latest version in force on the period's last
day. Rows are stored with the blind index of the ID number and the name encrypted. An import is
atomic: every bad row is reported (row, column, value, what is wrong) and then nothing is stored.

Columns (header row, Chinese or English): ``身份证号码``/``id_number``, ``姓名``/``name``, and for
the deceased list ``死亡日期``/``date_of_death`` (YYYY-MM-DD). Other columns are ignored.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from gateway import audit
from gateway.admin.models import ListEntry, ListImport
from gateway.config.model import LIST_KINDS
from gateway.errors import YktError
from gateway.privacy import PiiVault, mask_id
from gateway.validation.checks import check_resident_id

COLUMNS = {
    "id_number": ("id_number", "身份证号码", "身份证号", "公民身份号码"),
    "name": ("name", "姓名"),
    "date_of_death": ("date_of_death", "死亡日期"),
}


@dataclass(frozen=True)
class RowProblem:
    row: int  # 1 = header row, data from 2 (as a spreadsheet numbers them)
    column: str
    value: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}, value {self.value!r}: {self.message}"


class ListImportError(YktError, ValueError):
    """The list file has problems; ``problems`` lists every one. Nothing was imported."""

    def __init__(self, source: str, problems: list[RowProblem]) -> None:
        self.problems = problems
        lines = "\n".join(str(p) for p in problems[:200])
        more = f"\n… and {len(problems) - 200} more" if len(problems) > 200 else ""
        super().__init__(f"{source}: {len(problems)} problem(s), nothing imported:\n{lines}{more}",
                         zh=f"{source}：发现 {len(problems)} 处错误，整个文件未导入")


@dataclass(frozen=True)
class ImportResult:
    import_id: int
    kind: str
    version: int
    effective_from: dt.date
    rows: int
    sha256: str


def _rows(path: Path, data: bytes) -> list[list]:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        import openpyxl

        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            return [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
        finally:
            wb.close()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ListImportError(str(path), [RowProblem(1, "", "", "file is neither UTF-8 nor GB18030 text")])
    return [row for row in csv.reader(io.StringIO(text))]


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v).strip()


def import_list(session: Session, vault: PiiVault, *, kind: str, path: Path | str, effective_from: dt.date,
                imported_by: str, now: dt.datetime) -> ImportResult:
    """Import ``path`` as the next version of list ``kind``; returns what was stored.

    :raises ListImportError: with every bad row; nothing is stored (the caller's transaction is
        left untouched, nothing flushed).
    """
    path = Path(path)
    if kind not in LIST_KINDS:
        raise ListImportError(str(path), [RowProblem(0, "", kind, f"unknown list kind (known: {', '.join(LIST_KINDS)})")])
    data = path.read_bytes()
    rows = _rows(path, data)
    problems: list[RowProblem] = []
    if not rows:
        raise ListImportError(str(path), [RowProblem(1, "", "", "the file is empty")])
    header = [_cell(h) for h in rows[0]]
    where: dict[str, int] = {}
    for key, names in COLUMNS.items():
        for i, h in enumerate(header):
            if h in names:
                where[key] = i
                break
    needed = ["id_number", "name"] + (["date_of_death"] if kind == "deceased" else [])
    for key in needed:
        if key not in where:
            problems.append(RowProblem(1, COLUMNS[key][1], "", f"column missing (header {' or '.join(COLUMNS[key])})"))
    if problems:
        raise ListImportError(str(path), problems)
    today = now.date()
    seen: dict[str, int] = {}
    entries = []
    for n, raw in enumerate(rows[1:], start=2):
        if all(_cell(v) == "" for v in raw):
            continue
        cells = list(raw) + [None] * (len(header) - len(raw))
        idv = cells[where["id_number"]]
        idcol, namecol = header[where["id_number"]], header[where["name"]]
        if isinstance(idv, (int, float)):
            problems.append(RowProblem(n, idcol, str(idv), "ID number stored as a number (digits lost); "
                                                           "format the column as text 身份证号码列应设为文本格式"))
            continue
        id_number = _cell(idv).upper()
        bad = check_resident_id(id_number, today)
        if bad:
            problems.append(RowProblem(n, idcol, mask_id(id_number), "invalid resident ID: " + ", ".join(c for c, _ in bad)))
            continue
        name = _cell(cells[where["name"]])
        if not name:
            problems.append(RowProblem(n, namecol, "", "name is empty"))
        dod = None
        if kind == "deceased":
            col = header[where["date_of_death"]]
            v = cells[where["date_of_death"]]
            text = _cell(v)
            try:
                dod = v.date() if isinstance(v, dt.datetime) else v if isinstance(v, dt.date) else dt.date.fromisoformat(text)
                if dod > today:
                    problems.append(RowProblem(n, col, text, "date of death is in the future"))
            except ValueError:
                problems.append(RowProblem(n, col, text, "not a date like 2026-03-15"))
        idh = vault.blind_index("id", id_number)
        if idh in seen:
            problems.append(RowProblem(n, idcol, mask_id(id_number), f"same person as row {seen[idh]}"))
            continue
        seen[idh] = n
        entries.append((idh, name, dod))
    if problems:
        raise ListImportError(str(path), problems)
    version = (session.scalar(select(func.max(ListImport.version)).where(ListImport.kind == kind)) or 0) + 1
    sha = hashlib.sha256(data).hexdigest()
    now_naive = now.astimezone(dt.timezone.utc).replace(tzinfo=None) if now.tzinfo else now
    imp = ListImport(kind=kind, version=version, effective_from=effective_from, source_name=path.name, sha256=sha,
                     row_count=len(entries), imported_by=imported_by, imported_at=now_naive)
    session.add(imp)
    session.flush()
    if entries:
        session.execute(insert(ListEntry), [
            {"import_id": imp.id, "id_hash": idh, "name_enc": vault.encrypt(name, "list_entries", "name_enc", idh),
             "date_of_death": dod}
            for idh, name, dod in entries])
    audit.append(session, actor=imported_by, action="list.imported", subject=f"list:{kind}:{version}",
                 detail={"rows": len(entries), "sha256": sha, "effective_from": effective_from.isoformat()}, now=now)
    return ImportResult(imp.id, kind, version, effective_from, len(entries), sha)


def versions(session: Session, kind: str | None = None) -> list[ListImport]:
    q = select(ListImport).order_by(ListImport.kind, ListImport.version)
    if kind:
        q = q.where(ListImport.kind == kind)
    return list(session.scalars(q))
