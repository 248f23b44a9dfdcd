"""Render a planned file into the durable outbox: the bank's format, signed with the bank's scheme,
written under a temporary name, fsync'd, then renamed. Only then is the file ``ready``."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path
from typing import Callable, Iterator

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formats.flatfile.writer import write_flat
from formats.iso20022.pain001 import write_pain001
from formats.model import CreditTransfer, PaymentHeader
from formats.money import from_fen
from formats.signature import get_scheme
from formats.signature.xmldsig import StreamingEnvelopedSigner
from gateway.config.model import Bank, Config
from gateway.db.models import Batch, Item, OutboundFile, OutboundFileItem
from gateway.keys import SigningMaterial, load_signing
from gateway.privacy import PiiVault

CHUNK = 1 << 16


def _transactions(session: Session, vault: PiiVault, file: OutboundFile, bank: Bank, remittance: str
                  ) -> Iterator[CreditTransfer]:
    q = (sa.select(Item.end_to_end_id, Item.amount_fen, Item.name_enc, Item.account_enc, Item.id_number_enc)
         .join(OutboundFileItem, OutboundFileItem.item_id == Item.id)
         .where(OutboundFileItem.file_id == file.id).order_by(OutboundFileItem.seq_in_file)
         .execution_options(yield_per=5000))
    for e2e, fen, name, acct, idn in session.execute(q):
        yield CreditTransfer(end_to_end_id=e2e, amount=from_fen(fen), creditor_name=vault.decrypt(name),
                             creditor_account=vault.decrypt(acct), creditor_bank_code=bank.bank_code,
                             remittance=remittance, id_number=vault.decrypt(idn))


def header_for(file: OutboundFile, bank: Bank, cfg: Config, batch: Batch) -> PaymentHeader:
    department = cfg.departments.get(batch.department_code)
    return PaymentHeader(
        message_id=file.msg_id, created_at=file.created_at.replace(tzinfo=dt.timezone.utc),
        payment_info_id=f"{file.msg_id}-1", requested_execution_date=file.requested_execution_date,
        initiating_party=department.name if department else batch.department_code,
        debtor_name=bank.disbursement_account_name, debtor_account=bank.disbursement_account_number,
        debtor_bank_code=bank.bank_code, number_of_transactions=file.item_count,
        control_sum=from_fen(file.total_fen))


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _durable_write(path: Path, data_writer) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as out:
        data_writer(out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def render_file(session: Session, cfg: Config, vault: PiiVault, file: OutboundFile, outbox: Path, *,
                signing: SigningMaterial | None = None) -> OutboundFile:
    """Write ``file`` (state ``planned``) into ``outbox/<bank>/`` and mark it ``ready``. The caller commits.

    Rendering is repeatable: a crash before the commit leaves a ``planned`` file that is simply
    rendered again (same items, same MsgId, same header time).
    """
    bank = cfg.banks[file.bank_id]
    batch = session.get(Batch, file.batch_id)
    policy = cfg.policies.get(batch.policy_code)
    remittance = f"{policy.name if policy else batch.policy_code} {batch.period}"
    signing = signing or load_signing(bank)
    header = header_for(file, bank, cfg, batch)
    directory = outbox / bank.id
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file.name
    txs = _transactions(session, vault, file, bank, remittance)

    if bank.layout_name:
        layout = cfg.layouts[bank.layout_name]
        _durable_write(path, lambda out: write_flat(out, layout, header, txs, unit_code=batch.department_code,
                                                    source=file.name))
    else:
        signer = StreamingEnvelopedSigner(signing.key, signing.cert) if signing.scheme == "xmldsig" else None
        _durable_write(path, lambda out: write_pain001(out, header, txs, signer=signer))

    sig_path = None
    if signing.detached_ext:
        scheme = get_scheme(signing.scheme)
        kw = {"signing_time": header.created_at} if signing.scheme == "cms" else {}
        signature = scheme.sign(_file_chunks(path), signing.key, signing.cert, **kw)
        sig_path = path.with_name(f"{path.name}.{signing.detached_ext}")
        _durable_write(sig_path, lambda out: out.write(signature))

    digest = hashlib.sha256()
    for chunk in _file_chunks(path):
        digest.update(chunk)
    file.sha256 = digest.hexdigest()
    file.path = str(path)
    file.signature_path = str(sig_path) if sig_path else None
    file.state = "ready"
    file.next_attempt_at = file.created_at
    session.flush()
    return file


def render_planned(session: Session, cfg: Config, vault: PiiVault, outbox: Path, *, limit: int | None = None,
                   signing_for: Callable[[Bank], SigningMaterial] = load_signing) -> list[OutboundFile]:
    """Render every ``planned`` file (oldest first)."""
    q = sa.select(OutboundFile).where(OutboundFile.state == "planned").order_by(OutboundFile.id)
    if limit:
        q = q.limit(limit)
    return [render_file(session, cfg, vault, f, outbox, signing=signing_for(cfg.banks[f.bank_id]))
            for f in session.scalars(q).all()]
