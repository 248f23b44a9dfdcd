"""The batch proof: sent = settled + rejected + returned + outstanding, in count and in amount.

"Sent" is counted independently of the outcome states (from the ``sent`` events written at
delivery), and every sent item is then classified by its current state; the two sides must
agree, or the batch is flagged. Amounts are integer fen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formats.money import from_fen
from gateway.db.models import Batch, Item, ItemEvent
from reconciliation.lifecycle import (ACCEPTED, REJECTED_BY_BANK, REJECTED_BY_VALIDATION, RETURNED, SENT, SETTLED,
                                      SUBMITTED, VALIDATED)

BUCKETS = {SETTLED: "settled", REJECTED_BY_BANK: "rejected", RETURNED: "returned", SENT: "outstanding",
           ACCEPTED: "outstanding"}


@dataclass
class Tally:
    count: int = 0
    fen: int = 0

    def add(self, fen: int) -> None:
        self.count += 1
        self.fen += fen

    def as_dict(self) -> dict:
        return {"count": self.count, "amount": str(from_fen(self.fen))}


@dataclass
class BatchProof:
    batch_id: int
    ref: str
    submitted: Tally = field(default_factory=Tally)
    rejected_by_validation: Tally = field(default_factory=Tally)
    held_for_review: Tally = field(default_factory=Tally)
    awaiting_dispatch: Tally = field(default_factory=Tally)
    sent: Tally = field(default_factory=Tally)
    settled: Tally = field(default_factory=Tally)
    rejected: Tally = field(default_factory=Tally)
    returned: Tally = field(default_factory=Tally)
    outstanding: Tally = field(default_factory=Tally)
    anomalies: list[str] = field(default_factory=list)

    @property
    def balances(self) -> bool:
        parts = (self.settled, self.rejected, self.returned, self.outstanding)
        return (not self.anomalies and self.sent.count == sum(p.count for p in parts)
                and self.sent.fen == sum(p.fen for p in parts))

    def as_dict(self) -> dict:
        keys = ("submitted", "rejected_by_validation", "held_for_review", "awaiting_dispatch", "sent", "settled",
                "rejected", "returned", "outstanding")
        return {"batch_id": self.batch_id, "ref": self.ref, "balances": self.balances, "anomalies": self.anomalies,
                **{k: getattr(self, k).as_dict() for k in keys}}


def batch_proof(session: Session, batch_id: int) -> BatchProof:
    batch = session.get(Batch, batch_id)
    proof = BatchProof(batch_id, batch.ref)
    last = (sa.select(ItemEvent.item_id, sa.func.max(ItemEvent.id).label("m"))
            .join(Item, Item.id == ItemEvent.item_id).where(Item.batch_id == batch_id)
            .group_by(ItemEvent.item_id).subquery())
    was_sent = (sa.select(ItemEvent.item_id).join(Item, Item.id == ItemEvent.item_id)
                .where(Item.batch_id == batch_id, ItemEvent.state == SENT).distinct().subquery())
    q = (sa.select(Item.id, Item.amount_fen, ItemEvent.state, was_sent.c.item_id)
         .join(last, last.c.item_id == Item.id).join(ItemEvent, ItemEvent.id == last.c.m)
         .outerjoin(was_sent, was_sent.c.item_id == Item.id)
         .where(Item.batch_id == batch_id).execution_options(yield_per=10000))
    for item_id, fen, state, sent_id in session.execute(q):
        proof.submitted.add(fen)
        if sent_id is not None:
            proof.sent.add(fen)
            bucket = BUCKETS.get(state)
            if bucket is None:
                proof.anomalies.append(f"item {item_id} was sent but is now {state!r}")
            else:
                getattr(proof, bucket).add(fen)
        elif state == REJECTED_BY_VALIDATION:
            proof.rejected_by_validation.add(fen)
        elif state == SUBMITTED:
            proof.held_for_review.add(fen)
        elif state == VALIDATED:
            proof.awaiting_dispatch.add(fen)
        else:
            proof.anomalies.append(f"item {item_id} is {state!r} but was never sent")
    if proof.submitted.count != batch.item_count or proof.submitted.fen != batch.total_fen:
        proof.anomalies.append(f"batch declares {batch.item_count} items / {batch.total_fen} fen but holds "
                               f"{proof.submitted.count} / {proof.submitted.fen}")
    return proof
