"""Builders for the compliance tests (imported by name, not through conftest): submit a roster, dispatch it with the real planner and the
real delivery bookkeeping at a chosen instant, record funding and bank answers at chosen instants."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools

import sqlalchemy as sa
from sqlalchemy.orm import Session


from gateway.calendar import DEFAULT_CALENDAR_DIR, WorkingDayCalendar
from gateway.db.models import Batch, Funding, InboundFile, Item, OutboundFile
from gateway.dispatch.outbox import mark_delivered
from gateway.dispatch.plan import plan_files
from gateway.intake.submit import submit_roster
from gateway.privacy import PiiVault
from gateway.timeutil import utc_from_local
from tests.support.rosters import csv_bytes, rows

CAL = WorkingDayCalendar.from_dir(DEFAULT_CALENDAR_DIR)
_serial = itertools.count(1)
_period = itertools.count(1)
KEY_LINE = PiiVault.new_key_line("k1")


def china(y, m, d, hh=9, mm=0) -> dt.datetime:
    """A China local time as the naive-UTC instant the database stores."""
    return utc_from_local(dt.date(y, m, d), dt.time(hh, mm))


def passing(cands, **kw):
    for c in cands:
        yield c, []


def rejecting(seqs):
    from gateway.validation.model import Finding

    def validator(cands, **kw):
        for c in cands:
            yield c, ([Finding(c.seq, "TEST_REJECT", "reject", "测试拒绝", "test reject", {})] if c.seq in seqs else [])
    return validator


def submit(engine, cfg, vault, *, n=3, bank="icbc-cq", now, policy="GDDL", body=None, validator=passing):
    body = body or rows(n, bank=bank)
    with Session(engine) as s, s.begin():
        period = f"2026-{next(_period) % 12 + 1:02d}"  # the same roster may be submitted again in a test
        r = submit_roster(s, cfg, vault, data=csv_bytes(body), source_name="r.csv", policy_code=policy,
                          period=period, submitted_by="clerk", now=now, validator=validator)
    return r.batch_id


def dispatch(engine, cfg, *, now) -> list[int]:
    """The real planner and the real delivery record; the rendering/transport step is skipped."""
    with Session(engine) as s, s.begin():
        planned = plan_files(s, cfg, now=now, calendar=CAL)
        for p in planned:
            s.execute(sa.update(OutboundFile).where(OutboundFile.id == p.file_id).values(state="ready"))
            mark_delivered(s, p.file_id, now=now)
    return [p.file_id for p in planned]


def item_ids(engine, batch_id) -> list[int]:
    with Session(engine) as s:
        return list(s.scalars(sa.select(Item.id).where(Item.batch_id == batch_id).order_by(Item.seq)))


def fund(engine, *, batch_id, bank="icbc-cq", at, fen=None, value_date=None):
    with Session(engine) as s, s.begin():
        if fen is None:
            fen = s.scalar(sa.select(Batch.total_fen).where(Batch.id == batch_id))
        s.add(Funding(bank_id=bank, batch_id=batch_id, amount_fen=fen, received_at=at,
                      value_date=value_date or (at + dt.timedelta(hours=8)).date(), reference=f"GK{next(_serial)}",
                      source="test"))


def report(engine, ids, state, *, received, bank_date=None, bank="icbc-cq", reason=None):
    """A bank report received at ``received`` (naive UTC) recording ``state`` for ``ids``."""
    with Session(engine) as s, s.begin():
        f = InboundFile(bank_id=bank, name=f"r{next(_serial)}.xml", sha256=hashlib.sha256(str(next(_serial)).encode())
                        .hexdigest(), path="/dev/null", received_at=received, kind="test", status="applied")
        s.add(f)
        s.flush()
        events = sa.Table("item_events", sa.MetaData(), autoload_with=s.connection())  # with bank_date (0005)
        s.execute(sa.insert(events), [dict(item_id=i, state=state, at=received, bank_date=bank_date,
                                            inbound_file_id=f.id, source=f"inbound:{f.id}", reason_code=reason)
                                       for i in ids])
