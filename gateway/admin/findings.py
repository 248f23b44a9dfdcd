"""Validation findings for the department [Art. 18 验证结果反馈业务主管部门]: as XLSX and HTML,
and the decisions a person takes on review findings.

A ``review`` finding holds an item until a person *clears* it (may be paid) or *confirms* it (the
problem is real). Each decision is a new row of ``finding_decisions`` (who, when, decision, note);
the latest one counts and earlier ones stay. A ``reject`` finding cannot be cleared: the item is
corrected in a new batch [Art. 16]. An item paid through a proxy 代领人 shows the proxy [Art. 13]:
the name masked when a :class:`PiiVault` is given, else only that it is paid by proxy.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import audit
from gateway.admin.models import FindingDecision
from gateway.db.models import Batch, Finding, Item
from gateway.errors import YktError
from gateway.privacy import PiiVault, mask_name
from gateway.validation.model import REVIEW

CLEARED, CONFIRMED = "cleared", "confirmed"
DECISION_ZH = {CLEARED: "已核实可发放", CONFIRMED: "确认有问题", None: "待处理"}
SEVERITY_ZH = {"reject": "拒绝", "review": "待复核"}


class DecisionError(YktError, ValueError):
    """A decision that cannot be recorded."""


@dataclass(frozen=True)
class FindingView:
    finding_id: int
    seq: int | None
    code: str
    severity: str
    message_zh: str
    message_en: str
    evidence: dict
    decision: str | None
    decided_by: str | None
    decided_at: dt.datetime | None
    note: str | None
    proxy: str | None = None  # the item's proxy 代领人, masked [Art. 13]


def decide(session: Session, *, finding_id: int, decision: str, by: str, now: dt.datetime,
           note: str | None = None) -> FindingDecision:
    """Record a person's decision on a review finding (append-only).

    :raises DecisionError: unknown finding, a reject finding, an unknown decision, no note when
        clearing (a clerk must say why the item may be paid after all)."""
    if decision not in (CLEARED, CONFIRMED):
        raise DecisionError(f"decision must be 'cleared' or 'confirmed', not {decision!r}", zh="决定应为 cleared 或 confirmed")
    f = session.get(Finding, finding_id)
    if f is None:
        raise DecisionError(f"no finding {finding_id}", zh=f"没有编号为 {finding_id} 的验证结果")
    if f.severity != REVIEW:
        raise DecisionError(f"finding {finding_id} ({f.code}) is a reject: correct the item in a new batch (Art. 16)",
                            zh=f"验证结果 {finding_id}（{f.code}）为拒绝，不能人工放行，应更正后重新提交")
    if decision == CLEARED and not (note and note.strip()):
        raise DecisionError("clearing a finding needs a note saying what was checked", zh="放行须注明核实情况")
    if not by.strip():
        raise DecisionError("who decided must be named", zh="须注明决定人")
    at = now.astimezone(dt.timezone.utc).replace(tzinfo=None) if now.tzinfo else now
    d = FindingDecision(finding_id=finding_id, decision=decision, by=by, at=at, note=note)
    session.add(d)
    session.flush()
    audit.append(session, actor=by, action=f"finding.{decision}", subject=f"finding:{finding_id}",
                 detail={"code": f.code, "item": f.item_id}, now=at)
    if f.item_id is not None:
        release_if_decided(session, f.item_id, by=by, now=at)
    return d


def release_if_decided(session: Session, item_id: int, *, by: str, now: dt.datetime) -> str | None:
    """Once every review finding of a held item is decided, the item moves on: ``validated`` if all
    were cleared, ``rejected_by_validation`` if any was confirmed (back to the department) [Art. 18].
    Returns the new state, or None while a decision is still missing (or the item is not held)."""
    from sqlalchemy import func

    from gateway.db.models import ItemEvent
    from reconciliation.apply import latest_states
    from reconciliation.lifecycle import REJECTED_BY_VALIDATION, SUBMITTED, VALIDATED

    if latest_states(session, [item_id]).get(item_id) != SUBMITTED:
        return None
    reviews = session.scalars(select(Finding.id).where(Finding.item_id == item_id, Finding.severity == REVIEW)).all()
    latest = {}
    for fid, decision in session.execute(select(FindingDecision.finding_id, FindingDecision.decision)
                                         .where(FindingDecision.finding_id.in_(reviews))
                                         .order_by(FindingDecision.id)):
        latest[fid] = decision
    if not reviews or len(latest) < len(reviews):
        return None
    state = REJECTED_BY_VALIDATION if CONFIRMED in latest.values() else VALIDATED
    session.add(ItemEvent(item_id=item_id, state=state, at=now, source=f"review:{by}"[:64]))
    session.flush()
    return state


def _proxy(item: Item | None, vault: PiiVault | None) -> str | None:
    if item is None or item.proxy_name_enc is None:
        return None
    return mask_name(vault.read(item, "proxy_name_enc")) if vault is not None else "代领 by proxy"


def batch_findings(session: Session, batch_id: int, vault: PiiVault | None = None) -> list[FindingView]:
    """Every finding of the batch, by row, with the latest decision on each (and the item's proxy)."""
    rows = session.execute(select(Finding, Item).outerjoin(Item, Item.id == Finding.item_id)
                           .where(Finding.batch_id == batch_id).order_by(Item.seq, Finding.id)).all()
    latest: dict[int, FindingDecision] = {}
    ids = [f.id for f, _ in rows]
    for i in range(0, len(ids), 1000):
        for d in session.scalars(select(FindingDecision).where(FindingDecision.finding_id.in_(ids[i:i + 1000]))
                                 .order_by(FindingDecision.id)):
            latest[d.finding_id] = d
    out = []
    for f, it in rows:
        d = latest.get(f.id)
        out.append(FindingView(f.id, it.seq if it else None, f.code, f.severity, f.message_zh, f.message_en,
                               json.loads(f.evidence) if f.evidence else {}, d.decision if d else None,
                               d.by if d else None, d.at if d else None, d.note if d else None,
                               _proxy(it, vault)))
    return out


HEADERS = ("行号 Row", "代码 Code", "严重程度 Severity", "说明", "Message", "证据 Evidence", "处理 Decision",
           "处理人 By", "处理时间 At", "备注 Note", "代领人 Proxy")


def _cells(v: FindingView) -> list:
    return [v.seq, v.code, f"{SEVERITY_ZH.get(v.severity, v.severity)} {v.severity}", v.message_zh, v.message_en,
            json.dumps(v.evidence, ensure_ascii=False), f"{DECISION_ZH[v.decision]} {v.decision or 'open'}",
            v.decided_by or "", v.decided_at.isoformat(sep=" ", timespec="seconds") if v.decided_at else "", v.note or "",
            v.proxy or ""]


def write_xlsx(session: Session, batch_id: int, out: Path | str | BinaryIO, vault: PiiVault | None = None) -> int:
    """The batch's findings as an Excel workbook (one sheet, a header row); returns the row count."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    batch = session.get(Batch, batch_id)
    views = batch_findings(session, batch_id, vault)
    wb = Workbook(write_only=False)
    ws = wb.active
    ws.title = "验证结果 Findings"
    ws.append([f"批次 Batch {batch.ref}", f"政策 Policy {batch.policy_code}", f"期间 Period {batch.period}",
               f"条数 Findings {len(views)}"])
    ws.append(list(HEADERS))
    for c in ws[2]:
        c.font = Font(bold=True)
    for v in views:
        ws.append(_cells(v))
    for col, width in zip("ABCDEFGHIJK", (8, 24, 14, 50, 50, 40, 22, 14, 20, 30, 14)):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A3"
    wb.save(out)
    return len(views)


_HTML = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>验证结果 {{ batch.ref }}</title>
<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;padding:4px}
.reject{background:#fdd}.review{background:#ffd}</style></head>
<body><h1>“一卡通”预设规则验证结果 Validation findings</h1>
<p>批次 Batch {{ batch.ref }} · 政策 Policy {{ batch.policy_code }} · 期间 Period {{ batch.period }} ·
共 {{ views|length }} 条 findings (拒绝 reject {{ n_reject }}, 待复核 review {{ n_review }})</p>
<table><thead><tr>{% for h in headers %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for v in rows %}<tr class="{{ v[0] }}">{% for c in v[1] %}<td>{{ c }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></body></html>
"""


def render_html(session: Session, batch_id: int, vault: PiiVault | None = None) -> str:
    """The batch's findings as a self-contained HTML page (everything escaped)."""
    from jinja2 import Environment

    batch = session.get(Batch, batch_id)
    views = batch_findings(session, batch_id, vault)
    env = Environment(autoescape=True)
    return env.from_string(_HTML).render(
        batch=batch, views=views, headers=HEADERS, rows=[(v.severity, _cells(v)) for v in views],
        n_reject=sum(v.severity == "reject" for v in views), n_review=sum(v.severity == "review" for v in views))
