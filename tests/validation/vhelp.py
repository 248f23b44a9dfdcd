"""Realistic people, cards and earlier batches for the rule tests (Chongqing: 奉节 500236, 秀山 500241)."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import sqlalchemy as sa
from stdnum.cn import ric

from gateway.admin.models import AccountVerification
from gateway.db.models import Batch, Item, ItemEvent
from gateway.validation.checks import luhn_ok
from gateway.validation.model import Candidate

NOW = dt.datetime(2026, 11, 2, 9, 30)
PATHS = {"validated": ("submitted", "validated"), "settled": ("submitted", "validated", "sent", "settled"),
         "rejected_by_bank": ("submitted", "validated", "sent", "rejected_by_bank"),
         "rejected_by_validation": ("submitted", "rejected_by_validation")}
_serial = itertools.count(100)


def rid(region: str = "500236", birth: str = "19650312", seq: str | None = None) -> str:
    """A resident ID with a correct check digit."""
    body = region + birth + (seq or f"{next(_serial) % 1000:03d}")
    return body + ric.calc_check_digit(body + "0")


def card(prefix: str = "621700", length: int = 19, n: int | None = None) -> str:
    """A UnionPay-like card number that passes the Luhn check."""
    mid = f"{(n if n is not None else next(_serial)):0{length - len(prefix) - 1}d}"
    for d in "0123456789":
        if luhn_ok(prefix + mid + d):
            return prefix + mid + d
    raise AssertionError


def cand(seq=1, name="张三", id_number=None, account=None, amount="800.00", policy="DB", period="2026-11",
         bank="cqrcb-fj", unit="500236101", **kw) -> Candidate:
    return Candidate(seq, name, id_number or rid(), account or card(), Decimal(amount), unit, bank, policy, period, **kw)


def earlier_batch(session, vault, policy: str, period: str, people: list[tuple[str, str, str]], *,
                  ref: str | None = None, state: str = "validated") -> int:
    """Store an earlier batch with items for (name, id_number, account); returns its id."""
    ref = ref or f"{policy}-{period}-{next(_serial)}"
    bid = session.execute(sa.insert(Batch).returning(Batch.id), [dict(
        ref=ref, policy_code=policy, period=period, county_code="500236", department_code="FJ-MZ",
        submitted_by="test", submitted_at=NOW, source_name="r.csv", content_sha256=ref.ljust(64, "0")[:64],
        item_count=len(people), total_fen=80000 * len(people))]).scalar_one()
    for i, (name, idn, acct) in enumerate(people, 1):
        e2e = f"{ref[:20]}{i:08d}"
        iid = session.execute(sa.insert(Item).returning(Item.id), [dict(
            batch_id=bid, seq=i, end_to_end_id=e2e, unit_code="500236101", bank_id="cqrcb-fj",
            amount_fen=80000, name_enc=vault.encrypt(name, "items", "name_enc", e2e),
            id_number_enc=vault.encrypt(idn, "items", "id_number_enc", e2e),
            account_enc=vault.encrypt(acct, "items", "account_enc", e2e), id_hash=vault.blind_index("id", idn),
            account_hash=vault.blind_index("account", acct))]).scalar_one()
        for st in PATHS[state]:  # the item lifecycle is guarded by the database (migration 0005)
            session.execute(sa.insert(ItemEvent), [dict(item_id=iid, state=st, at=NOW, source="test")])
    return bid


def verified(session, vault, c: Candidate, status: str = "ok", *, code=None, text=None,
             expires: dt.datetime = NOW + dt.timedelta(days=30)) -> None:
    """Put a bank answer for ``c`` in the verification cache."""
    session.execute(sa.insert(AccountVerification), [dict(
        account_hash=vault.blind_index("account", c.account), id_hash=vault.blind_index("id", c.id_number),
        name_hash=vault.blind_index("name", c.name), bank_id=c.bank_id or "cqrcb-fj", status=status,
        reason_code=code, reason_text=text, checked_at=NOW, expires_at=expires)])
