"""Verify, parse and apply one stored bank file. A file that cannot be verified or parsed is kept,
marked ``refused`` with the reason, and shown in the exceptions queue; nothing is applied from it."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path

from sqlalchemy.orm import Session

from formats.errors import FormatError
from formats.flatfile.reader import open_flat
from formats.iso20022.detect import detect
from formats.signature import get_scheme
from gateway import audit
from gateway.config.model import Config
from gateway.db.models import InboundFile, ReconException
from gateway.inbound import report_worker
from gateway.inbound.store import stored_signature
from gateway.keys import load_bank_pin
from gateway.privacy import PiiVault
from reconciliation.apply import ApplyStats, apply_outcomes
from reconciliation.outcomes import from_flat_results

MSG_ID = re.compile(r"YKT\d{18}")


class InboundRefused(Exception):
    pass


def _verified_content(bank, data: bytes, signature: bytes | None, source: str, pin: bytes) -> bytes:
    scheme = get_scheme(bank.signature)
    if scheme.kind == "enveloped":
        if bank.layout_name:
            raise InboundRefused(f"{source}: flat files cannot carry an enveloped XML signature; check the bank's config")
        scheme.verify(data, pin, source=source)
        # verify_document accepts only one signature, in SplmtryData/Envlp, over the whole document
        # (Reference URI=""), so the document as received is exactly what was signed plus the signature;
        # it is parsed as received because the XSD needs the Envlp content.
        return data
    scheme.verify([data], signature, pin, source=source)
    return data


def _outcomes(cfg: Config, bank, name: str, content: bytes):
    kind = detect(content[:4096])
    source = name
    if kind.startswith(report_worker.KINDS):
        return kind, report_worker.WORKER.outcomes(kind, content, source)  # a long one is read beside the apply
    if kind == "flatfile" and bank.layout_name:
        layout = cfg.layouts[bank.layout_name]
        m = MSG_ID.search(name)
        if m is None:
            raise InboundRefused(f"{source}: a result file's name must contain the MsgId it answers (YKT…)")
        reader = open_flat(io.BytesIO(content), layout.result, source=source, reasons=cfg.reason_codes)
        return f"flat:{bank.layout_name}", from_flat_results(reader, original_msg_id=m.group(0), key=layout.result.key)
    raise InboundRefused(f"{source}: not a report this bank sends (detected {kind!r})")


def process_inbound(session: Session, cfg: Config, row: InboundFile, *, vault: PiiVault, now: dt.datetime,
                    pin: bytes | None = None) -> ApplyStats | None:
    """Verify the stored file against the bank's pinned key, parse it and apply it, in the caller's
    transaction. Returns the statistics, or None if the file was refused (reason on the row)."""
    bank = cfg.banks[row.bank_id]
    data = Path(row.path).read_bytes()
    try:
        pin = pin if pin is not None else load_bank_pin(bank)
        content = _verified_content(bank, data, stored_signature(row), row.name, pin)
        kind, outcomes = _outcomes(cfg, bank, row.name, content)
        row.kind = kind
        with session.begin_nested():
            stats = apply_outcomes(session, outcomes, now=now, vault=vault, inbound_file_id=row.id)
    except (FormatError, InboundRefused) as e:
        row.status, row.error = "refused", str(e)[:2000]
        audit.append(session, actor="gateway", action="file.refused", subject=f"inbound:{row.id}",
                     detail={"bank": row.bank_id, "reason": type(e).__name__}, now=now)
        session.add(ReconException(inbound_file_id=row.id, line=getattr(e, "line", None), reference=row.name[:64],
                                   kind="refused_file", created_at=now, resolved=False,
                                   detail=json.dumps({"zh": "银行文件未通过验签或无法解析，已保存原件待处理",
                                                      "en": "bank file refused: signature or format", "error": str(e)},
                                                     ensure_ascii=False)))
        return None
    row.status = "applied"
    row.error = None
    audit.append(session, actor="gateway", action="recon.applied", subject=f"inbound:{row.id}",
                 detail={"bank": row.bank_id, "kind": row.kind, "applied": stats.applied,
                         "exceptions": stats.exceptions}, now=now)
    return stats
