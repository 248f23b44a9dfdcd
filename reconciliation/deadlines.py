"""Deadlines on the Chinese working-day calendar [Art. 20-22], for every sent item and batch.

Three obligations of the partner bank, each with a due date and a status:

``credit`` [Art. 20]
    Credit the beneficiary within ``sla.credit_working_days`` (1) working day of the LATER of
    *data delivered* and *funds received*. Data delivered: the China date of the file's
    ``delivered_at``; at or after the bank's cut-off, or on a day that is not a working day, it
    counts from the next working day. Funds received: the moment the transfers recorded for that
    bank and batch (:mod:`gateway.funding`) first add up to the amount sent to the bank for the
    batch, with the same cut-off rule, and never before the transfers' value date. Until then the
    clock has not started: status ``awaiting_funds``. The credit date is the bank's own booking
    date for the credit (``item_events.bank_date``) when the report carried one, else the China
    date on which the first report proving the credit (``settled``) was recorded. A rejected item
    was never credited: ``not_applicable``.

``results`` [Art. 21]
    Report the result within ``sla.results_working_days`` (3) working days of crediting. Counted
    from the credit date, or from the credit due date if the bank has not (or not yet) credited,
    whichever is earlier: a bank that never credits cannot postpone its report. The result date
    is the China date on which the report carrying the item's first final answer (settled or
    rejected) reached us: the inbound file's ``received_at``, or the event time when the answer
    was recorded without a file.

``refund_info`` [Art. 22]
    For a return (a refund, e.g. cross-bank), report it within ``sla.refund_info_working_days``
    (3) working days of the bank booking it: the return's ``bank_date`` (booking date) when the
    report carried one, else the date the return was recorded (then always met, and said so in
    ``basis``). Done on the China date the report reached us.

Status of an obligation on a given day ``today`` (China date of ``now``): ``met`` (done by the due
date), ``late`` (done after it, or not done and the due date has passed), ``at_risk`` (not done,
due today or on the next working day), ``outstanding`` (not done, due later), ``awaiting_funds``
(no clock yet), ``not_applicable``.

A date answered from the fallback calendar (a year with no official schedule) is carried in
``fallback_years`` of every item, batch and warning that depends on it.

Everything is computed set-wise: one query for the items with their first settled / rejected /
returned events, one for the funding of the (bank, batch) pairs involved; never a query per item.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.calendar import FALLBACK, WorkingDayCalendar
from gateway.config.model import Bank, Config
from gateway.db.models import Batch, Funding, InboundFile, Item, ItemBankDate, OutboundFile, OutboundFileItem
from gateway.timeutil import local, local_date
from reconciliation.lifecycle import ACCEPTED, REJECTED_BY_BANK, RETURNED, SENT, SETTLED

CREDIT, RESULTS, REFUND_INFO = "credit", "results", "refund_info"
OBLIGATIONS = (CREDIT, RESULTS, REFUND_INFO)
MET, LATE, AT_RISK, OUTSTANDING, AWAITING_FUNDS, NOT_APPLICABLE = (
    "met", "late", "at_risk", "outstanding", "awaiting_funds", "not_applicable")
STATUSES = (MET, LATE, AT_RISK, OUTSTANDING, AWAITING_FUNDS, NOT_APPLICABLE)
OPEN = frozenset({AT_RISK, OUTSTANDING, AWAITING_FUNDS})

ARTICLE = {CREDIT: "第二十条 Art. 20", RESULTS: "第二十一条 Art. 21", REFUND_INFO: "第二十二条 Art. 22"}
LABEL = {CREDIT: ("资金到账", "credit to beneficiary"), RESULTS: ("结果反馈", "results reported"),
         REFUND_INFO: ("退款信息反馈", "refund information reported")}
STATUS_LABEL = {MET: ("按时", "met"), LATE: ("超时", "late"), AT_RISK: ("临期", "at risk"),
                OUTSTANDING: ("未完成", "outstanding"), AWAITING_FUNDS: ("待拨款", "awaiting funds"),
                NOT_APPLICABLE: ("不适用", "not applicable")}

# item_events as a Core table with the bank's own date (added by migration 0005), read here only
_EVENTS = sa.Table("item_events", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                   sa.Column("item_id", sa.Integer), sa.Column("state", sa.String), sa.Column("at", sa.DateTime),
                   sa.Column("bank_date", sa.Date), sa.Column("inbound_file_id", sa.Integer))


@dataclass(frozen=True)
class Obligation:
    kind: str
    due: dt.date | None
    done: dt.date | None
    status: str
    basis: str = ""  # how the dates were found, in words

    def as_dict(self) -> dict:
        return {"kind": self.kind, "due": self.due and self.due.isoformat(), "done": self.done and self.done.isoformat(),
                "status": self.status, "basis": self.basis}


@dataclass(frozen=True)
class ItemDeadlines:
    item_id: int
    end_to_end_id: str
    batch_id: int
    batch_ref: str
    policy_code: str
    county_code: str
    department_code: str
    unit_code: str
    bank_id: str
    amount_fen: int
    state: str
    delivered_on: dt.date  # the working day the data counts as delivered
    funded_on: dt.date | None  # the working day the funds count as received (None: not yet)
    clock_start: dt.date | None
    credit: Obligation
    results: Obligation
    refund: Obligation | None
    fallback_years: frozenset[int] = frozenset()

    @property
    def obligations(self) -> tuple[Obligation, ...]:
        return (self.credit, self.results) + ((self.refund,) if self.refund else ())


@dataclass
class Tallies:
    """Counts (and fen) per obligation and status."""

    counts: dict = field(default_factory=lambda: {k: {s: 0 for s in STATUSES} for k in OBLIGATIONS})
    fen: dict = field(default_factory=lambda: {k: {s: 0 for s in STATUSES} for k in OBLIGATIONS})
    items: int = 0
    amount_fen: int = 0
    fallback_years: set = field(default_factory=set)

    def add(self, d: ItemDeadlines) -> None:
        self.items += 1
        self.amount_fen += d.amount_fen
        self.fallback_years |= d.fallback_years
        for o in d.obligations:
            self.counts[o.kind][o.status] += 1
            self.fen[o.kind][o.status] += d.amount_fen

    def on_time_rate(self, kind: str) -> float | None:
        """met / (met + late), or None when nothing was due yet. A ratio for display only, never money."""
        c = self.counts[kind]
        judged = c[MET] + c[LATE]
        return None if judged == 0 else c[MET] / judged

    def as_dict(self) -> dict:
        return {"items": self.items, "amount_fen": self.amount_fen, "counts": self.counts,
                "fallback_years": sorted(self.fallback_years)}


@dataclass
class BatchDeadlines:
    batch_id: int
    batch_ref: str
    items: list[ItemDeadlines]
    tallies: Tallies
    funding: dict  # bank_id -> {"required_fen", "funded_fen", "funded_on"}

    @property
    def fallback_years(self) -> frozenset[int]:
        return frozenset(self.tallies.fallback_years)

    def due_dates(self) -> dict[str, dt.date | None]:
        """The latest due date of each obligation over the batch's items (None: no clock yet)."""
        out = {}
        for k in OBLIGATIONS:
            dues = [o.due for d in self.items for o in d.obligations if o.kind == k and o.due]
            out[k] = max(dues) if dues else None
        return out

    def status(self, kind: str) -> str:
        """The batch's status for one obligation: the worst of its items' (late > at risk > …)."""
        c = self.tallies.counts[kind]
        for s in (LATE, AT_RISK, AWAITING_FUNDS, OUTSTANDING, MET):
            if c[s]:
                return s
        return NOT_APPLICABLE


class DeadlineClock:
    """Working-day arithmetic with the fallback years it used, cached (a report asks the same
    questions for thousands of items)."""

    def __init__(self, calendar: WorkingDayCalendar) -> None:
        self.calendar = calendar
        self._add: dict[tuple[dt.date, int], tuple[dt.date, frozenset[int]]] = {}

    def add(self, day: dt.date, n: int) -> tuple[dt.date, frozenset[int]]:
        key = (day, n)
        hit = self._add.get(key)
        if hit is None:
            r = self.calendar.add_working_days(day, n)
            fb = set(r.fallback_years)
            if self.calendar.answer(day).source == FALLBACK:
                fb.add(day.year)
            hit = self._add[key] = (r.date, frozenset(fb))
        return hit

    def effective_day(self, bank: Bank, instant: dt.datetime) -> tuple[dt.date, frozenset[int]]:
        """The working day on which something that reached the bank at ``instant`` (naive UTC)
        counts: that day if it is a working day and before the cut-off, else the next working day."""
        here = local(instant)
        day = here.date()
        same, fb = self.add(day, 0)
        if same == day and here.time() < bank.cutoff:
            return day, fb
        nxt, fb2 = self.add(day, 1)
        return nxt, fb | fb2

    def status(self, due: dt.date | None, done: dt.date | None, today: dt.date) -> str:
        if done is not None:
            return MET if due is None or done <= due else LATE
        if due is None:
            return AWAITING_FUNDS
        if today > due:
            return LATE
        if due <= self.add(today, 1)[0]:
            return AT_RISK
        return OUTSTANDING


def _received_date(received_at: dt.datetime | None, event_at: dt.datetime | None) -> dt.date | None:
    instant = received_at or event_at
    return local_date(instant) if instant is not None else None


def funding_dates(session: Session, cfg: Config, clock: DeadlineClock, pairs: Iterable[tuple[str, int]]
                  ) -> dict[tuple[str, int], dict]:
    """For each (bank, batch): the amount sent to the bank, the amount funded, and the working day
    the funds count as received (None until the transfers cover the amount sent)."""
    pairs = set(pairs)
    if not pairs:
        return {}
    batch_ids = {b for _, b in pairs}
    required: dict[tuple[str, int], int] = defaultdict(int)
    q = (sa.select(Item.bank_id, Item.batch_id, sa.func.sum(Item.amount_fen))
         .join(OutboundFileItem, OutboundFileItem.item_id == Item.id)
         .join(OutboundFile, OutboundFile.id == OutboundFileItem.file_id)
         .where(Item.batch_id.in_(batch_ids), OutboundFile.state == "delivered")
         .group_by(Item.bank_id, Item.batch_id))
    for bank_id, batch_id, fen in session.execute(q):
        required[(bank_id, batch_id)] = int(fen or 0)
    transfers: dict[tuple[str, int], list] = defaultdict(list)
    q = (sa.select(Funding.bank_id, Funding.batch_id, Funding.amount_fen, Funding.received_at, Funding.value_date)
         .where(Funding.batch_id.in_(batch_ids)).order_by(Funding.received_at, Funding.id))
    for bank_id, batch_id, fen, received_at, value_date in session.execute(q):
        transfers[(bank_id, batch_id)].append((fen, received_at, value_date))
    out = {}
    for key in pairs:
        bank = cfg.banks.get(key[0])
        need, got, on, fb = required.get(key, 0), 0, None, frozenset()
        for fen, received_at, value_date in transfers.get(key, ()):
            got += fen
            if on is None and got >= need and bank is not None:
                day, fb = clock.effective_day(bank, received_at)
                if value_date > day:  # money value-dated later is not usable before its value date
                    day, fb2 = clock.add(value_date, 0)
                    fb = fb | fb2
                on = day
        out[key] = {"required_fen": need, "funded_fen": got, "funded_on": on, "fallback_years": fb}
    return out


def _items_query(*, batch_ids=None, delivered_from=None, delivered_to=None, open_only=False):
    s, r, t = _EVENTS.alias("s"), _EVENTS.alias("r"), _EVENTS.alias("t")
    last = _EVENTS.alias("last")
    si, ri, ti = InboundFile.__table__.alias("si"), InboundFile.__table__.alias("ri"), InboundFile.__table__.alias("ti")
    # a booking date stated by a later report (camt after pain.002) when the state's own event has none
    sd, td = ItemBankDate.__table__.alias("sd"), ItemBankDate.__table__.alias("td")
    ev = _EVENTS.alias("ev")
    agg = (sa.select(ev.c.item_id,
                     sa.func.max(ev.c.id).label("last_id"),
                     sa.func.min(sa.case((ev.c.state == SETTLED, ev.c.id))).label("s_id"),
                     sa.func.min(sa.case((ev.c.state == REJECTED_BY_BANK, ev.c.id))).label("r_id"),
                     sa.func.min(sa.case((ev.c.state == RETURNED, ev.c.id))).label("t_id"))
           .join(OutboundFileItem.__table__, OutboundFileItem.item_id == ev.c.item_id)
           .join(OutboundFile.__table__, OutboundFile.id == OutboundFileItem.file_id)
           .where(OutboundFile.state == "delivered"))
    if batch_ids is not None:
        agg = agg.where(OutboundFile.batch_id.in_(list(batch_ids)))
    if delivered_from is not None:
        agg = agg.where(OutboundFile.delivered_at >= delivered_from)
    if delivered_to is not None:
        agg = agg.where(OutboundFile.delivered_at < delivered_to)
    agg = agg.group_by(ev.c.item_id).subquery("agg")
    q = (sa.select(Item.id, Item.end_to_end_id, Item.batch_id, Batch.ref, Batch.policy_code, Batch.county_code,
                   Batch.department_code, Item.unit_code, Item.bank_id, Item.amount_fen, last.c.state,
                   OutboundFile.delivered_at,
                   s.c.at, sa.func.coalesce(s.c.bank_date, sd.c.bank_date), si.c.received_at,
                   r.c.at, ri.c.received_at,
                   t.c.at, sa.func.coalesce(t.c.bank_date, td.c.bank_date), ti.c.received_at)
         .select_from(agg)
         .join(Item, Item.id == agg.c.item_id)
         .join(Batch, Batch.id == Item.batch_id)
         .join(OutboundFileItem, OutboundFileItem.item_id == Item.id)
         .join(OutboundFile, OutboundFile.id == OutboundFileItem.file_id)
         .join(last, last.c.id == agg.c.last_id)
         .outerjoin(s, s.c.id == agg.c.s_id).outerjoin(si, si.c.id == s.c.inbound_file_id)
         .outerjoin(r, r.c.id == agg.c.r_id).outerjoin(ri, ri.c.id == r.c.inbound_file_id)
         .outerjoin(t, t.c.id == agg.c.t_id).outerjoin(ti, ti.c.id == t.c.inbound_file_id)
         .outerjoin(sd, sa.and_(sd.c.item_id == Item.id, sd.c.state == SETTLED))
         .outerjoin(td, sa.and_(td.c.item_id == Item.id, td.c.state == RETURNED))
         .order_by(Item.batch_id, Item.id))
    if open_only:
        q = q.where(last.c.state.in_((SENT, ACCEPTED)))
    return q


def item_deadlines(session: Session, cfg: Config, calendar: WorkingDayCalendar | DeadlineClock, *, now: dt.datetime,
                   batch_ids: Iterable[int] | None = None, delivered_from: dt.datetime | None = None,
                   delivered_to: dt.datetime | None = None, open_only: bool = False,
                   funding: dict | None = None) -> Iterator[ItemDeadlines]:
    """Every sent item in scope with its three obligations, streamed (bounded memory).

    Scope: items of ``batch_ids``, and/or whose file was delivered in ``[delivered_from,
    delivered_to)`` (naive UTC); ``open_only`` keeps items still waiting for the bank (sent or
    accepted). ``now`` (naive UTC) decides at risk / late for what is not yet done.
    """
    clock = calendar if isinstance(calendar, DeadlineClock) else DeadlineClock(calendar)
    today = local_date(now)
    q = _items_query(batch_ids=batch_ids, delivered_from=delivered_from, delivered_to=delivered_to,
                     open_only=open_only)
    if funding is None:
        pair_q = sa.select(Item.bank_id, Item.batch_id).distinct().where(Item.id.in_(
            sa.select(q.subquery().c.id)))
        funding = funding_dates(session, cfg, clock, session.execute(pair_q).all())
    for (item_id, e2e, batch_id, ref, policy, county, dept, unit, bank_id, fen, state, delivered_at,
         s_at, s_bank_date, s_recv, r_at, r_recv, t_at, t_bank_date, t_recv) in session.execute(
            q.execution_options(yield_per=5000)):
        bank = cfg.banks.get(bank_id)
        if bank is None:
            continue  # a bank removed from config: its deadlines cannot be computed (no SLA)
        sla = bank.sla
        delivered_on, fb = clock.effective_day(bank, delivered_at)
        fund = funding.get((bank_id, batch_id)) or {}
        funded_on = fund.get("funded_on")
        fb = fb | fund.get("fallback_years", frozenset())
        clock_start = max(delivered_on, funded_on) if funded_on else None

        # Art. 20: credit
        credit_due = None
        if clock_start is not None:
            credit_due, f = clock.add(clock_start, sla.credit_working_days)
            fb |= f
        if r_at is not None and s_at is None:
            credit = Obligation(CREDIT, credit_due, None, NOT_APPLICABLE, "rejected by the bank: never credited")
            credit_done = None
        else:
            credit_done = s_bank_date or (local_date(s_at) if s_at else None)
            basis = ("bank booking date" if s_bank_date else "date the credit report was recorded") if s_at else ""
            if clock_start is None:
                basis = (basis + "; " if basis else "") + "no funding recorded for this bank and batch"
            credit = Obligation(CREDIT, credit_due, credit_done, clock.status(credit_due, credit_done, today), basis)

        # Art. 21: results
        results_base = min(d for d in (credit_done, credit_due) if d) if (credit_done or credit_due) else None
        results_due = None
        if results_base is not None:
            results_due, f = clock.add(results_base, sla.results_working_days)
            fb |= f
        finals = [(at, recv) for at, recv in ((s_at, s_recv), (r_at, r_recv)) if at is not None]
        results_done = min(_received_date(recv, at) for at, recv in finals) if finals else None
        results = Obligation(RESULTS, results_due, results_done, clock.status(results_due, results_done, today),
                             "counted from the credit date" if credit_done and credit_due and credit_done <= credit_due
                             else "counted from the credit due date" if credit_due else "")

        # Art. 22: refund information
        refund = None
        if t_at is not None:
            booked = t_bank_date or local_date(t_at)
            refund_due, f = clock.add(booked, sla.refund_info_working_days)
            fb |= f
            refund_done = _received_date(t_recv, t_at)
            refund = Obligation(REFUND_INFO, refund_due, refund_done, clock.status(refund_due, refund_done, today),
                                "counted from the bank booking date" if t_bank_date
                                else "counted from the date the return was recorded (no booking date reported)")
        yield ItemDeadlines(item_id, e2e, batch_id, ref, policy, county, dept, unit, bank_id, fen, state,
                            delivered_on, funded_on, clock_start, credit, results, refund, frozenset(fb))


def batch_deadlines(session: Session, cfg: Config, calendar: WorkingDayCalendar, batch_id: int, *,
                    now: dt.datetime) -> BatchDeadlines:
    """All sent items of one batch with their deadlines, and the batch's tallies and funding."""
    clock = DeadlineClock(calendar)
    ref = session.execute(sa.select(Batch.ref).where(Batch.id == batch_id)).scalar_one()
    pairs = session.execute(sa.select(Item.bank_id, Item.batch_id).where(Item.batch_id == batch_id).distinct()).all()
    funding = funding_dates(session, cfg, clock, [tuple(p) for p in pairs])
    items = list(item_deadlines(session, cfg, clock, now=now, batch_ids=[batch_id], funding=funding))
    tallies = Tallies()
    for d in items:
        tallies.add(d)
    return BatchDeadlines(batch_id, ref, items, tallies,
                          {k[0]: {kk: vv for kk, vv in v.items() if kk != "fallback_years"}
                           for k, v in funding.items() if v["required_fen"]})


@dataclass(frozen=True)
class DeadlineWarning:
    """One warning of the daily check: an obligation about to be missed (``at_risk``) or missed
    and still open (``late``), for one bank, batch and due date."""

    kind: str
    severity: str  # at_risk | late
    bank_id: str
    batch_id: int
    batch_ref: str
    due: dt.date
    items: int
    amount_fen: int
    fallback_years: frozenset[int] = frozenset()

    @property
    def zh(self) -> str:
        what = LABEL[self.kind][0]
        when = "已超过" if self.severity == LATE else "即将到期："
        flag = f"（{','.join(map(str, sorted(self.fallback_years)))} 年无官方日历，按备用日历推算）" if self.fallback_years else ""
        return (f"{self.bank_id} 批次 {self.batch_ref}：{self.items} 笔{what}{when}期限 {self.due}"
                f"（{ARTICLE[self.kind]}）{flag}")

    @property
    def en(self) -> str:
        what = LABEL[self.kind][1]
        when = "overdue since" if self.severity == LATE else "due by"
        flag = (f" (fallback calendar for {', '.join(map(str, sorted(self.fallback_years)))})"
                if self.fallback_years else "")
        return f"{self.bank_id} batch {self.batch_ref}: {self.items} item(s) {what} {when} {self.due}{flag}"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "severity": self.severity, "bank_id": self.bank_id, "batch_id": self.batch_id,
                "batch_ref": self.batch_ref, "due": self.due.isoformat(), "items": self.items,
                "amount_fen": self.amount_fen, "fallback_years": sorted(self.fallback_years),
                "zh": self.zh, "en": self.en}


def deadline_warnings(session: Session, cfg: Config, calendar: WorkingDayCalendar, *, now: dt.datetime
                      ) -> list[DeadlineWarning]:
    """The daily check: every open obligation due today or on the next working day (``at_risk``:
    a working day before it is missed), and every one already missed and still open (``late``),
    grouped per obligation, bank, batch and due date. Items awaiting funds have no deadline yet."""
    groups: dict[tuple, list] = {}
    for d in item_deadlines(session, cfg, calendar, now=now, open_only=True):
        for o in d.obligations:
            if o.status in (AT_RISK, LATE) and o.done is None:
                key = (o.kind, o.status, d.bank_id, d.batch_id, d.batch_ref, o.due)
                g = groups.setdefault(key, [0, 0, set()])
                g[0] += 1
                g[1] += d.amount_fen
                g[2] |= d.fallback_years
    order = {LATE: 0, AT_RISK: 1}
    return sorted((DeadlineWarning(k[0], k[1], k[2], k[3], k[4], k[5], n, fen, frozenset(fb))
                   for k, (n, fen, fb) in groups.items()),
                  key=lambda w: (order[w.severity], w.due, w.bank_id, w.batch_id, OBLIGATIONS.index(w.kind)))
