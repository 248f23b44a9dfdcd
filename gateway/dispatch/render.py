"""Render a planned file into the durable outbox: the bank's format, signed with the bank's scheme,
written under a temporary name, fsync'd, then renamed. Only then is the file ``ready``.

Before a file is written, every item's personal data is opened in its own cell (the ciphertext is
bound to the item's EndToEndId) and the account number and ID number are checked against the
item's blind indexes, which the immutability triggers protect [Art. 15]: the check runs on the very
values written, as they are written. An item that fails is held out of the file, never paid: its link
to the file is removed (the file is renumbered and re-totalled), and it goes to the exceptions queue
(``recon_exceptions``, kind :data:`HELD_KIND`), the audit trail (``item.held``) and the log.
``plan_files`` never plans a held item again; a correction is a new batch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
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
from gateway import audit, logs
from gateway.config.model import Bank, Config
from gateway.db.models import Batch, Item, OutboundFile, OutboundFileItem, ReconException
from gateway.errors import YktError
from gateway.keys import SigningMaterial, load_signing
from gateway.privacy import PiiKeyError, PiiVault

CHUNK = 1 << 16
HELD_KIND = "item_data_mismatch"
log = logs.get("dispatch")


class ItemDataMismatch(YktError):
    """An item's personal data does not open in its cell or does not match its blind index;
    ``column`` names the ciphertext column, ``why`` says what failed (no personal data in either)."""

    def __init__(self, message: str, *, column: str, why: str) -> None:
        super().__init__(message)
        self.column, self.why = column, why


def _open_item(vault: PiiVault, e2e: str, name: bytes, acct: bytes, idn: bytes, account_hash: str, id_hash: str
               ) -> tuple[str, str, str]:
    """``(name, account, id number)`` of the item, each checked; raises :class:`ItemDataMismatch`."""
    plain = []
    for blob, col, hcol, kind, stored in ((name, "name_enc", None, None, None),
                                          (acct, "account_enc", "account_hash", "account", account_hash),
                                          (idn, "id_number_enc", "id_hash", "id", id_hash)):
        try:
            value = vault.decrypt(bytes(blob), "items", col, e2e)
        except PiiKeyError as e:
            raise ItemDataMismatch(str(e), column=col, why="does not decrypt in its own cell") from None
        if hcol and not hmac.compare_digest(vault.blind_index(kind, value), stored or ""):
            why = f"decrypts to a value that does not match {hcol}"
            raise ItemDataMismatch(f"items.{col} of end_to_end_id {e2e} {why} (ciphertext replaced after "
                                   "submission)", column=col, why=why)
        plain.append(value)
    return tuple(plain)  # type: ignore[return-value]


def _file_items(file: OutboundFile):
    return (sa.select(Item.id, Item.end_to_end_id, Item.amount_fen, Item.name_enc, Item.account_enc,
                      Item.id_number_enc, Item.account_hash, Item.id_hash)
            .join(OutboundFileItem, OutboundFileItem.item_id == Item.id)
            .where(OutboundFileItem.file_id == file.id).order_by(OutboundFileItem.seq_in_file)
            .execution_options(yield_per=5000))


def _transactions(session: Session, vault: PiiVault, file: OutboundFile, bank: Bank, remittance: str
                  ) -> Iterator[CreditTransfer]:
    for _id, e2e, fen, name, acct, idn, account_hash, id_hash in session.execute(_file_items(file)):
        name, acct, idn = _open_item(vault, e2e, name, acct, idn, account_hash, id_hash)
        yield CreditTransfer(end_to_end_id=e2e, amount=from_fen(fen), creditor_name=name,
                             creditor_account=acct, creditor_bank_code=bank.bank_code,
                             remittance=remittance, id_number=idn)


def hold_out_mismatched(session: Session, vault: PiiVault, file: OutboundFile, *, now: dt.datetime
                        ) -> list[tuple[int, str, ItemDataMismatch]]:
    """Remove from ``file`` every item whose personal data fails :func:`_open_item`; returns
    ``(item id, end-to-end id, problem)`` for each. The file keeps the others, renumbered 1..n with
    its count and total recomputed; each held item is recorded in ``recon_exceptions`` (kind
    :data:`HELD_KIND`, reference = its EndToEndId), the audit trail and the log. The caller commits."""
    keep, held = [], []
    for item_id, e2e, fen, name, acct, idn, account_hash, id_hash in session.execute(_file_items(file)):
        try:
            _open_item(vault, e2e, name, acct, idn, account_hash, id_hash)
            keep.append((item_id, fen))
        except ItemDataMismatch as e:
            held.append((item_id, e2e, e))
    if not held:
        return held
    session.execute(sa.delete(OutboundFileItem).where(OutboundFileItem.file_id == file.id))
    if keep:
        session.execute(sa.insert(OutboundFileItem), [{"file_id": file.id, "seq_in_file": n, "item_id": item_id}
                                                      for n, (item_id, _fen) in enumerate(keep, 1)])
    file.item_count, file.total_fen = len(keep), sum(fen for _id, fen in keep)
    for item_id, e2e, problem in held:
        message = f"outbound file {file.name}: item {item_id} ({e2e}) held out, not paid: {problem}"
        detail = {"item_id": item_id, "file": file.name, "column": problem.column, "en": message,
                  "zh": f"发放文件 {file.name}：明细 {e2e} 的个人信息与提交时不符（{problem.column}），已暂扣，不予发放"}
        session.add(ReconException(reference=e2e, kind=HELD_KIND, detail=json.dumps(detail, ensure_ascii=False),
                                   created_at=now))
        # (an EndToEndId is 18 digits, which the audit trail would take for a card number: the item id it is)
        audit.append(session, actor="gateway", action="item.held", subject=f"item:{item_id}",
                     detail={"file": file.msg_id, "column": problem.column, "why": problem.why}, now=now)
        log.error(message, extra={"event": "dispatch.item_held", "item_id": item_id, "end_to_end_id": e2e,
                                  "file": file.name})
    session.flush()
    return held


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
    try:
        with tmp.open("wb") as out:
            data_writer(out)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def _write_payment_file(session: Session, cfg: Config, vault: PiiVault, file: OutboundFile, bank: Bank,
                        batch: Batch, signing: SigningMaterial, outbox: Path) -> tuple[Path, PaymentHeader]:
    """Write the payment file itself, each item checked as it is read (:func:`_open_item`). Raises
    :class:`ItemDataMismatch` at the first item that fails, leaving no file behind."""
    policy = cfg.policies.get(batch.policy_code)
    remittance = f"{policy.name if policy else batch.policy_code} {batch.period}"
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
    return path, header


def render_file(session: Session, cfg: Config, vault: PiiVault, file: OutboundFile, outbox: Path, *,
                signing: SigningMaterial | None = None, now: dt.datetime | None = None) -> OutboundFile:
    """Write ``file`` (state ``planned``) into ``outbox/<bank>/`` and mark it ``ready``. The caller commits.

    Every item's personal data is checked as the file is written; if any fails, the items that fail
    are held out (:func:`hold_out_mismatched`) and the rest written; a file left with no item becomes
    ``failed`` and is not written.

    Rendering is repeatable: a crash before the commit leaves a ``planned`` file that is simply
    rendered again (same items, same MsgId, same header time).
    """
    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    bank = cfg.banks[file.bank_id]
    batch = session.get(Batch, file.batch_id)
    signing = signing or load_signing(bank)
    try:
        path, header = _write_payment_file(session, cfg, vault, file, bank, batch, signing, outbox)
    except ItemDataMismatch:
        # the rare case: take out every item that fails, then write what is left
        held = hold_out_mismatched(session, vault, file, now=now)
        if not file.item_count:
            file.state, file.next_attempt_at = "failed", None
            file.last_error = ("every item held out (personal data failed its check): "
                               + ", ".join(e2e for _id, e2e, _problem in held))
            session.flush()
            return file
        path, header = _write_payment_file(session, cfg, vault, file, bank, batch, signing, outbox)

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
                   signing_for: Callable[[Bank], SigningMaterial] = load_signing,
                   now: dt.datetime | None = None) -> list[OutboundFile]:
    """Render every ``planned`` file (oldest first); see :func:`render_file`."""
    q = sa.select(OutboundFile).where(OutboundFile.state == "planned").order_by(OutboundFile.id)
    if limit:
        q = q.limit(limit)
    return [render_file(session, cfg, vault, f, outbox, signing=signing_for(cfg.banks[f.bank_id]), now=now)
            for f in session.scalars(q).all()]
