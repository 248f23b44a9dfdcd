"""The durable outbox's bookkeeping: claiming due files with a lease, recording delivery and failures.

A claim sets a lease (``next_attempt_at = now + LEASE``) and counts the attempt, in a short
transaction using ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several gateway processes never
deliver the same file at the same time; if a process dies mid-delivery the lease expires and
another retries. Delivery is idempotent at the bank (same name, same bytes), so a retry after
a crash never makes a second payment. ``sent`` events are written once, with the delivery.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.db.models import ItemEvent, OutboundFile, OutboundFileItem
from reconciliation.lifecycle import SENT

LEASE = dt.timedelta(minutes=10)
BACKOFF_BASE = dt.timedelta(seconds=30)
BACKOFF_CAP = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Claimed:
    file_id: int
    bank_id: str
    name: str
    path: str
    signature_path: str | None
    sha256: str
    attempt: int


def backoff(attempt: int, rng: random.Random) -> dt.timedelta:
    """Exponential backoff with jitter: base·2^(attempt-1), capped, times a random factor in [0.5, 1]."""
    raw = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** max(0, attempt - 1)))
    return raw * (0.5 + rng.random() / 2)


def claim_due(session: Session, *, now: dt.datetime, limit: int = 20, bank_ids: set[str] | None = None
              ) -> list[Claimed]:
    """Lease up to ``limit`` ready files whose time has come. The caller commits at once."""
    q = (sa.select(OutboundFile).where(OutboundFile.state == "ready", OutboundFile.next_attempt_at <= now)
         .order_by(OutboundFile.next_attempt_at, OutboundFile.id).limit(limit))
    if bank_ids is not None:
        q = q.where(OutboundFile.bank_id.in_(bank_ids))
    if session.bind.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    out = []
    for f in session.scalars(q).all():
        f.attempts += 1
        f.next_attempt_at = now + LEASE
        out.append(Claimed(f.id, f.bank_id, f.name, f.path, f.signature_path, f.sha256, f.attempts))
    session.flush()
    return out


def release(session: Session, file_ids: list[int], *, now: dt.datetime) -> None:
    """Give back leases that were taken but not used (a clean shutdown): due again at once, the
    unused attempt not counted."""
    if file_ids:
        session.execute(sa.update(OutboundFile)
                        .where(OutboundFile.id.in_(file_ids), OutboundFile.state == "ready")
                        .values(next_attempt_at=now, attempts=OutboundFile.attempts - 1))


def mark_delivered(session: Session, file_id: int, *, now: dt.datetime) -> bool:
    """Record delivery and the items' ``sent`` events, once. Returns False if it was already recorded."""
    done = session.execute(sa.update(OutboundFile)
                           .where(OutboundFile.id == file_id, OutboundFile.state == "ready")
                           .values(state="delivered", delivered_at=now, last_error=None, next_attempt_at=None))
    if done.rowcount != 1:
        return False
    session.execute(sa.insert(ItemEvent).from_select(
        ["item_id", "state", "at", "source", "outbound_file_id"],
        sa.select(OutboundFileItem.item_id, sa.literal(SENT), sa.literal(now, sa.DateTime), sa.literal("dispatch"),
                  OutboundFileItem.file_id).where(OutboundFileItem.file_id == file_id)
        .order_by(OutboundFileItem.seq_in_file)))
    from gateway import audit

    f = session.get(OutboundFile, file_id)
    audit.append(session, actor="gateway", action="file.sent", subject=f"outbound:{f.id}",
                 detail={"bank": f.bank_id, "msg_id": f.msg_id, "items": f.item_count, "total_fen": f.total_fen,
                         "sha256": f.sha256},
                 now=now)
    return True


def mark_failed(session: Session, file_id: int, *, now: dt.datetime, error: str, retryable: bool,
                rng: random.Random) -> dt.datetime | None:
    """Record a failed attempt; returns when the next attempt is due (None if it will not be retried)."""
    f = session.get(OutboundFile, file_id)
    f.last_error = error[:2000]
    if not retryable:
        f.state = "failed"
        f.next_attempt_at = None
        return None
    f.next_attempt_at = now + backoff(f.attempts, rng)
    return f.next_attempt_at


def requeue(session: Session, file_id: int, *, now: dt.datetime) -> None:
    """An operator's decision to try a ``failed`` file again (e.g. after a key was fixed)."""
    f = session.get(OutboundFile, file_id)
    if f.state == "failed":
        f.state, f.next_attempt_at, f.attempts = "ready", now, 0
