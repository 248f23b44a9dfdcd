"""Audit-test fixtures and helpers (imported by the tests, no conftest): an audit key, realistic
entries, and raw SQL run as a database administrator would."""

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway import audit
from gateway.audit import AuditKeys

T0 = dt.datetime(2026, 11, 2, 1, 30)


@pytest.fixture
def audit_keys(monkeypatch):
    line = AuditKeys.new_key_line("a1")
    monkeypatch.setenv(audit.KEY_ENV, line)
    return AuditKeys.from_text(line)


def fill(engine, keys, n=5):
    """``n`` realistic entries, one transaction each, as intake, dispatch and review would write them."""
    actions = [("batch.submitted", "batch:GDDL-2026-11-ab12cd34ef", {"items": 120, "total_fen": 18000000}),
               ("file.sent", "outbound:MSG0001", {"bank": "icbc-cq", "items": 120}),
               ("file.received", "inbound:7", {"bank": "icbc-cq", "kind": "pain.002"}),
               ("finding.cleared", "finding:42", {"code": "amount_over_standard", "note": "复核无误"}),
               ("account.approved", "account:9", {"bank": "icbc-cq", "kind": "card"})]
    with Session(engine) as s:
        for i in range(n):
            a, subj, d = actions[i % len(actions)]
            audit.append(s, actor=f"clerk:{i}", action=a, subject=subj, detail=d, now=T0 + dt.timedelta(minutes=i),
                         keys=keys)
            s.commit()


def as_db_admin(engine, *statements):
    """Raw SQL run the way a database administrator could: first switching the append-only trigger off."""
    with engine.begin() as c:
        if engine.dialect.name == "sqlite":
            c.execute(sa.text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            c.execute(sa.text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        else:
            c.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        for st in statements:
            c.execute(sa.text(st))
