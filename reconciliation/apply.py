"""Match bank outcomes to items and record them as events; everything that does not match exactly
goes to the exceptions queue with its reason. Never drops a line, never crashes the run.

Idempotent: an outcome that repeats an item's current state changes nothing, so applying the same
report twice (or two overlapping reports) leaves the log as it was. Such an outcome may still state
the bank's booking date of that state (a camt.054 after the pain.002 that settled the item): the
first date stated is kept in ``item_bank_dates``, and the deadlines count from it. An exception
already in the queue for the same report, line, kind and reference is not written again (migration
0007 makes a second copy impossible); a report applied without a stored inbound file counts as one
anonymous report. Works in chunks with bulk look-ups so a million status lines reconcile in
bounded memory.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from itertools import islice
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formats.money import to_fen
from gateway.db.engine import in_values, insert_rows
from gateway.db.models import Item, ItemBankDate, ItemEvent, OutboundFile, OutboundFileItem, ReconException
from gateway.privacy import PiiVault
from reconciliation.lifecycle import (IllegalTransition, REJECTED_BY_VALIDATION, RETURNED, SENT, SETTLED, SUBMITTED,
                                      VALIDATED, check_transition)
from reconciliation.outcomes import BY_FILE_SEQ, FileOutcome, Outcome

CHUNK = 1000  # outcomes matched at a time: small enough that the report worker reads the next ones meanwhile
_EVENT_COLUMNS = ("item_id", "state", "at", "source", "reason_code", "reason_text", "inbound_file_id", "bank_date")

UNKNOWN_REFERENCE = "unknown_reference"
NEVER_SENT = "never_sent"
AMOUNT_MISMATCH = "amount_mismatch"
ACCOUNT_MISMATCH = "account_mismatch"
CONFLICTING_STATUS = "conflicting_status"
UNKNOWN_FILE = "unknown_file"
EXCEPTION_KINDS = (UNKNOWN_REFERENCE, NEVER_SENT, AMOUNT_MISMATCH, ACCOUNT_MISMATCH, CONFLICTING_STATUS, UNKNOWN_FILE)

EXPLAIN = {
    UNKNOWN_REFERENCE: ("银行回执中的编号对不上任何一笔发放", "the reference matches no item"),
    NEVER_SENT: ("银行回执了一笔从未发送给银行的发放", "report for an item that was never sent"),
    AMOUNT_MISMATCH: ("银行回执金额与发放金额不一致", "amount differs from the item's amount"),
    ACCOUNT_MISMATCH: ("银行回执账号与发放账号不一致", "account differs from the item's account"),
    CONFLICTING_STATUS: ("银行回执状态与已记录状态矛盾", "status conflicts with the status already recorded"),
    UNKNOWN_FILE: ("银行回执针对的文件不存在", "the report answers a file we never sent"),
}


@dataclass
class ApplyStats:
    lines: int = 0
    applied: int = 0
    unchanged: int = 0
    exceptions: int = 0  # lines of this report that are exceptions ...
    exceptions_known: int = 0  # ... of which already in the queue (an earlier application, or the same line twice)
    by_state: dict = field(default_factory=dict)
    by_exception: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"lines": self.lines, "applied": self.applied, "unchanged": self.unchanged,
                "exceptions": self.exceptions, "exceptions_known": self.exceptions_known,
                "by_state": self.by_state, "by_exception": self.by_exception}


class _Batchwriter:
    def __init__(self, session: Session, inbound_file_id: int | None, now: dt.datetime, stats: ApplyStats):
        self.session, self.file_id, self.now, self.stats = session, inbound_file_id, now, stats
        self.events: list[tuple] = []  # in _EVENT_COLUMNS order
        self.source = f"inbound:{inbound_file_id}" if inbound_file_id else "inbound"
        self.exceptions: list[dict] = []
        self.bank_dates: dict[tuple[int, str], dt.date] = {}

    def bank_date(self, item_id: int, state: str, day: dt.date) -> None:
        """The bank's booking date for a state the item is already in (kept once, the first stated)."""
        self.bank_dates.setdefault((item_id, state), day)

    def event(self, item_id: int, state: str, o) -> None:
        self.events.append((item_id, state, self.now, self.source, o.reason_code, o.reason_text, self.file_id,
                            getattr(o, "bank_date", None)))
        self.stats.applied += 1
        self.stats.by_state[state] = self.stats.by_state.get(state, 0) + 1

    def exception(self, kind: str, o, detail: dict) -> None:
        zh, en = EXPLAIN[kind]
        payload = {"zh": zh, "en": en, "state_reported": o.new_state, **detail}
        self.exceptions.append(dict(inbound_file_id=self.file_id, line=o.line,
                                    reference=(getattr(o, "reference", None) or getattr(o, "original_msg_id", None)),
                                    kind=kind, detail=json.dumps(payload, ensure_ascii=False, default=str),
                                    created_at=self.now, resolved=False))
        self.stats.exceptions += 1
        self.stats.by_exception[kind] = self.stats.by_exception.get(kind, 0) + 1

    def flush(self) -> None:
        conn = self.session.connection()  # driver executemany: no per-row bookkeeping for append-only rows
        if self.events:
            insert_rows(conn, ItemEvent.__table__, _EVENT_COLUMNS, self.events)
        new = self._not_yet_recorded(conn)
        if new:
            conn.execute(ReconException.__table__.insert(), new)
        if self.bank_dates:
            t = ItemBankDate.__table__
            known = {tuple(r) for r in conn.execute(sa.select(t.c.item_id, t.c.state).where(
                in_values(conn.dialect.name, t.c.item_id, {i for i, _s in self.bank_dates})))}
            insert_rows(conn, t, ("item_id", "state", "bank_date", "inbound_file_id", "recorded_at"),
                        [(i, st, day, self.file_id, self.now)
                         for (i, st), day in self.bank_dates.items() if (i, st) not in known])
        self.events.clear()
        self.exceptions.clear()
        self.bank_dates.clear()

    def _not_yet_recorded(self, conn) -> list[dict]:
        """The pending exceptions whose key (report, line, kind, reference) is not in the queue yet."""
        if not self.exceptions:
            return []

        def key(e: dict) -> tuple:
            return (-1 if e["line"] is None else e["line"], e["kind"], e["reference"] or "")

        t = ReconException.__table__
        key_cols = (sa.func.coalesce(t.c.line, -1), t.c.kind, sa.func.coalesce(t.c.reference, ""))
        # the expressions of the unique index of migration 0007, so the look-up uses it
        q = sa.select(*key_cols).where(sa.func.coalesce(t.c.inbound_file_id, 0) == (self.file_id or 0),
                                       in_values(conn.dialect.name, key_cols[0], {key(e)[0] for e in self.exceptions}))
        seen = {tuple(r) for r in conn.execute(q)}
        new = []
        for e in self.exceptions:
            k = key(e)
            if k in seen:
                self.stats.exceptions_known += 1
            else:
                seen.add(k)
                new.append(e)
        return new


def latest_states(session: Session, item_ids: Iterable[int]) -> dict[int, str]:
    """The current (latest-event) state of each item."""
    ids = list(item_ids)
    if not ids:
        return {}
    conn = _connection(session)
    last = (sa.select(ItemEvent.item_id, sa.func.max(ItemEvent.id).label("m"))
            .where(in_values(conn.dialect.name, ItemEvent.item_id, ids)).group_by(ItemEvent.item_id).subquery())
    rows = conn.execute(sa.select(ItemEvent.item_id, ItemEvent.state).join(last, ItemEvent.id == last.c.m))
    return dict(rows.all())


def _connection(session: Session):
    """The session's connection for Core look-ups, after the flush ``Session.execute`` would do."""
    if session.autoflush:
        session.flush()
    return session.connection()


def _resolve(session: Session, chunk: list[Outcome]) -> dict[tuple, tuple[int, int, str, int | None, str | None]]:
    """(by, msg_id, reference) -> (item_id, amount_fen, account_hash, file_id, file_state)."""
    out = {}
    e2e = {o.reference for o in chunk if o.by != BY_FILE_SEQ}
    if e2e:
        conn = _connection(session)
        q = (sa.select(Item.end_to_end_id, Item.id, Item.amount_fen, Item.account_hash, OutboundFile.id,
                       OutboundFile.state)
             .outerjoin(OutboundFileItem, OutboundFileItem.item_id == Item.id)
             .outerjoin(OutboundFile, OutboundFile.id == OutboundFileItem.file_id)
             .where(in_values(conn.dialect.name, Item.end_to_end_id, e2e)))
        for ref, *rest in conn.execute(q):
            out[("e2e", None, ref)] = tuple(rest)
    by_file: dict[str, set[int]] = {}
    for o in chunk:
        if o.by == BY_FILE_SEQ and o.original_msg_id and o.reference.isdigit():
            by_file.setdefault(o.original_msg_id, set()).add(int(o.reference))
    for msg_id, seqs in by_file.items():
        q = (sa.select(OutboundFileItem.seq_in_file, Item.id, Item.amount_fen, Item.account_hash, OutboundFile.id,
                       OutboundFile.state)
             .join(OutboundFile, OutboundFile.id == OutboundFileItem.file_id)
             .join(Item, Item.id == OutboundFileItem.item_id)
             .where(OutboundFile.msg_id == msg_id, OutboundFileItem.seq_in_file.in_(seqs)))
        for seq, *rest in session.execute(q):
            out[(BY_FILE_SEQ, msg_id, str(seq))] = tuple(rest)
    return out


def _file_outcome_items(session: Session, fo: FileOutcome) -> list[Outcome] | None:
    f = session.scalars(sa.select(OutboundFile).where(OutboundFile.msg_id == fo.original_msg_id)).first()
    if f is None:
        return None
    q = (sa.select(OutboundFileItem.seq_in_file).where(OutboundFileItem.file_id == f.id)
         .order_by(OutboundFileItem.seq_in_file))
    return [Outcome(fo.line, str(seq), fo.new_state, by=BY_FILE_SEQ, original_msg_id=fo.original_msg_id,
                    reason_code=fo.reason_code, reason_text=fo.reason_text) for seq in session.scalars(q)]


def apply_outcomes(session: Session, outcomes: Iterable[Outcome | FileOutcome], *, now: dt.datetime,
                   vault: PiiVault, inbound_file_id: int | None = None) -> ApplyStats:
    """Apply every outcome; the caller commits (one transaction per report keeps a report atomic)."""
    from gateway.dispatch.outbox import mark_delivered

    stats = ApplyStats()
    w = _Batchwriter(session, inbound_file_id, now, stats)

    def expanded() -> Iterable[Outcome]:
        for o in outcomes:
            if isinstance(o, FileOutcome):
                items = _file_outcome_items(session, o)
                if items is None:
                    stats.lines += 1
                    w.exception(UNKNOWN_FILE, o, {"original_msg_id": o.original_msg_id})
                    continue
                yield from items  # a whole-file answer counts once per item it covers
            else:
                yield o

    it = iter(expanded())
    while chunk := list(islice(it, CHUNK)):
        stats.lines += len(chunk)
        resolved = _resolve(session, chunk)
        item_ids = {r[0] for r in resolved.values()}
        states = latest_states(session, item_ids)
        # the bank answering proves delivery of a file whose delivery we had not yet recorded (crash window)
        for item_id, _amt, _acct, file_id, file_state in resolved.values():
            if file_state == "ready" and states.get(item_id) == VALIDATED:
                if mark_delivered(session, file_id, now=now):
                    for r in resolved.values():
                        if r[3] == file_id:
                            states[r[0]] = SENT
        for o in chunk:
            key = (BY_FILE_SEQ, o.original_msg_id, o.reference) if o.by == BY_FILE_SEQ else ("e2e", None, o.reference)
            hit = resolved.get(key)
            if hit is None:
                w.exception(UNKNOWN_REFERENCE, o, {"by": o.by, "original_msg_id": o.original_msg_id})
                continue
            item_id, amount_fen, account_hash, _file_id, _fs = hit
            current = states.get(item_id)
            if current in (None, SUBMITTED, VALIDATED, REJECTED_BY_VALIDATION):
                w.exception(NEVER_SENT, o, {"item_id": item_id, "current_state": current})
                continue
            if o.amount is not None and to_fen(o.amount) != amount_fen:
                w.exception(AMOUNT_MISMATCH, o, {"item_id": item_id, "expected_fen": amount_fen,
                                                 "reported_fen": to_fen(o.amount)})
                continue
            if o.account and vault.blind_index("account", o.account) != account_hash:
                w.exception(ACCOUNT_MISMATCH, o, {"item_id": item_id, "reported_account_last4": o.account[-4:]})
                continue
            try:
                changed = check_transition(current, o.new_state)
            except IllegalTransition as e:
                w.exception(CONFLICTING_STATUS, o, {"item_id": item_id, "current_state": current, "why": str(e)})
                continue
            if not changed:
                stats.unchanged += 1
                if o.bank_date is not None and o.new_state in (SETTLED, RETURNED):
                    w.bank_date(item_id, o.new_state, o.bank_date)  # e.g. camt.054 after pain.002 [Art. 20-22]
                continue
            w.event(item_id, o.new_state, o)
            states[item_id] = o.new_state
        w.flush()
    w.flush()
    return stats
