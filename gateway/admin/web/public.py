"""The self-service query 自助查询 [Art. 28-29]: a person gives name and resident ID number and sees
their own payments, masked. Nothing else: no partial matches, no hint whether the ID exists, the
same answer for "no such person" and "name does not match".

The lookup goes by the ID's blind index and then compares the decrypted name, so the query never
decrypts anybody else's data beyond the rows with that very ID number.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.db.models import Batch, Item, ItemEvent
from gateway.privacy import PiiVault, mask_account, mask_id, mask_name
from gateway.admin.web.views import STATE_ZH, _plugin, yuan

MAX_ROWS = 100


def _norm_name(name: str) -> str:
    return "".join(name.split())


def own_payments(session: Session, cfg, vault: PiiVault, *, name: str, id_number: str) -> list[dict]:
    """The payments to the person with exactly this name and ID number, newest first, masked.

    An empty list both when nobody has that ID and when the name does not match. Uses
    ``gateway.admin.disclosure.self_service_query`` instead when that module provides it.
    """
    plugged = _plugin("gateway.admin.disclosure", "self_service_query")
    if plugged is not None:
        return list(plugged(session, cfg, vault, name=name, id_number=id_number))
    name, id_number = _norm_name(name), id_number.strip().upper()
    if not name or not id_number or len(id_number) > 32 or len(name) > 64:
        return []
    rows = session.execute(sa.select(Item, Batch).join(Batch, Batch.id == Item.batch_id)
                           .where(Item.id_hash == vault.blind_index("id", id_number))
                           .order_by(Item.id.desc()).limit(MAX_ROWS)).all()
    mine = [(it, b) for it, b in rows if _norm_name(vault.decrypt(it.name_enc)) == name]
    if not mine:
        return []
    last = (sa.select(ItemEvent.item_id, sa.func.max(ItemEvent.id).label("m"))
            .where(ItemEvent.item_id.in_([it.id for it, _ in mine])).group_by(ItemEvent.item_id).subquery())
    events = {e.item_id: e for e in session.scalars(sa.select(ItemEvent).join(last, ItemEvent.id == last.c.m))}
    out = []
    for it, b in mine:
        ev = events.get(it.id)
        policy = cfg.policies.get(b.policy_code)
        bank = cfg.banks.get(it.bank_id or "")
        out.append({"policy": policy.name if policy else b.policy_code, "period": b.period,
                    "amount": yuan(it.amount_fen), "state": ev.state if ev else None,
                    "state_zh": STATE_ZH.get(ev.state, "") if ev else "", "date": ev.at.date().isoformat() if ev else "",
                    "bank": bank.name if bank else "", "name": mask_name(name), "id_number": mask_id(id_number),
                    "account": mask_account(vault.decrypt(it.account_enc)),
                    "hotline": policy.hotline if policy else ""})
    return out
