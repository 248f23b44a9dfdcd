"""The department's correction queue and the feedback of results [Art. 21-22].

* :func:`correction_queue`: every item that failed — rejected by validation, rejected by the bank,
  or returned after crediting — and has not yet been resubmitted, with the reason in plain words
  (the reason table's explanation, Chinese and English) and the bank's own words. Personal data is
  masked. Resubmission is :func:`reconciliation.resubmit.resubmit_batch`.
* :func:`feedback_export`: the results of a department's (or an implementation unit's) items as
  CSV or XLSX, masked [Art. 21]; each export is recorded (``feedback_exports``) with the events it
  carried, so that when a department was told of a failure or a refund can be proved [Art. 22].
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from dataclasses import asdict, dataclass
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from formats.money import from_fen
from gateway.config.model import Config
from gateway.db.models import Base, Batch, Finding, Item, ItemEvent
from gateway.errors import YktError
from gateway.privacy import PiiVault, mask_account, mask_id, mask_name
from reconciliation.lifecycle import NEEDS_CORRECTION, REJECTED_BY_VALIDATION

OUTCOMES, CORRECTIONS, REFUNDS = "outcomes", "corrections", "refunds"

STATE_LABEL = {
    "submitted": ("待复核", "held for review"),
    "rejected_by_validation": ("校验未通过", "rejected by validation"),
    "validated": ("待发送", "awaiting dispatch"),
    "sent": ("已发送银行", "sent to the bank"),
    "accepted": ("银行已受理", "accepted by the bank"),
    "settled": ("已到账", "credited"),
    "rejected_by_bank": ("银行发放失败", "rejected by the bank"),
    "returned": ("已退回", "returned (refund)"),
}


class FeedbackExport(Base):
    """One export of results to a department or unit [Art. 21-22]. Append-only."""

    __tablename__ = "feedback_exports"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    department_code: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    unit_code: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime)
    created_by: Mapped[str] = mapped_column(sa.String(64))
    file_name: Mapped[str] = mapped_column(sa.String(255))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    item_count: Mapped[int] = mapped_column(sa.Integer)


class FeedbackExportItem(Base):
    __tablename__ = "feedback_export_items"
    export_id: Mapped[int] = mapped_column(sa.ForeignKey("feedback_exports.id"), primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("item_events.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("items.id"))


@dataclass(frozen=True)
class CorrectionEntry:
    item_id: int
    end_to_end_id: str
    batch_id: int
    batch_ref: str
    row: int
    department_code: str
    unit_code: str
    bank_id: str | None
    amount: str  # yuan, two decimals
    state: str
    at: dt.datetime
    reason_code: str | None
    reason_zh: str
    reason_en: str
    explain: str  # what to do, in plain words (Chinese and English)
    bank_text: str | None
    name: str  # masked
    id_number: str  # masked
    account: str  # masked

    def as_dict(self) -> dict:
        return asdict(self)


def _reason(cfg: Config, code: str | None, bank_text: str | None) -> tuple[str, str, str]:
    table = cfg.reason_codes
    if code and code in table:
        r = table.get(code)
        return r.zh, r.en, r.explain
    if bank_text:
        r = table.map_bank_text(bank_text)
        return r.zh, r.en, r.explain
    return "原因未说明", "no reason given", "银行未说明原因，请联系代发银行核实。The bank gave no reason: ask the bank."


def _latest():
    return (sa.select(ItemEvent.item_id, sa.func.max(ItemEvent.id).label("m")).group_by(ItemEvent.item_id)
            .subquery("latest"))


def correction_queue(session: Session, cfg: Config, vault: PiiVault, *, department_code: str | None = None,
                     batch_id: int | None = None, unit_code: str | None = None) -> list[CorrectionEntry]:
    """Failed items not yet resubmitted, oldest batch first, with the reason in plain words."""
    latest = _latest()
    ev = aliased(ItemEvent)
    redo = aliased(Item)
    q = (sa.select(Item, Batch.ref, Batch.department_code, ev.state, ev.at, ev.reason_code, ev.reason_text)
         .join(latest, latest.c.item_id == Item.id).join(ev, ev.id == latest.c.m)
         .join(Batch, Batch.id == Item.batch_id)
         .outerjoin(redo, redo.resubmission_of == Item.id)
         .where(ev.state.in_(NEEDS_CORRECTION), redo.id.is_(None))
         .order_by(Item.batch_id, Item.seq))
    if department_code:
        q = q.where(Batch.department_code == department_code)
    if batch_id is not None:
        q = q.where(Item.batch_id == batch_id)
    if unit_code:
        q = q.where(Item.unit_code == unit_code)
    rows = session.execute(q).all()
    findings: dict[int, list[Finding]] = {}
    invalid = [r[0].id for r in rows if r[3] == REJECTED_BY_VALIDATION]
    for i in range(0, len(invalid), 5000):
        for f in session.scalars(sa.select(Finding).where(Finding.item_id.in_(invalid[i:i + 5000]),
                                                          Finding.severity == "reject").order_by(Finding.id)):
            findings.setdefault(f.item_id, []).append(f)
    out = []
    for item, ref, dept, state, at, code, text in rows:
        if state == REJECTED_BY_VALIDATION:
            fs = findings.get(item.id, [])
            zh = "；".join(f.message_zh for f in fs) or "校验未通过"
            en = "; ".join(f.message_en for f in fs) or "rejected by validation"
            explain = (f"请按校验意见改正后重新提交。Correct as the findings say and resubmit. ({', '.join(f.code for f in fs)})"
                       if fs else "请核对后重新提交。Check and resubmit.")
            code = fs[0].code[:8] if fs else None
        else:
            zh, en, explain = _reason(cfg, code, text)
        out.append(CorrectionEntry(item.id, item.end_to_end_id, item.batch_id, ref, item.seq, dept, item.unit_code,
                                   item.bank_id, str(from_fen(item.amount_fen)), state, at, code, zh, en, explain,
                                   text, mask_name(vault.read(item, "name_enc")),
                                   mask_id(vault.read(item, "id_number_enc")),
                                   mask_account(vault.read(item, "account_enc"))))
    return out


# ------------------------------------------------------------------------------- feedback exports

OUTCOME_HEADER = [("批次 batch", "batch"), ("行号 row", "row"), ("发放编号 end-to-end id", "e2e"),
                  ("实施单位 unit", "unit"), ("代发银行 bank", "bank"), ("姓名 name", "name"),
                  ("身份证号 ID number", "id_number"), ("银行账号 account", "account"), ("金额 amount", "amount"),
                  ("状态 status", "status_zh"), ("status", "status_en"), ("时间 time (UTC)", "at"),
                  ("原因代码 reason code", "reason_code"), ("原因 reason", "reason_zh"), ("reason", "reason_en"),
                  ("处理建议 what to do", "explain"), ("银行原话 bank's words", "bank_text"),
                  ("已重新提交 resubmitted as", "resubmitted_as")]


class FeedbackError(YktError):
    pass


def _outcome_rows(session: Session, cfg: Config, vault: PiiVault, *, department_code, unit_code, batch_id,
                  only_failed: bool) -> Iterable[tuple[dict, int, int]]:
    latest = _latest()
    ev = aliased(ItemEvent)
    redo = aliased(Item)
    q = (sa.select(Item, Batch.ref, ev.id, ev.state, ev.at, ev.reason_code, ev.reason_text, redo.end_to_end_id)
         .join(latest, latest.c.item_id == Item.id).join(ev, ev.id == latest.c.m)
         .join(Batch, Batch.id == Item.batch_id)
         .outerjoin(redo, redo.resubmission_of == Item.id)
         .order_by(Item.batch_id, Item.seq).execution_options(yield_per=2000))
    if department_code:
        q = q.where(Batch.department_code == department_code)
    if unit_code:
        q = q.where(Item.unit_code == unit_code)
    if batch_id is not None:
        q = q.where(Item.batch_id == batch_id)
    if only_failed:
        q = q.where(ev.state.in_(NEEDS_CORRECTION))
    for item, ref, event_id, state, at, code, text, redo_e2e in session.execute(q):
        zh = en = explain = ""
        if state in NEEDS_CORRECTION and state != REJECTED_BY_VALIDATION:
            zh, en, explain = _reason(cfg, code, text)
        row = {"batch": ref, "row": item.seq, "e2e": item.end_to_end_id, "unit": item.unit_code,
               "bank": item.bank_id or "", "name": mask_name(vault.read(item, "name_enc")),
               "id_number": mask_id(vault.read(item, "id_number_enc")),
               "account": mask_account(vault.read(item, "account_enc")), "amount": str(from_fen(item.amount_fen)),
               "status_zh": STATE_LABEL.get(state, (state,))[0], "status_en": STATE_LABEL.get(state, ("", state))[1],
               "at": at.isoformat(sep=" ", timespec="seconds"), "reason_code": code or "", "reason_zh": zh,
               "reason_en": en, "explain": explain, "bank_text": text or "", "resubmitted_as": redo_e2e or ""}
        yield row, event_id, item.id


def feedback_export(session: Session, cfg: Config, vault: PiiVault, *, now: dt.datetime, created_by: str,
                    department_code: str | None = None, unit_code: str | None = None, batch_id: int | None = None,
                    kind: str = OUTCOMES, fmt: str = "csv") -> tuple[str, bytes]:
    """The results of a department's or unit's items, masked, as ``(file name, bytes)``; recorded
    with the events it carried. ``kind`` ``corrections`` keeps only failed items. The caller commits."""
    if not department_code and not unit_code:
        raise FeedbackError("name a department or an implementation unit", zh="请指定业务主管部门或项目实施单位")
    if department_code and department_code not in cfg.departments:
        raise FeedbackError(f"unknown department {department_code!r}", zh=f"没有业务主管部门 {department_code}")
    if unit_code and unit_code not in cfg.units:
        raise FeedbackError(f"unknown implementation unit {unit_code!r}", zh=f"没有项目实施单位 {unit_code}")
    if fmt not in ("csv", "xlsx"):
        raise FeedbackError(f"format must be csv or xlsx, got {fmt!r}", zh="格式只能是 csv 或 xlsx")
    rows, links = [], []
    for row, event_id, item_id in _outcome_rows(session, cfg, vault, department_code=department_code,
                                                unit_code=unit_code, batch_id=batch_id,
                                                only_failed=kind == CORRECTIONS):
        rows.append([row[k] for _, k in OUTCOME_HEADER])
        links.append({"event_id": event_id, "item_id": item_id})
    header = [h for h, _ in OUTCOME_HEADER]
    who = department_code or unit_code
    name = f"{kind}-{who}-{now:%Y%m%d%H%M%S}.{fmt}"
    data = write_table(header, rows, fmt=fmt, title=f"{kind} {who}")
    export = FeedbackExport(kind=kind, department_code=department_code, unit_code=unit_code, created_at=now,
                            created_by=created_by, file_name=name, sha256=hashlib.sha256(data).hexdigest(),
                            item_count=len(rows))
    session.add(export)
    session.flush()
    for i in range(0, len(links), 5000):
        chunk = [dict(export_id=export.id, **link) for link in links[i:i + 5000]]
        session.execute(sa.insert(FeedbackExportItem), chunk)
    return name, data


def write_table(header: list[str], rows: list[list], *, fmt: str, title: str = "data") -> bytes:
    """CSV (UTF-8 with BOM, so Excel opens Chinese correctly) or XLSX of one table."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(header)
        w.writerows(rows)
        return ("\ufeff" + buf.getvalue()).encode("utf-8")
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title[:31])
    ws.append(header)
    for r in rows:
        ws.append(["" if v is None else v for v in r])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def informed_on(session: Session, event_ids: Iterable[int]) -> dict[int, dt.datetime]:
    """When each event first went out to a department or unit in a feedback export."""
    ids = list(event_ids)
    out: dict[int, dt.datetime] = {}
    for i in range(0, len(ids), 5000):
        q = (sa.select(FeedbackExportItem.event_id, sa.func.min(FeedbackExport.created_at))
             .join(FeedbackExport, FeedbackExport.id == FeedbackExportItem.export_id)
             .where(FeedbackExportItem.event_id.in_(ids[i:i + 5000])).group_by(FeedbackExportItem.event_id))
        out.update(dict(session.execute(q).all()))
    return out


def dumps(entries: list[CorrectionEntry]) -> str:
    return json.dumps([e.as_dict() for e in entries], ensure_ascii=False, default=str, indent=2)
