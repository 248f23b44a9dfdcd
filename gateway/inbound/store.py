"""Store a bank's file before anything else looks at it: raw bytes (and signature) on disk, fsync'd,
and a row in ``inbound_files``. A file already stored (same bank, same bytes) is recognised."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.db.models import InboundFile

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def store_inbound(session: Session, *, bank_id: str, name: str, data: bytes, signature: bytes | None,
                  inbound_dir: Path, now: dt.datetime) -> tuple[InboundFile, bool]:
    """Keep the file; returns ``(row, is_new)``. The caller commits before acknowledging to the bank."""
    sha = hashlib.sha256(data).hexdigest()
    existing = session.scalars(sa.select(InboundFile).where(InboundFile.bank_id == bank_id,
                                                            InboundFile.sha256 == sha)).first()
    if existing is not None:
        return existing, False
    directory = inbound_dir / bank_id / f"{now:%Y%m%d}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{sha[:16]}-{_SAFE.sub('_', name)[:120]}"
    _write(path, data)
    if signature is not None:
        _write(path.with_name(path.name + ".sig"), signature)
    row = InboundFile(bank_id=bank_id, name=name[:255], sha256=sha, path=str(path), received_at=now,
                      status="stored")
    session.add(row)
    session.flush()
    from gateway import audit

    audit.append(session, actor=f"bank:{bank_id}", action="file.received", subject=f"inbound:{row.id}",
                 detail={"bank": bank_id, "sha256": sha}, now=now)
    return row, True


def stored_signature(row: InboundFile) -> bytes | None:
    p = Path(row.path + ".sig")
    return p.read_bytes() if p.exists() else None
