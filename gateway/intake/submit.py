"""``submit_roster``: an approved roster becomes an immutable batch, validated [Art. 15-16, 18].

Everything happens in one database transaction: the batch, its items (personal data encrypted,
with blind indexes), the ``submitted`` event, the validation findings and the resulting
``validated`` / ``rejected_by_validation`` events. A roster with any problem is refused whole
before anything is written; the same file cannot be submitted twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formats.money import to_fen
from gateway.config.model import Config, Policy
from gateway.db.models import Batch, Finding as FindingRow, Item, ItemEvent
from gateway.errors import YktError
from gateway.db.engine import insert_rows
from gateway.intake.roster import RosterRow, read_roster, reread_fields
from gateway.privacy import PiiVault
from gateway.validation.model import Candidate, Finding
from reconciliation.lifecycle import REJECTED_BY_VALIDATION, SUBMITTED, VALIDATED

CHUNK = 5000
# a submission of at least this many items refreshes PostgreSQL's statistics of the item tables
ANALYZE_AFTER = 10_000
ITEM_COLUMNS = ("id", "batch_id", "seq", "end_to_end_id", "unit_code", "bank_id", "amount_fen", "name_enc",
                "id_number_enc", "account_enc", "id_hash", "account_hash", "proxy_name_enc", "proxy_id_hash",
                "resubmission_of")
EVENT_COLUMNS = ("item_id", "state", "at", "source")
PERIOD = re.compile(r"(20\d\d)-(0[1-9]|1[0-2])")

Validator = Callable[..., Iterator[tuple[Candidate, list[Finding]]]]


class SubmissionRefused(YktError):
    """The submission is refused before anything is written (duplicate file, unknown policy …)."""


@dataclass(frozen=True)
class SubmissionResult:
    batch_id: int
    ref: str
    item_count: int
    total_fen: int
    validated: int
    rejected: int
    held_for_review: int
    findings: int


def end_to_end_id(batch_id: int, seq: int) -> str:
    """The reference that travels to the bank and back: 18 digits, unique, bank-safe."""
    return f"{batch_id:010d}{seq:08d}"


def _bank_lookup(cfg: Config, county: str) -> dict[str, str]:
    out = {}
    for b in cfg.banks_for_county(county):
        out[b.id] = b.id
        out[b.bank_code] = b.id
    return out


def _allocate_ids(session: Session, n: int) -> Iterator[int]:
    """``n`` fresh item ids, increasing. PostgreSQL: from the sequence (safe with concurrent writers),
    :data:`CHUNK` at a time as they are used (a million at once is a 31 MB result); SQLite: after the
    current maximum (the write transaction is already exclusive)."""
    if session.bind.dialect.name == "postgresql":
        left = n
        while left > 0:
            take = min(left, CHUNK)
            yield from session.execute(sa.text("SELECT nextval('items_id_seq') FROM generate_series(1, :n)"),
                                       {"n": take}).scalars().all()
            left -= take
    else:
        start = (session.execute(sa.select(sa.func.max(Item.id))).scalar() or 0) + 1
        yield from range(start, start + n)


def _refresh_statistics(conn) -> None:
    """``ANALYZE`` the tables a large batch has just grown (it samples 30,000 rows: 0.3 s at two million
    events). Autovacuum would do it within minutes, but the next dispatch may plan sooner: planning
    a million fresh items took 16 s on the stale statistics (the planner guessed 200 items and chose
    nested loops) and 9 s on fresh ones. Rows of this still-open transaction count as live, and the
    statistics commit or roll back with it."""
    conn.exec_driver_sql("ANALYZE items, item_events")


def _default_validator() -> Validator:
    from gateway.validation.engine import validate

    return validate


def submit_roster(session: Session, cfg: Config, vault: PiiVault, *, data: bytes, source_name: str,
                  policy_code: str, period: str, submitted_by: str, now: dt.datetime,
                  validator: Validator | None = None, corrects_batch_id: int | None = None,
                  resubmission_of: Mapping[int, int] | None = None,
                  progress: Callable[[int], None] | None = None) -> SubmissionResult:
    """Import, validate and record one roster as a batch. The caller commits the session.

    ``resubmission_of`` maps a roster row to the original item it corrects [Art. 22]; the link is
    written with the new item (items are immutable) and is unique, so an original is resubmitted once.
    """
    policy: Policy | None = cfg.policies.get(policy_code)
    if policy is None:
        raise SubmissionRefused(f"unknown policy {policy_code!r}", zh=f"政策清单中没有补贴项目 {policy_code}")
    if not PERIOD.fullmatch(period):
        raise SubmissionRefused(f"period must be YYYY-MM, got {period!r}", zh="发放期间格式应为 YYYY-MM")
    sha = hashlib.sha256(data).hexdigest()
    dup = session.execute(sa.select(Batch.ref).where(Batch.content_sha256 == sha, Batch.policy_code == policy_code,
                                                     Batch.period == period)).scalar()
    if dup:
        raise SubmissionRefused(f"{source_name}: this exact file was already submitted as batch {dup}",
                                zh=f"该名册已作为批次 {dup} 提交过，不能重复提交")
    department = cfg.departments[policy.department]
    banks = _bank_lookup(cfg, department.county)
    units = {u.code for u in cfg.units.values() if u.county == department.county}

    def rows() -> Iterator[RosterRow]:
        return read_roster(data, source=source_name, known_banks=banks, known_units=units)

    count, total = 0, 0
    for row in rows():  # first pass: everything is checked before anything is written
        count += 1
        total += to_fen(row.amount)

    ref = f"{policy_code}-{period}-{sha[:10]}"
    batch = Batch(ref=ref, policy_code=policy_code, period=period, county_code=department.county,
                  department_code=department.code, submitted_by=submitted_by, submitted_at=now,
                  source_name=Path(source_name).name, content_sha256=sha, item_count=count, total_fen=total,
                  corrects_batch_id=corrects_batch_id)
    session.add(batch)
    session.flush()
    ids = _allocate_ids(session, count)
    validate = validator or _default_validator()
    enc, bi = vault.encrypt, vault.blind_index
    # the blind indexes are computed once here, stored with the item and handed to the rule engine
    # with the candidate (it would otherwise compute them again); the second read of the roster
    # skips the checks the first one made
    candidates = (Candidate(row, name, idn, acct, amount, unit, bank, policy_code, period, pname, pid,
                            id_hash=bi("id", idn), account_hash=bi("account", acct), name_hash=bi("name", name),
                            proxy_id_hash=bi("id", pid) if pid else None)
                  for row, name, idn, acct, bank, amount, unit, pname, pid, _remark
                  in reread_fields(data, source=source_name, known_banks=banks, known_units=units))
    stats = {"validated": 0, "rejected": 0, "review": 0, "findings": 0}
    items: list[tuple] = []
    events: list[tuple] = []
    findings: list[dict] = []
    conn = session.connection()
    items_t, events_t = Item.__table__, ItemEvent.__table__

    def flush() -> None:
        if items:
            insert_rows(conn, items_t, ITEM_COLUMNS, items)
            insert_rows(conn, events_t, EVENT_COLUMNS, events)
        if findings:
            conn.execute(FindingRow.__table__.insert(), findings)
        if progress:
            progress(len(items))
        items.clear(), events.clear(), findings.clear()

    links = resubmission_of or {}
    batch_id = batch.id
    for cand, found in validate(candidates, policy=policy, config=cfg, session=session, vault=vault, now=now,
                                batch_id=batch_id):
        item_id = next(ids)
        seq = cand.seq
        e2e = end_to_end_id(batch_id, seq)  # each ciphertext is bound to its item by this
        items.append((item_id, batch_id, seq, e2e, cand.unit_code, cand.bank_id,
                      to_fen(cand.amount), enc(cand.name, "items", "name_enc", e2e),
                      enc(cand.id_number, "items", "id_number_enc", e2e), enc(cand.account, "items", "account_enc", e2e),
                      cand.id_hash or bi("id", cand.id_number), cand.account_hash or bi("account", cand.account),
                      enc(cand.proxy_name, "items", "proxy_name_enc", e2e) if cand.proxy_name else None,
                      (cand.proxy_id_hash or bi("id", cand.proxy_id_number)) if cand.proxy_id_number else None,
                      links.get(seq)))
        events.append((item_id, SUBMITTED, now, "intake"))
        if found:
            for f in found:
                findings.append(dict(batch_id=batch_id, item_id=item_id, code=f.code, severity=f.severity,
                                     message_zh=f.message_zh, message_en=f.message_en,
                                     evidence=json.dumps(f.evidence, ensure_ascii=False, default=str), at=now))
            stats["findings"] += len(found)
            if any(f.rejects for f in found):
                events.append((item_id, REJECTED_BY_VALIDATION, now, "validation"))
                stats["rejected"] += 1
            else:
                stats["review"] += 1  # held as submitted until a person clears the review findings
        else:
            events.append((item_id, VALIDATED, now, "validation"))
            stats["validated"] += 1
        if len(items) >= CHUNK:
            flush()
    flush()
    if count >= ANALYZE_AFTER and conn.dialect.name == "postgresql":
        _refresh_statistics(conn)
    from gateway import audit

    audit.append(session, actor=submitted_by, action="batch.submitted", subject=f"batch:{ref}",
                 detail={"items": count, "total_fen": total, "sha256": sha, "source_name": batch.source_name,
                         "validated": stats["validated"], "rejected": stats["rejected"], "review": stats["review"]},
                 now=now)
    return SubmissionResult(batch.id, ref, count, total, stats["validated"], stats["rejected"], stats["review"],
                            stats["findings"])
