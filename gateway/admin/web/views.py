"""What each page and API endpoint shows, already cut to the viewer's scope.

Every function takes a :class:`Ctx` (database session, principal, configuration, vault, now) and
returns plain data (dicts, lists, strings, ints) that the console renders with a template and the
API returns as JSON, so the two never disagree. An object outside the viewer's scope raises
:class:`NotFound`, the same answer as an object that does not exist.

Personal data is always masked here; only :func:`item_reveal` decrypts it in full, and only for
the finance bureau of the item's county, after the caller has written the audit entry.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formats.money import from_fen
from gateway.admin.auth import ALL, AUDITOR, BANK, DEPARTMENT, FINANCE, UNIT, Principal
from gateway.db.models import Batch, Finding, InboundFile, Item, ItemEvent, OutboundFile, ReconException
from gateway.privacy import PiiVault, mask_account, mask_id, mask_name
from reconciliation.lifecycle import (ACCEPTED, REJECTED_BY_BANK, REJECTED_BY_VALIDATION, RETURNED, SENT, SETTLED,
                                      SUBMITTED, VALIDATED)
from reconciliation.proof import batch_proof

PAGE = 200  # rows per page in lists

STATE_ZH = {SUBMITTED: "待审核", REJECTED_BY_VALIDATION: "校验未通过", VALIDATED: "待发送", SENT: "已发送",
            ACCEPTED: "银行已受理", SETTLED: "已入账", REJECTED_BY_BANK: "银行退回", RETURNED: "已退款"}
CORRECTABLE = (REJECTED_BY_BANK, RETURNED)


class NotFound(Exception):
    """No such object in the viewer's scope."""


class Forbidden(Exception):
    """The viewer's role may not do this."""


@dataclass
class Ctx:
    session: Session
    principal: Principal
    cfg: Any
    vault: PiiVault
    now: dt.datetime
    calendar: Any = None
    query: dict | None = None  # request arguments, first value of each

    def arg(self, name: str, default: str | None = None) -> str | None:
        return (self.query or {}).get(name, default)


def yuan(fen: int | None) -> str:
    return str(from_fen(int(fen or 0)))


def iso(t: dt.datetime | None) -> str | None:
    return t.isoformat(sep=" ", timespec="seconds") if t else None


# --- scope -----------------------------------------------------------------------------------------

def bank_ids_in_scope(ctx: Ctx) -> list[str]:
    p = ctx.principal
    if p.role == BANK:
        return [p.scope] if p.scope in ctx.cfg.banks else []
    if p.role == AUDITOR and p.scope == ALL:
        return sorted(ctx.cfg.banks)
    county = p.county_of(ctx.cfg)
    return sorted(b.id for b in ctx.cfg.banks.values() if county in b.counties)


def batch_filter(ctx: Ctx):
    """A WHERE clause on :class:`Batch` for the batches the viewer may see."""
    p = ctx.principal
    if p.role in (FINANCE, AUDITOR):
        return sa.true() if p.scope == ALL else Batch.county_code == p.scope
    if p.role == DEPARTMENT:
        return Batch.department_code == p.scope
    if p.role == UNIT:
        return Batch.id.in_(sa.select(Item.batch_id).where(Item.unit_code == p.scope))
    return sa.false()


def item_filter(ctx: Ctx):
    """A WHERE clause on :class:`Item` (joined to :class:`Batch`) for the items the viewer may see."""
    p = ctx.principal
    if p.role == UNIT:
        return Item.unit_code == p.scope
    if p.role == BANK:
        return Item.bank_id == p.scope
    return batch_filter(ctx)


def _batch_in_scope(ctx: Ctx, batch_id: int) -> Batch:
    b = ctx.session.scalar(sa.select(Batch).where(Batch.id == batch_id, batch_filter(ctx)))
    if b is None:
        raise NotFound(f"batch {batch_id}")
    return b


def latest_states(session: Session, item_ids) -> dict[int, str]:
    ids = list(item_ids)
    if not ids:
        return {}
    last = (sa.select(ItemEvent.item_id, sa.func.max(ItemEvent.id).label("m"))
            .where(ItemEvent.item_id.in_(ids)).group_by(ItemEvent.item_id).subquery())
    return dict(session.execute(sa.select(ItemEvent.item_id, ItemEvent.state).join(last, ItemEvent.id == last.c.m)).all())


def _state_counts(ctx: Ctx, where) -> dict[tuple[str | None, str], tuple[int, int]]:
    """(bank, state) -> (count, fen) for the items matched by ``where`` (on Item joined to Batch)."""
    last = (sa.select(ItemEvent.item_id, sa.func.max(ItemEvent.id).label("m")).group_by(ItemEvent.item_id)
            .subquery())
    q = (sa.select(Item.bank_id, ItemEvent.state, sa.func.count(), sa.func.sum(Item.amount_fen))
         .join(Batch, Batch.id == Item.batch_id).join(last, last.c.item_id == Item.id)
         .join(ItemEvent, ItemEvent.id == last.c.m).where(where).group_by(Item.bank_id, ItemEvent.state))
    return {(bank, state): (n, int(fen or 0)) for bank, state, n, fen in ctx.session.execute(q)}


# --- who am I --------------------------------------------------------------------------------------

def me(ctx: Ctx) -> dict:
    p = ctx.principal
    names = {FINANCE: ctx.cfg.counties, AUDITOR: ctx.cfg.counties, DEPARTMENT: ctx.cfg.departments,
             UNIT: ctx.cfg.units, BANK: ctx.cfg.banks}
    scope = names.get(p.role, {}).get(p.scope)
    return {"username": p.username, "role": p.role, "scope": p.scope,
            "scope_name": scope.name if scope is not None else ("全部区县 all counties" if p.scope == ALL else "")}


# --- banks and their health ------------------------------------------------------------------------

def banks(ctx: Ctx) -> dict:
    rows = []
    for bank_id in bank_ids_in_scope(ctx):
        bank = ctx.cfg.banks[bank_id]
        s = ctx.session
        out = dict(s.execute(sa.select(OutboundFile.state, sa.func.count()).where(OutboundFile.bank_id == bank_id)
                             .group_by(OutboundFile.state)).all())
        last_delivery = s.scalar(sa.select(sa.func.max(OutboundFile.delivered_at))
                                 .where(OutboundFile.bank_id == bank_id))
        retrying = s.scalar(sa.select(sa.func.count()).where(OutboundFile.bank_id == bank_id,
                                                             OutboundFile.state.in_(("planned", "ready")),
                                                             OutboundFile.attempts > 0))
        last_error = s.scalar(sa.select(OutboundFile.last_error).where(OutboundFile.bank_id == bank_id,
                                                                     OutboundFile.last_error.is_not(None))
                              .order_by(OutboundFile.id.desc()).limit(1))
        inbound = dict(s.execute(sa.select(InboundFile.status, sa.func.count()).where(InboundFile.bank_id == bank_id)
                                 .group_by(InboundFile.status)).all())
        last_inbound = s.scalar(sa.select(sa.func.max(InboundFile.received_at)).where(InboundFile.bank_id == bank_id))
        failed = out.get("failed", 0)
        refused = inbound.get("refused", 0)
        health = "bad" if failed or refused else ("warn" if retrying else "ok")
        rows.append({"id": bank_id, "name": bank.name, "format": bank.format, "transport": bank.transport.kind,
                     "counties": list(bank.counties), "health": health,
                     "files": {"planned": out.get("planned", 0), "ready": out.get("ready", 0),
                               "delivered": out.get("delivered", 0), "failed": failed, "retrying": retrying},
                     "last_delivery": iso(last_delivery), "last_error": last_error,
                     "inbound": {"stored": inbound.get("stored", 0), "applied": inbound.get("applied", 0),
                                 "refused": refused},
                     "last_inbound": iso(last_inbound)})
    return {"banks": rows}


def files(ctx: Ctx) -> dict:
    p, s = ctx.principal, ctx.session
    banks_ = bank_ids_in_scope(ctx)
    out_q = sa.select(OutboundFile).join(Batch, Batch.id == OutboundFile.batch_id)
    out_q = out_q.where(OutboundFile.bank_id == p.scope) if p.role == BANK else out_q.where(batch_filter(ctx))
    outbound = [{"id": f.id, "bank": f.bank_id, "batch_id": f.batch_id, "name": f.name, "state": f.state,
                 "item_count": f.item_count, "amount": yuan(f.total_fen), "attempts": f.attempts,
                 "delivered_at": iso(f.delivered_at), "last_error": f.last_error}
                for f in s.scalars(out_q.order_by(OutboundFile.id.desc()).limit(PAGE))]
    inbound = [{"id": f.id, "bank": f.bank_id, "name": f.name, "kind": f.kind, "status": f.status,
                "received_at": iso(f.received_at), "error": f.error}
               for f in s.scalars(sa.select(InboundFile).where(InboundFile.bank_id.in_(banks_))
                                  .order_by(InboundFile.id.desc()).limit(PAGE))]
    return {"outbound": outbound, "inbound": inbound}


# --- batches, proof, findings ----------------------------------------------------------------------

def _batch_row(ctx: Ctx, b: Batch) -> dict:
    policy = ctx.cfg.policies.get(b.policy_code)
    dept = ctx.cfg.departments.get(b.department_code)
    return {"id": b.id, "ref": b.ref, "policy": b.policy_code, "policy_name": policy.name if policy else "",
            "period": b.period, "county": b.county_code, "department": b.department_code,
            "department_name": dept.name if dept else "", "submitted_by": b.submitted_by,
            "submitted_at": iso(b.submitted_at), "item_count": b.item_count, "amount": yuan(b.total_fen),
            "corrects_batch_id": b.corrects_batch_id}


def batches(ctx: Ctx) -> dict:
    q = sa.select(Batch).where(batch_filter(ctx)).order_by(Batch.id.desc()).limit(PAGE)
    rows = []
    for b in ctx.session.scalars(q):
        row = _batch_row(ctx, b)
        row["proof"] = batch_proof(ctx.session, b.id).as_dict()
        rows.append(row)
    return {"batches": rows}


def batch(ctx: Ctx, id: int) -> dict:
    b = _batch_in_scope(ctx, id)
    return {"batch": _batch_row(ctx, b), "proof": batch_proof(ctx.session, b.id).as_dict(),
            "findings_count": ctx.session.scalar(sa.select(sa.func.count()).where(Finding.batch_id == b.id))}


def findings(ctx: Ctx, id: int) -> dict:
    b = _batch_in_scope(ctx, id)
    q = sa.select(Finding, Item.seq).outerjoin(Item, Item.id == Finding.item_id).where(Finding.batch_id == b.id)
    if ctx.principal.role == UNIT:
        q = q.where(Item.unit_code == ctx.principal.scope)
    rows = [{"id": f.id, "item_id": f.item_id, "row": seq, "code": f.code, "severity": f.severity,
             "message_zh": f.message_zh, "message_en": f.message_en}
            for f, seq in ctx.session.execute(q.order_by(Finding.id).limit(PAGE * 5))]
    return {"batch": _batch_row(ctx, b), "findings": rows,
            "reject": sum(1 for r in rows if r["severity"] == "reject"),
            "review": sum(1 for r in rows if r["severity"] == "review")}


# --- items -----------------------------------------------------------------------------------------

def _masked(ctx: Ctx, it: Item) -> dict:
    v = ctx.vault
    return {"name": mask_name(v.read(it, "name_enc")), "id_number": mask_id(v.read(it, "id_number_enc")),
            "account": mask_account(v.read(it, "account_enc"))}


def items(ctx: Ctx) -> dict:
    q = sa.select(Item).join(Batch, Batch.id == Item.batch_id).where(item_filter(ctx))
    batch_id = ctx.arg("batch")
    if batch_id and batch_id.isdigit():
        q = q.where(Item.batch_id == int(batch_id))
    page = list(ctx.session.scalars(q.order_by(Item.id).limit(PAGE)))
    states = latest_states(ctx.session, [i.id for i in page])
    rows = [{"id": it.id, "batch_id": it.batch_id, "row": it.seq, "unit": it.unit_code, "bank": it.bank_id,
             "amount": yuan(it.amount_fen), "state": states.get(it.id), "state_zh": STATE_ZH.get(states.get(it.id), ""),
             **_masked(ctx, it)} for it in page]
    return {"items": rows, "limit": PAGE}


def _item_in_scope(ctx: Ctx, item_id: int) -> tuple[Item, Batch]:
    row = ctx.session.execute(sa.select(Item, Batch).join(Batch, Batch.id == Item.batch_id)
                              .where(Item.id == item_id, item_filter(ctx))).first()
    if row is None:
        raise NotFound(f"item {item_id}")
    return row[0], row[1]


def item(ctx: Ctx, id: int) -> dict:
    it, b = _item_in_scope(ctx, id)
    events = [{"state": e.state, "state_zh": STATE_ZH.get(e.state, ""), "at": iso(e.at), "source": e.source,
               "reason_code": e.reason_code, "reason_text": e.reason_text}
              for e in ctx.session.scalars(sa.select(ItemEvent).where(ItemEvent.item_id == it.id)
                                           .order_by(ItemEvent.id))]
    return {"item": {"id": it.id, "batch_id": it.batch_id, "batch_ref": b.ref, "row": it.seq,
                     "end_to_end_id": it.end_to_end_id, "unit": it.unit_code, "bank": it.bank_id,
                     "amount": yuan(it.amount_fen), "state": events[-1]["state"] if events else None,
                     "resubmission_of": it.resubmission_of, **_masked(ctx, it)},
            "events": events, "masked": True, "may_reveal": ctx.principal.may_unmask_in(b.county_code)}


def item_reveal_subject(ctx: Ctx, id: int) -> tuple[Item, Batch]:
    """The item, if the viewer may see it unmasked; :class:`Forbidden` otherwise (for the audit entry first)."""
    it, b = _item_in_scope(ctx, id)
    if not ctx.principal.may_unmask_in(b.county_code):
        raise Forbidden("only the finance bureau of the item's county may see personal data in full")
    return it, b


def item_reveal(ctx: Ctx, id: int) -> dict:
    """The item with personal data in full. The caller must have written the audit entry already."""
    it, _b = item_reveal_subject(ctx, id)
    data = item(ctx, id)
    v = ctx.vault
    data["item"].update(name=v.read(it, "name_enc"), id_number=v.read(it, "id_number_enc"),
                        account=v.read(it, "account_enc"))
    data["masked"] = False
    return data


# --- reconciliation queues -------------------------------------------------------------------------

def exceptions(ctx: Ctx) -> dict:
    """The exceptions queue: bank lines that matched no item, or not exactly. Unresolved first."""
    banks_ = bank_ids_in_scope(ctx)
    q = (sa.select(ReconException, InboundFile.bank_id, InboundFile.name)
         .join(InboundFile, InboundFile.id == ReconException.inbound_file_id)
         .where(InboundFile.bank_id.in_(banks_))
         .order_by(ReconException.resolved, ReconException.id.desc()).limit(PAGE * 5))
    rows, item_ids = [], set()
    for e, bank_id, file_name in ctx.session.execute(q):
        try:
            detail = json.loads(e.detail)
        except ValueError:
            detail = {"raw": e.detail}
        if isinstance(detail.get("item_id"), int):
            item_ids.add(detail["item_id"])
        rows.append({"id": e.id, "bank": bank_id, "file": file_name, "line": e.line, "reference": e.reference,
                     "kind": e.kind, "zh": detail.get("zh", ""), "en": detail.get("en", ""), "detail": detail,
                     "created_at": iso(e.created_at), "resolved": e.resolved})
    if ctx.principal.role != BANK and item_ids:
        # a bank serving several counties: a county sees the lines about its own items (and unmatched ones)
        visible = set(ctx.session.scalars(sa.select(Item.id).join(Batch, Batch.id == Item.batch_id)
                                          .where(Item.id.in_(item_ids), item_filter(ctx))))
        rows = [r for r in rows if not isinstance(r["detail"].get("item_id"), int) or r["detail"]["item_id"] in visible]
    return {"exceptions": rows[:PAGE], "open": sum(1 for r in rows if not r["resolved"])}


def corrections(ctx: Ctx) -> dict:
    """The correction queue (:func:`reconciliation.corrections.correction_queue`): items that failed
    validation, were rejected by the bank or returned, and are not yet resubmitted [Art. 22-23]."""
    from reconciliation.corrections import correction_queue

    p = ctx.principal
    entries = correction_queue(ctx.session, ctx.cfg, ctx.vault,
                               department_code=p.scope if p.role == DEPARTMENT else None,
                               unit_code=p.scope if p.role == UNIT else None)
    visible = _visible_item_ids(ctx, [e.item_id for e in entries])
    rows = []
    for e in entries:
        if e.item_id not in visible:
            continue
        d = e.as_dict()
        rows.append({"id": e.item_id, "batch_id": e.batch_id, "batch_ref": e.batch_ref, "row": e.row,
                     "unit": e.unit_code, "bank": e.bank_id, "amount": e.amount, "state": e.state,
                     "state_zh": STATE_ZH.get(e.state, e.state), "since": iso(e.at), "reason_code": e.reason_code,
                     "reason_zh": d["reason_zh"], "reason_en": d["reason_en"], "explain": e.explain,
                     "bank_text": e.bank_text, "name": e.name, "id_number": e.id_number, "account": e.account})
        if len(rows) >= PAGE:
            break
    return {"items": rows}


def _visible_item_ids(ctx: Ctx, ids: list[int]) -> set[int]:
    out: set[int] = set()
    for i in range(0, len(ids), 5000):
        out |= set(ctx.session.scalars(sa.select(Item.id).join(Batch, Batch.id == Item.batch_id)
                                       .where(Item.id.in_(ids[i:i + 5000]), item_filter(ctx))))
    return out


# --- compliance ------------------------------------------------------------------------------------

BUCKETS = (("settled", "已入账 settled", (SETTLED,)), ("rejected", "银行退回 rejected", (REJECTED_BY_BANK,)),
           ("returned", "已退款 returned", (RETURNED,)), ("outstanding", "未回执 outstanding", (SENT, ACCEPTED)),
           ("awaiting", "待发送 awaiting dispatch", (VALIDATED, SUBMITTED)))


def compliance(ctx: Ctx) -> dict:
    """Outcome per bank for the items in scope, and sent items still unanswered past the bank's results
    deadline (``results_working_days`` after delivery, on the working-day calendar) [Art. 20-22]."""
    counts = _state_counts(ctx, item_filter(ctx))
    per_bank: dict[str, dict] = {}
    for (bank_id, state), (n, fen) in counts.items():
        row = per_bank.setdefault(bank_id or "-", {k: {"count": 0, "fen": 0} for k, _l, _s in BUCKETS})
        for key, _label, states in BUCKETS:
            if state in states:
                row[key]["count"] += n
                row[key]["fen"] += fen
    overdue, fallback_years = _overdue(ctx)
    rows = []
    for bank_id in sorted(per_bank):
        r = per_bank[bank_id]
        bank = ctx.cfg.banks.get(bank_id)
        rows.append({"bank": bank_id, "bank_name": bank.name if bank else "",
                     **{k: {"count": v["count"], "amount": yuan(v["fen"])} for k, v in r.items()},
                     "overdue": overdue.get(bank_id, 0)})
    batches_ = _batch_deadlines(ctx, fallback_years)
    return {"banks": rows, "buckets": [(k, label) for k, label, _s in BUCKETS], "batches": batches_,
            "obligations": [(k, OBLIGATION_ZH[k]) for k in OBLIGATION_ZH],
            "deadline_statuses": [(k, DEADLINE_ZH[k]) for k in DEADLINE_ZH],
            "fallback_years": sorted(fallback_years), "as_of": iso(ctx.now)}


OBLIGATION_ZH = {"credit": "入账 credit (1 working day)", "results": "回执 results (3)",
                 "refund_info": "退款信息 refund info (3)"}
DEADLINE_ZH = {"met": "按时 met", "late": "逾期 late", "at_risk": "临期 at risk", "outstanding": "未到期 outstanding",
               "awaiting_funds": "待拨款 awaiting funds"}


def _batch_deadlines(ctx: Ctx, fallback_years: set[int]) -> list[dict]:
    """Deadline tallies per batch in scope (:func:`reconciliation.deadlines.batch_deadlines`) [Art. 20-22]."""
    if ctx.calendar is None or ctx.principal.role == BANK:
        return []  # a bank sees its own outcome chart; batch deadlines span other banks' items
    from reconciliation.deadlines import batch_deadlines

    out = []
    for b in ctx.session.scalars(sa.select(Batch).where(batch_filter(ctx)).order_by(Batch.id.desc()).limit(50)):
        bd = batch_deadlines(ctx.session, ctx.cfg, ctx.calendar, b.id, now=ctx.now)
        fallback_years |= set(bd.fallback_years)
        due = bd.due_dates()
        out.append({"batch_id": b.id, "ref": b.ref, "item_count": bd.tallies.items,
                    "status": {k: bd.status(k) for k in OBLIGATION_ZH},
                    "due": {k: (due[k].isoformat() if due.get(k) else None) for k in OBLIGATION_ZH},
                    "counts": {k: {s_: n for s_, n in bd.tallies.counts[k].items() if s_ in DEADLINE_ZH}
                               for k in OBLIGATION_ZH}})
    return out


def _overdue(ctx: Ctx) -> tuple[dict[str, int], set[int]]:
    """Sent items without a result past their bank's results deadline, per bank."""
    from gateway.timeutil import local_date

    if ctx.calendar is None:
        return {}, set()
    last = (sa.select(ItemEvent.item_id, sa.func.max(ItemEvent.id).label("m")).group_by(ItemEvent.item_id)
            .subquery())
    from gateway.db.models import OutboundFileItem

    q = (sa.select(OutboundFile.bank_id, OutboundFile.delivered_at, sa.func.count())
         .join(OutboundFileItem, OutboundFileItem.file_id == OutboundFile.id)
         .join(Item, Item.id == OutboundFileItem.item_id).join(Batch, Batch.id == Item.batch_id)
         .join(last, last.c.item_id == Item.id).join(ItemEvent, ItemEvent.id == last.c.m)
         .where(item_filter(ctx), ItemEvent.state.in_((SENT, ACCEPTED)), OutboundFile.delivered_at.is_not(None))
         .group_by(OutboundFile.bank_id, OutboundFile.delivered_at))
    out: dict[str, int] = {}
    fallback: set[int] = set()
    today = local_date(ctx.now)
    for bank_id, delivered_at, n in ctx.session.execute(q):
        bank = ctx.cfg.banks.get(bank_id)
        days = bank.sla.results_working_days if bank else 3
        due = ctx.calendar.add_working_days(local_date(delivered_at), days)
        fallback |= set(due.fallback_years)
        if today > due.date:
            out[bank_id] = out.get(bank_id, 0) + n
    return out, fallback


# --- disclosure ------------------------------------------------------------------------------------

def policy_list(cfg) -> list[dict]:
    """The policy list 政策清单 as published [Art. 26-27]."""
    rows = []
    for p in cfg.policies.values():
        dept = cfg.departments.get(p.department)
        rows.append({"code": p.code, "name": p.name, "beneficiaries": p.beneficiaries, "standard": str(p.standard),
                     "frequency": p.frequency, "basis": p.basis, "guide": p.guide,
                     "department": dept.name if dept else p.department, "hotline": p.hotline,
                     "counties": [cfg.counties[c].name for c in p.counties if c in cfg.counties]})
    return rows


def disclosure(ctx: Ctx) -> dict:
    """Previews of what the public will see: the notices (unit · policy · period) in scope, and one of
    them as :func:`gateway.admin.disclosure.build_notice` builds it (masked)."""
    from gateway.admin.disclosure import DisclosureError, build_notice
    from gateway.timeutil import local_date

    q = (sa.select(Item.unit_code, Batch.policy_code, Batch.period, sa.func.count(), sa.func.sum(Item.amount_fen))
         .join(Batch, Batch.id == Item.batch_id).where(item_filter(ctx))
         .group_by(Item.unit_code, Batch.policy_code, Batch.period)
         .order_by(Batch.period.desc(), Item.unit_code, Batch.policy_code).limit(PAGE))
    notices = []
    for unit, policy, period, n, fen in ctx.session.execute(q):
        u = ctx.cfg.units.get(unit)
        notices.append({"unit": unit, "unit_name": u.name if u else "", "policy": policy, "period": period,
                        "count": n, "amount": yuan(fen)})
    preview = None
    pick = ctx.arg("unit"), ctx.arg("policy"), ctx.arg("period")
    if all(pick) and any((n["unit"], n["policy"], n["period"]) == pick for n in notices):
        try:
            notice = build_notice(ctx.session, ctx.cfg, ctx.vault, unit=pick[0], policy=pick[1], period=pick[2],
                                  published_on=local_date(ctx.now))
        except DisclosureError as e:
            preview = {"error": e.plain()}
        else:
            preview = {"title": notice.title, "publish_from": notice.publish_from.isoformat(),
                       "publish_to": notice.publish_to.isoformat(), "hotline": notice.hotline,
                       "count": notice.count, "total": str(notice.total),
                       "rows": [{"no": ln.no, "name": ln.name, "id_number": ln.id_number, "account": ln.account,
                                 "amount": str(ln.amount), "paid_on": ln.paid_on.isoformat()} for ln in notice.lines]}
    return {"policies": policy_list(ctx.cfg), "notices": notices, "preview": preview, "pick": list(pick)}
