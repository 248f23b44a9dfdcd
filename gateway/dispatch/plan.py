"""Assign validated, not-yet-dispatched items to files: one bank and one batch per file, split by
the bank's limits (items and amount per file) [Art. 18-20]."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.calendar import WorkingDayCalendar
from gateway.config.model import Bank, Config
from gateway.db.engine import insert_rows
from gateway.db.models import Item, ItemEvent, OutboundFile, OutboundFileItem, ReconException
from gateway.dispatch.render import HELD_KIND
from gateway.timeutil import local
from reconciliation.lifecycle import VALIDATED


@dataclass(frozen=True)
class PlannedFile:
    file_id: int
    bank_id: str
    batch_id: int
    name: str
    item_count: int
    total_fen: int


def requested_execution_date(bank: Bank, now: dt.datetime, calendar: WorkingDayCalendar) -> dt.date:
    """Today if it is a working day and before the bank's cut-off (China time), else the next working day."""
    here = local(now)
    today = here.date()
    if calendar.is_workday(today) and here.time() < bank.cutoff:
        return today
    return calendar.add_working_days(today, 1).date


FETCH = 5000  # rows of the dispatchable-items query read at a time


def _last_states_validated(session: Session):
    """Items whose latest event is ``validated``, that are in no file yet and that rendering has
    not held out (their personal data failed its check; see ``gateway.dispatch.render``).

    Streamed 5,000 rows at a time (a server-side cursor on PostgreSQL): fetched whole, the rows of
    a million-item batch took 160 MB. Planning inserts the file links of rows already read while
    the rest are still to come; no row still to come can be affected, since each item is read once."""
    latest = (sa.select(ItemEvent.item_id, sa.func.max(ItemEvent.id).label("last"))
              .group_by(ItemEvent.item_id).subquery())
    held = sa.exists().where(ReconException.kind == HELD_KIND, ReconException.reference == Item.end_to_end_id)
    return (sa.select(Item.id, Item.batch_id, Item.bank_id, Item.amount_fen)
            .join(latest, latest.c.item_id == Item.id)
            .join(ItemEvent, ItemEvent.id == latest.c.last)
            .outerjoin(OutboundFileItem, OutboundFileItem.item_id == Item.id)
            .where(ItemEvent.state == VALIDATED, OutboundFileItem.item_id.is_(None), ~held)
            .order_by(Item.bank_id, Item.batch_id, Item.id)
            .execution_options(yield_per=FETCH))


def _msg_id(bank: Bank, now: dt.datetime, file_id: int) -> str:
    return f"YKT{local(now):%Y%m%d}{file_id:010d}"


def plan_files(session: Session, cfg: Config, *, now: dt.datetime, calendar: WorkingDayCalendar,
               bank_ids: set[str] | None = None) -> list[PlannedFile]:
    """Create ``planned`` files for every dispatchable item. The caller commits.

    An item can be in only one file ever (unique ``outbound_file_items.item_id``), so running this
    twice, or in two processes at once, can never put an item in two files: the second insert fails
    and its transaction rolls back.
    """
    planned: list[PlannedFile] = []
    current: dict | None = None
    links: list[tuple[int, int, int]] = []

    def close() -> None:
        nonlocal current
        if current is None:
            return
        f = current["file"]
        f.item_count, f.total_fen = current["count"], current["total"]
        session.flush()
        planned.append(PlannedFile(f.id, f.bank_id, f.batch_id, f.name, f.item_count, f.total_fen))
        current = None

    def flush_links() -> None:
        if links:
            insert_rows(session.connection(), OutboundFileItem.__table__, ("file_id", "seq_in_file", "item_id"), links)
            links.clear()

    for item_id, batch_id, bank_id, amount_fen in session.execute(_last_states_validated(session)):
        if bank_ids is not None and bank_id not in bank_ids:
            continue
        bank = cfg.banks.get(bank_id)
        if bank is None:
            continue  # a bank removed from config: its items wait, visibly, in the batch report
        max_fen = int(bank.limits.max_amount_per_file * 100)
        if amount_fen > max_fen:
            continue  # can never fit; surfaced by the batch report as outstanding
        if (current is None or current["key"] != (bank_id, batch_id)
                or current["count"] >= bank.limits.max_items_per_file
                or current["total"] + amount_fen > max_fen):
            flush_links()
            close()
            f = OutboundFile(bank_id=bank_id, batch_id=batch_id, msg_id="pending", name=f"pending-{item_id}",
                             item_count=0, total_fen=0, created_at=now,
                             requested_execution_date=requested_execution_date(bank, now, calendar),
                             state="planned", attempts=0)
            session.add(f)
            session.flush()
            f.msg_id = _msg_id(bank, now, f.id)
            f.name = f.msg_id + (".txt" if bank.layout_name else ".xml")
            current = {"key": (bank_id, batch_id), "file": f, "count": 0, "total": 0}
        current["count"] += 1
        current["total"] += amount_fen
        links.append((current["file"].id, current["count"], item_id))
        if len(links) >= 5000:
            flush_links()
    flush_links()
    close()
    return planned
