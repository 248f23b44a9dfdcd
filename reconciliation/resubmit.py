"""Resubmission of corrected items [Art. 22]: a NEW batch whose items point at the originals.

The corrections file is an ordinary roster (see :mod:`gateway.intake.roster`: CSV in UTF-8/GBK or
XLSX, same columns) with one more column naming the original item each row corrects:

=================================  ===========================================================
column                             content
=================================  ===========================================================
原编号 / original_e2e              the original item's 18-digit EndToEndId (as in the
                                   correction queue and the feedback export), or
原行号 / original_row              the original item's row number in the original batch
=================================  ===========================================================

Exactly one of the two columns. Each row must correct an item of the named batch that is in a
correction state (rejected by validation, rejected by the bank, returned) and not yet
resubmitted; the person must be recognisably the same (same ID number, or same name when the ID
number is what is being corrected). Every problem is listed (row, column, value, Chinese and
English) and nothing is written.

The new batch goes through :func:`gateway.intake.submit.submit_roster` (so every row is validated
again), with ``corrects_batch_id`` = the original batch, and each new item's
``items.resubmission_of`` = its original. That column is unique, so an original can be
resubmitted only once, and the original itself can never be dispatched again: its state is final
and the database refuses any event that does not follow the lifecycle (migration 0005), and an
item is in at most one outbound file ever.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.config.model import Config
from gateway.tabular import FileRefused
from gateway.db.models import Batch, Item
from gateway.errors import YktError
from gateway.intake.roster import RosterProblem, read_roster
from gateway.intake.submit import SubmissionResult, Validator, submit_roster
from gateway.privacy import PiiVault
from reconciliation.apply import latest_states
from reconciliation.lifecycle import NEEDS_CORRECTION

E2E_COLUMN = ("原编号", "original_e2e")
ROW_COLUMN = ("原行号", "original_row")


class ResubmissionRefused(FileRefused):
    """The corrections are refused whole; ``problems`` lists every problem."""

    what_en, what_zh = "corrections", "更正名册"
    outcome_en, outcome_zh = "nothing submitted", "未提交任何数据"


@dataclass(frozen=True)
class ResubmissionResult:
    submission: SubmissionResult
    original_batch_id: int
    links: dict[int, int]  # new item id -> original item id

    def as_dict(self) -> dict:
        s = self.submission
        return {"batch_id": s.batch_id, "ref": s.ref, "corrects_batch_id": self.original_batch_id,
                "items": s.item_count, "validated": s.validated, "rejected": s.rejected,
                "held_for_review": s.held_for_review, "links": {str(k): v for k, v in self.links.items()}}


def _split_csv(data: bytes, source: str) -> tuple[str, list[tuple[int, str]], bytes]:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    for enc in ("utf-8", "gbk"):
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ResubmissionRefused(source, [RosterProblem(None, None, None, "文件编码错误，应为 UTF-8 或 GBK",
                                                         "not UTF-8 or GBK text")])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        raise ResubmissionRefused(source, [RosterProblem(None, None, None, "文件为空", "the file is empty")])
    col, kind = _find_column(rows[0], source)
    refs = [(n, (r[col].strip() if col < len(r) else "")) for n, r in enumerate(rows[1:], 2) if any(c.strip() for c in r)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for r in rows:
        w.writerow(r[:col] + r[col + 1:])
    return kind, refs, buf.getvalue().encode("utf-8")


def _split_xlsx(data: bytes, source: str) -> tuple[str, list[tuple[int, str]], bytes]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 - any unreadable workbook is the sender's problem, named
        raise ResubmissionRefused(source, [RosterProblem(None, None, None, "不是有效的 XLSX 文件",
                                                         f"not a readable XLSX file: {e}")]) from None
    ws = wb.worksheets[0]
    header = [("" if c.value is None else str(c.value)) for c in next(ws.iter_rows(max_row=1))]
    col, kind = _find_column(header, source)
    refs = []
    for n, row in enumerate(ws.iter_rows(min_row=2), 2):
        if any(c.value not in (None, "") for c in row):
            v = row[col].value if col < len(row) else None
            refs.append((n, "" if v is None else str(v).strip()))
    ws.delete_cols(col + 1)
    out = io.BytesIO()
    wb.save(out)
    return kind, refs, out.getvalue()


def _find_column(header: list[str], source: str) -> tuple[int, str]:
    names = [h.strip().lstrip("\ufeff").lower() for h in header]
    found = [(i, "e2e") for i, h in enumerate(names) if h in {a.lower() for a in E2E_COLUMN}]
    found += [(i, "row") for i, h in enumerate(names) if h in {a.lower() for a in ROW_COLUMN}]
    if len(found) != 1:
        raise ResubmissionRefused(source, [RosterProblem(1, "原编号", None,
                                                         "更正名册须有且只有一列“原编号”（或“原行号”），写明所更正的原发放",
                                                         "a corrections file needs exactly one column 原编号/original_e2e "
                                                         "(or 原行号/original_row) naming the item it corrects")])
    return found[0]


def resubmit_batch(session: Session, cfg: Config, vault: PiiVault, *, original_batch_id: int, corrections: bytes,
                   source_name: str, submitted_by: str, now: dt.datetime,
                   validator: Validator | None = None) -> ResubmissionResult:
    """Submit corrected rows as a new batch linked item by item to ``original_batch_id``'s failed items.

    The caller commits. Raises :class:`ResubmissionRefused` (every problem), or whatever
    :func:`submit_roster` raises for the roster itself (e.g. ``RosterRejected``).
    """
    original = session.get(Batch, original_batch_id)
    if original is None:
        raise YktError(f"no batch {original_batch_id}", zh=f"没有批次 {original_batch_id}")
    is_xlsx = corrections[:4] == b"PK\x03\x04"
    kind, refs, roster = (_split_xlsx if is_xlsx else _split_csv)(corrections, source_name)
    col = "原编号" if kind == "e2e" else "原行号"

    by_key: dict[str, Item] = {}
    keys = {v for _, v in refs if v}
    if keys:
        if kind == "e2e":
            q = sa.select(Item).where(Item.end_to_end_id.in_(keys))
        else:
            q = sa.select(Item).where(Item.batch_id == original_batch_id,
                                      Item.seq.in_([int(k) for k in keys if k.isdigit()]))
        for it in session.scalars(q):
            by_key[it.end_to_end_id if kind == "e2e" else str(it.seq)] = it
    states = latest_states(session, [it.id for it in by_key.values()])
    already = dict(session.execute(sa.select(Item.resubmission_of, Item.end_to_end_id).where(
        Item.resubmission_of.in_([it.id for it in by_key.values()]))).all()) if by_key else {}

    banks = {}
    for b in cfg.banks_for_county(original.county_code):
        banks[b.id] = b.id
        banks[b.bank_code] = b.id
    units = {u.code for u in cfg.units.values() if u.county == original.county_code}
    people = {r.row: r for r in read_roster(roster, source=source_name, known_banks=banks, known_units=units)}

    problems: list[RosterProblem] = []
    links_by_seq: dict[int, int] = {}
    seen: dict[int, int] = {}
    for n, key in refs:
        def bad(zh: str, en: str) -> None:
            problems.append(RosterProblem(n, col, key, zh, en))
        if not key:
            bad("请写明所更正的原发放", "name the original item this row corrects")
            continue
        it = by_key.get(key)
        if it is None or it.batch_id != original_batch_id:
            bad(f"批次 {original.ref} 中没有这笔原发放", f"no such item in batch {original.ref}")
            continue
        if it.id in seen:
            bad(f"与第 {seen[it.id]} 行更正的是同一笔原发放", f"row {seen[it.id]} already corrects this item")
            continue
        seen[it.id] = n
        state = states.get(it.id)
        if state not in NEEDS_CORRECTION:
            bad(f"原发放状态为“{state}”，不是待更正状态，不能重新提交",
                f"the original is {state!r}, not failed: only rejected or returned items can be resubmitted")
            continue
        if it.id in already:
            bad(f"原发放已由 {already[it.id]} 重新提交过，不能再次提交",
                f"the original was already resubmitted as {already[it.id]}")
            continue
        person = people.get(n)
        if person is not None:
            same_id = vault.blind_index("id", person.id_number) == it.id_hash
            same_name = vault.read(it, "name_enc").strip() == person.name.strip()
            if not (same_id or same_name):
                bad("姓名和身份证号都与原发放不同：更正只能改其中之一，其他人请另行申报",
                    "neither name nor ID number matches the original: a correction may fix one of them, "
                    "a different person is a new application")
                continue
        links_by_seq[n] = it.id
    if problems:
        raise ResubmissionRefused(source_name, problems)

    result = submit_roster(session, cfg, vault, data=roster, source_name=source_name,
                           policy_code=original.policy_code, period=original.period, submitted_by=submitted_by,
                           now=now, validator=validator, corrects_batch_id=original_batch_id,
                           resubmission_of=links_by_seq)
    written = dict(session.execute(sa.select(Item.id, Item.resubmission_of).where(
        Item.batch_id == result.batch_id, Item.resubmission_of.is_not(None))).all())
    if sorted(written.values()) != sorted(links_by_seq.values()):
        raise YktError("the new items could not be linked to the originals; nothing was submitted",
                       zh="新发放未能与原发放关联，已全部撤回")
    from gateway import audit

    audit.append(session, actor=submitted_by, action="batch.resubmitted", subject=f"batch:{result.ref}",
                 detail={"corrects": original.ref, "items": result.item_count, "linked": len(written)}, now=now)
    return ResubmissionResult(result, original_batch_id, written)
