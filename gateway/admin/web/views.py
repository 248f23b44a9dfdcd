"""What each page and API endpoint shows, already cut to the viewer's scope.

Every function takes a :class:`Ctx` (database session, principal, configuration, vault, now) and
returns plain data (dicts, lists, strings, ints) that the console renders with a template and the
API returns as JSON, so the two never disagree. An object outside the viewer's scope raises
:class:`NotFound`, the same answer as an object that does not exist.

Personal data is always masked here; only :func:`item_reveal` decrypts it in full, and only for
the finance bureau of the item's county, after the caller has written the audit entry.

The one-card account functions (:func:`register_account` … :func:`beneficiary`) take their input
from ``ctx.body`` (a JSON object) and leave every rule to :mod:`gateway.admin.accounts`, which also
writes the audit entries, exactly as ``ykt accounts …`` does. Bad input raises :class:`BadInput`
(the field and a message in Chinese and English).
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


class BadInput(Exception):
    """Input that cannot be accepted: ``field`` (as the API names it, or None) and why, in Chinese and English."""

    def __init__(self, field: str | None, zh: str, en: str) -> None:
        super().__init__(en)
        self.field, self.zh, self.en = field, zh, en

    def as_dict(self) -> dict:
        return {"error": "bad request", "field": self.field, "message_zh": self.zh, "message_en": self.en}


@dataclass
class Ctx:
    session: Session
    principal: Principal
    cfg: Any
    vault: PiiVault
    now: dt.datetime
    calendar: Any = None
    query: dict | None = None  # request arguments, first value of each
    body: dict | None = None  # the JSON object of a POST

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
             **_masked(ctx, it), "proxy_name": _proxy_name(ctx, it)} for it in page]
    return {"items": rows, "limit": PAGE}


def _proxy_name(ctx: Ctx, it: Item, *, reveal: bool = False) -> str | None:
    """The proxy 代领人 the item is paid through [Art. 13] (masked unless ``reveal``), or None."""
    name = ctx.vault.read(it, "proxy_name_enc") if it.proxy_name_enc is not None else None
    return name if reveal or name is None else mask_name(name)


def _proxy(ctx: Ctx, it: Item, *, reveal: bool = False) -> dict | None:
    """The proxy on an item [Art. 13]: the name from the roster, and the recorded, approved proxy of
    :func:`gateway.admin.accounts.record_proxy` that matches it (ID, relation, approver), if any."""
    if it.proxy_id_hash is None and it.proxy_name_enc is None:
        return None
    from gateway.admin.models import Beneficiary, Proxy

    rec = ctx.session.scalar(sa.select(Proxy).join(Beneficiary, Beneficiary.id == Proxy.beneficiary_id)
                             .where(Beneficiary.id_hash == it.id_hash, Proxy.proxy_id_hash == it.proxy_id_hash)
                             .order_by(Proxy.id.desc()).limit(1)) if it.proxy_id_hash else None
    pid = ctx.vault.read(rec, "proxy_id_number_enc") if rec is not None else None
    return {"name": _proxy_name(ctx, it, reveal=reveal), "recorded": rec is not None,
            "id_number": pid if reveal or pid is None else mask_id(pid),
            "relation": rec.relation if rec else None, "approved_by": rec.approved_by if rec else None,
            "approved_at": iso(rec.approved_at) if rec else None}


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
                     "resubmission_of": it.resubmission_of, **_masked(ctx, it), "proxy": _proxy(ctx, it)},
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
                        account=v.read(it, "account_enc"), proxy=_proxy(ctx, it, reveal=True))
    data["masked"] = False
    return data


# --- reconciliation queues -------------------------------------------------------------------------

def exceptions(ctx: Ctx) -> dict:
    """The exceptions queue: bank lines that matched no item, or not exactly, and items the gateway held
    out of a payment file (no bank file: a bank operator does not see those). Unresolved first."""
    banks_ = bank_ids_in_scope(ctx)
    from_bank = InboundFile.bank_id.in_(banks_)
    q = (sa.select(ReconException, InboundFile.bank_id, InboundFile.name)
         .outerjoin(InboundFile, InboundFile.id == ReconException.inbound_file_id)
         .where(from_bank if ctx.principal.role == BANK
                else sa.or_(from_bank, ReconException.inbound_file_id.is_(None)))
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
    proxied = {it.id: it for it in _items_with_proxy(ctx, visible)}
    rows = []
    for e in entries:
        if e.item_id not in visible:
            continue
        d = e.as_dict()
        rows.append({"id": e.item_id, "batch_id": e.batch_id, "batch_ref": e.batch_ref, "row": e.row,
                     "unit": e.unit_code, "bank": e.bank_id, "amount": e.amount, "state": e.state,
                     "state_zh": STATE_ZH.get(e.state, e.state), "since": iso(e.at), "reason_code": e.reason_code,
                     "reason_zh": d["reason_zh"], "reason_en": d["reason_en"], "explain": e.explain,
                     "bank_text": e.bank_text, "name": e.name, "id_number": e.id_number, "account": e.account,
                     "proxy_name": _proxy_name(ctx, proxied[e.item_id]) if e.item_id in proxied else None})
        if len(rows) >= PAGE:
            break
    return {"items": rows}


def _items_with_proxy(ctx: Ctx, ids) -> list[Item]:
    ids, out = list(ids), []
    for i in range(0, len(ids), 5000):
        out += ctx.session.scalars(sa.select(Item).where(Item.id.in_(ids[i:i + 5000]),
                                                         Item.proxy_name_enc.is_not(None)))
    return out


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


# --- beneficiaries and one-card accounts [Art. 10-14] ------------------------------------------------

FIELD_ZH = {"name": "姓名", "id_number": "身份证号码", "unit": "实施单位", "account": "账号", "bank": "代发银行",
            "kind": "账户类型", "social_security_card": "社保卡金融账户", "chosen_by_beneficiary": "本人自选银行",
            "household": "户号", "form_ref": "申报表编号", "note": "备注", "proxy_name": "代领人姓名",
            "proxy_id_number": "代领人身份证号码", "proxy_account": "代领账号", "relation": "与本人关系",
            "reason": "代领原因", "approved_by": "审核人"}


def _body(ctx: Ctx) -> dict:
    if not isinstance(ctx.body, dict):
        raise BadInput(None, "请求体应为 JSON 对象（Content-Type: application/json）",
                       "the request body must be a JSON object (Content-Type: application/json)")
    return ctx.body


def _text(ctx: Ctx, name: str, *, required: bool = True, max_len: int = 64) -> str | None:
    v = _body(ctx).get(name)
    zh = FIELD_ZH.get(name, name)
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            raise BadInput(name, f"缺少“{zh}”", f"{name} is required")
        return None
    if not isinstance(v, str):
        raise BadInput(name, f"“{zh}”应为文本（字符串）", f"{name} must be a string")
    if len(v) > max_len:
        raise BadInput(name, f"“{zh}”过长（最多 {max_len} 字）", f"{name} is longer than {max_len} characters")
    return v.strip()


def _flag(ctx: Ctx, name: str) -> bool:
    v = _body(ctx).get(name, False)
    if not isinstance(v, bool):
        raise BadInput(name, f"“{FIELD_ZH.get(name, name)}”应为 true 或 false", f"{name} must be true or false")
    return v


def _bank(ctx: Ctx) -> str:
    bank = _text(ctx, "bank", max_len=32)
    if bank not in ctx.cfg.banks:
        raise BadInput("bank", "未知的代发银行", f"unknown bank; one of {', '.join(sorted(ctx.cfg.banks))}")
    return bank


def _who(ctx: Ctx) -> str:
    return f"user:{ctx.principal.username}"


class _Refusals:
    """Turns :class:`gateway.admin.accounts.AccountError` into :class:`BadInput`."""

    def __enter__(self):
        return self

    def __exit__(self, typ, e, tb):
        from gateway.admin.accounts import AccountError

        if isinstance(e, AccountError):
            raise BadInput(e.field, e.zh or e.message, e.message) from None
        return False


def _units_in_scope(ctx: Ctx) -> set[str] | None:
    """Implementation units whose beneficiaries the viewer may see (None: all): a unit its own, finance,
    department and auditor those of their county; a bank none."""
    p = ctx.principal
    if p.role == UNIT:
        return {p.scope}
    if p.role == AUDITOR and p.scope == ALL:
        return None
    if p.role in (FINANCE, AUDITOR, DEPARTMENT):
        county = p.county_of(ctx.cfg)
        return {u.code for u in ctx.cfg.units.values() if u.county == county}
    return set()


def _in_scope(ctx: Ctx, unit_code: str) -> bool:
    units = _units_in_scope(ctx)
    return units is None or unit_code in units


def _beneficiary_in_scope(ctx: Ctx, beneficiary_id: int):
    from gateway.admin.models import Beneficiary

    b = ctx.session.get(Beneficiary, beneficiary_id)
    if b is None or not _in_scope(ctx, b.unit_code):
        raise NotFound(f"beneficiary {beneficiary_id}")
    return b


def _account_in_scope(ctx: Ctx, account_id: int):
    from gateway.admin.models import Account, Beneficiary

    row = ctx.session.execute(sa.select(Account, Beneficiary.unit_code)
                              .join(Beneficiary, Beneficiary.id == Account.beneficiary_id)
                              .where(Account.id == account_id)).first()
    if row is None or not _in_scope(ctx, row[1]):
        raise NotFound(f"account {account_id}")
    return row[0]


def _beneficiary_dict(v) -> dict:
    return {"beneficiary_id": v.beneficiary_id, "name": v.name, "id_number": v.id_number, "unit": v.unit_code,
            "registered_by": v.registered_by, "registered_at": iso(v.registered_at), "masked": True,
            "accounts": [{"id": a.account_id, "kind": a.kind, "bank": a.bank_id, "account": a.account,
                          "social_security_card": a.social_security_card, "state": a.state,
                          "replaces_account_id": a.replaces_account_id,
                          "history": [{"step": k, "by": by, "role": role, "at": iso(at), "note": note}
                                      for k, by, role, at, note in a.history]} for a in v.accounts],
            "proxies": [{**p, "approved_at": iso(p["approved_at"])} for p in v.proxies]}


def beneficiary(ctx: Ctx, id: int) -> dict:
    """A beneficiary, every account (superseded ones too) with who and when, and the proxies; masked."""
    from gateway.admin import accounts

    return _beneficiary_dict(accounts.beneficiary_view(ctx.session, ctx.vault, _beneficiary_in_scope(ctx, id)))


def beneficiary_lookup(ctx: Ctx) -> dict:
    """:func:`beneficiary` found by resident ID number (given in the body, never in a URL or a log)."""
    from gateway.admin import accounts

    with _Refusals():
        b = accounts.find_beneficiary(ctx.session, ctx.vault, _text(ctx, "id_number", max_len=18))
    if b is None or not _in_scope(ctx, b.unit_code):
        raise NotFound("beneficiary")
    return _beneficiary_dict(accounts.beneficiary_view(ctx.session, ctx.vault, b))


def register_account(ctx: Ctx) -> dict:
    """An implementation unit registers a self-declared account for its own unit [Art. 10-11]."""
    from gateway.admin import accounts

    unit = _text(ctx, "unit", required=False, max_len=32) or ctx.principal.scope
    if unit != ctx.principal.scope:
        raise Forbidden("只能为本单位登记 an implementation unit registers accounts for its own unit only")
    with _Refusals():
        a = accounts.register(ctx.session, ctx.vault, now=ctx.now, name=_text(ctx, "name", max_len=30),
                              id_number=_text(ctx, "id_number", max_len=18), unit_code=unit,
                              account=_text(ctx, "account", max_len=40), bank_id=_bank(ctx),
                              kind=_text(ctx, "kind", required=False, max_len=16) or "card",
                              social_security_card=_flag(ctx, "social_security_card"),
                              bank_chosen_by_beneficiary=_flag(ctx, "chosen_by_beneficiary"), recorded_by=_who(ctx),
                              household=_text(ctx, "household", required=False),
                              declaration_ref=_text(ctx, "form_ref", required=False))
    return {"beneficiary_id": a.beneficiary_id, "account_id": a.id, "state": "active"}


def change_account(ctx: Ctx, id: int) -> dict:
    """The beneficiary re-declares a new account; the unit records it (``declared``) [Art. 14]."""
    from gateway.admin import accounts

    b = _beneficiary_in_scope(ctx, id)
    with _Refusals():
        a = accounts.change(ctx.session, ctx.vault, now=ctx.now, id_number=ctx.vault.read(b, "id_number_enc"),
                            account=_text(ctx, "account", max_len=40), bank_id=_bank(ctx),
                            kind=_text(ctx, "kind", required=False, max_len=16) or "card",
                            social_security_card=_flag(ctx, "social_security_card"),
                            bank_chosen_by_beneficiary=_flag(ctx, "chosen_by_beneficiary"), recorded_by=_who(ctx),
                            declaration_ref=_text(ctx, "form_ref", required=False))
    return {"beneficiary_id": b.id, "account_id": a.id, "state": "declared",
            "replaces_account_id": a.replaces_account_id}


def approve_account(ctx: Ctx, id: int) -> dict:
    """The implementation unit approves a declared change of account [Art. 14]."""
    from gateway.admin import accounts

    _account_in_scope(ctx, id)
    with _Refusals():
        accounts.approve(ctx.session, now=ctx.now, account_id=id, by=_who(ctx),
                         note=_text(ctx, "note", required=False, max_len=500))
    return {"account_id": id, "state": "approved"}


def confirm_account(ctx: Ctx, id: int) -> dict:
    """County finance confirms an approved change; the old account is superseded, never deleted [Art. 14]."""
    from gateway.admin import accounts

    _account_in_scope(ctx, id)
    with _Refusals():
        a = accounts.confirm(ctx.session, now=ctx.now, account_id=id, by=_who(ctx),
                             note=_text(ctx, "note", required=False, max_len=500))
    return {"account_id": id, "state": "active", "replaces_account_id": a.replaces_account_id}


def record_proxy(ctx: Ctx, id: int) -> dict:
    """Proxy collection 代领 [Art. 13]: recorded by the caller, approved by the person named in
    ``approved_by`` (not the caller: :func:`gateway.admin.accounts.record_proxy` refuses that)."""
    from gateway.admin import accounts

    b = _beneficiary_in_scope(ctx, id)
    approver = _text(ctx, "approved_by")
    if approver == ctx.principal.username:
        approver = _who(ctx)  # the caller by their user name is still the caller
    with _Refusals():
        p = accounts.record_proxy(ctx.session, ctx.vault, now=ctx.now, id_number=ctx.vault.read(b, "id_number_enc"),
                                  proxy_name=_text(ctx, "proxy_name", max_len=30),
                                  proxy_id_number=_text(ctx, "proxy_id_number", max_len=18),
                                  relation=_text(ctx, "relation", max_len=32), reason=_text(ctx, "reason", max_len=500),
                                  recorded_by=_who(ctx), approved_by=approver,
                                  proxy_account=_text(ctx, "proxy_account", required=False, max_len=40))
    return {"beneficiary_id": b.id, "proxy_id": p.id}
