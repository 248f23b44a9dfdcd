"""The tables. Money is integer fen (``BigInteger``); times are UTC, stored naive.

Immutable by database trigger (Art. 15): ``batches``, ``items``, ``item_events``, ``findings``.
Nothing in them is ever updated or deleted; an item's state is derived from its events, and a
correction is a new batch whose items point at the originals (``resubmission_of``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (BigInteger, Boolean, Date, DateTime, ForeignKey, Index, Integer, LargeBinary, String,
                        Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


IMMUTABLE_TABLES = ("batches", "items", "item_events", "findings")


class Batch(Base):
    """An approved roster for one policy and period, as submitted by a department [Art. 15-16]."""

    __tablename__ = "batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(40), unique=True)
    policy_code: Mapped[str] = mapped_column(String(16), index=True)
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    county_code: Mapped[str] = mapped_column(String(6))
    department_code: Mapped[str] = mapped_column(String(32))
    submitted_by: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime)
    source_name: Mapped[str] = mapped_column(String(255))
    content_sha256: Mapped[str] = mapped_column(String(64), index=True)
    item_count: Mapped[int] = mapped_column(Integer)
    total_fen: Mapped[int] = mapped_column(BigInteger)
    corrects_batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), nullable=True)


class Item(Base):
    """One payment to one beneficiary. Personal data is stored encrypted (``*_enc``) with a keyed
    hash (``*_hash``) for lookups and duplicate checks."""

    __tablename__ = "items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # row number in the roster
    end_to_end_id: Mapped[str] = mapped_column(String(35), unique=True)
    unit_code: Mapped[str] = mapped_column(String(32))
    bank_id: Mapped[str | None] = mapped_column(String(32), index=True, nullable=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    account_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_hash: Mapped[str] = mapped_column(String(64), index=True)
    account_hash: Mapped[str] = mapped_column(String(64), index=True)
    proxy_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    proxy_id_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resubmission_of: Mapped[int | None] = mapped_column(ForeignKey("items.id"), unique=True, nullable=True)
    __table_args__ = (UniqueConstraint("batch_id", "seq"),)


class ItemEvent(Base):
    """Append-only log from which an item's state is derived."""

    __tablename__ = "item_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    state: Mapped[str] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    source: Mapped[str] = mapped_column(String(64))  # validation | dispatch | inbound:<file id> | operator:<who>
    reason_code: Mapped[str | None] = mapped_column(String(8), nullable=True)
    reason_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    outbound_file_id: Mapped[int | None] = mapped_column(ForeignKey("outbound_files.id"), nullable=True)
    inbound_file_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_files.id"), nullable=True)
    bank_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)  # the bank's own booking date, if stated
    __table_args__ = (Index("ix_item_events_item", "item_id", "id"),)


class ItemBankDate(Base):
    """A bank's booking date for an item's credit (``settled``) or return, stated by a report that
    changed nothing else: a camt.054/053 after a pain.002 had already settled the item. Append-only
    (migration 0010); the first date stated per item and state is kept."""

    __tablename__ = "item_bank_dates"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(32), primary_key=True)
    bank_date: Mapped[dt.date] = mapped_column(Date)
    inbound_file_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_files.id"), nullable=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Finding(Base):
    """A validation finding on an item [Art. 18]: code, severity (reject/review), bilingual message."""

    __tablename__ = "findings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), index=True, nullable=True)
    code: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(8))
    message_zh: Mapped[str] = mapped_column(Text)
    message_en: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON
    at: Mapped[dt.datetime] = mapped_column(DateTime)


class OutboundFile(Base):
    """A file for one bank and one batch, delivered exactly once (by name = MsgId, and hash).

    ``planned`` (items assigned, nothing on disk yet) -> ``ready`` (rendered, signed, in the
    durable outbox; ``sha256`` known) -> ``delivered``; or ``failed`` after a non-retryable error.
    """

    __tablename__ = "outbound_files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[str] = mapped_column(String(32), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    msg_id: Mapped[str] = mapped_column(String(35), unique=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    sha256: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    path: Mapped[str | None] = mapped_column(String(512), nullable=True)
    signature_path: Mapped[str | None] = mapped_column(String(512), nullable=True)
    item_count: Mapped[int] = mapped_column(Integer)
    total_fen: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    requested_execution_date: Mapped[dt.date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), index=True)  # planned | ready | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class OutboundFileItem(Base):
    """Which items a file carries, and in what order. An item is in at most one file, ever."""

    __tablename__ = "outbound_file_items"
    file_id: Mapped[int] = mapped_column(ForeignKey("outbound_files.id"), primary_key=True)
    seq_in_file: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), unique=True)


class InboundFile(Base):
    """Every raw file a bank sent, stored before it is parsed; never lost even if unreadable."""

    __tablename__ = "inbound_files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(512))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime)
    kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # stored | applied | refused
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    __table_args__ = (UniqueConstraint("bank_id", "sha256"),)


class Funding(Base):
    """Treasury transfer to a bank's disbursement account; starts the bank's clock [Art. 19-20]."""

    __tablename__ = "fundings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[str] = mapped_column(String(32), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), nullable=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime)
    value_date: Mapped[dt.date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    __table_args__ = (UniqueConstraint("bank_id", "reference"),)


class ReconException(Base):
    """A line from a bank that matched no item, or did not match it exactly. Never dropped."""

    __tablename__ = "recon_exceptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inbound_file_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_files.id"), nullable=True)
    line: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reference: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
