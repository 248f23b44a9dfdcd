"""Tables of the admin module: beneficiaries, their one-card accounts and proxies [Art. 10-14],
imported screening lists [Art. 18], the online-verification cache [Art. 12, 18] and the decisions
a person takes on review findings.

Append-only (refused UPDATE/DELETE by database trigger, migration ``0002``): ``beneficiaries``,
``accounts``, ``account_events``, ``proxies``, ``list_imports``, ``list_entries``,
``finding_decisions``. An account is never changed or deleted: a change of account is a new
``accounts`` row, and the old one gets a ``superseded`` event. The state of an account is the
kind of its latest event.

``account_verifications`` is a cache (one row per account + identity + name, replaced when the
bank is asked again), so it is the one mutable table here.

Personal data: ``*_enc`` is AES-GCM ciphertext from :class:`gateway.privacy.PiiVault`,
``*_hash`` its keyed blind index. Plaintext never reaches the database.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (Boolean, Date, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models import Base

APPEND_ONLY_TABLES = ("beneficiaries", "accounts", "account_events", "proxies", "list_imports", "list_entries",
                      "finding_decisions")

ACCOUNT_KINDS = ("card", "passbook")  # 一人一卡（折）: one of each kind at most [Art. 10]
# account states = kinds of account events
DECLARED, APPROVED, ACTIVE, SUPERSEDED, REFUSED = "declared", "approved", "active", "superseded", "refused"


class Beneficiary(Base):
    """A person who may receive subsidies (补贴对象), registered by an implementation unit."""

    __tablename__ = "beneficiaries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    name_hash: Mapped[str] = mapped_column(String(64))
    # household = the household register number 户口簿户号 (blind index, kind "household"); see
    # gateway.validation.rules.household for how it is used
    household_hash: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    unit_code: Mapped[str] = mapped_column(String(32))
    registered_by: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Account(Base):
    """A one-card account as the beneficiary declared it [Art. 10-11, 14]."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"))
    kind: Mapped[str] = mapped_column(String(16))  # card | passbook
    bank_id: Mapped[str] = mapped_column(String(32))
    account_enc: Mapped[bytes] = mapped_column(LargeBinary)
    account_hash: Mapped[str] = mapped_column(String(64), index=True)
    social_security_card: Mapped[bool] = mapped_column(Boolean)  # 社会保障卡金融账户 [Art. 11]
    # Art. 10: nobody may assign a bank; the registration records that the person chose it
    bank_chosen_by_beneficiary: Mapped[bool] = mapped_column(Boolean)
    declaration_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)  # signed form no.
    replaces_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)
    declared_at: Mapped[dt.datetime] = mapped_column(DateTime)
    recorded_by: Mapped[str] = mapped_column(String(64))


class AccountEvent(Base):
    """Each step of an account's life, with who and when: declared, approved (unit), active
    (confirmed by county finance, or entered at registration), superseded, refused."""

    __tablename__ = "account_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))  # beneficiary | unit | county-finance
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    __table_args__ = (Index("ix_account_events_account", "account_id", "id", "kind"),)


class Proxy(Base):
    """Proxy collection 代领 [Art. 13]: who collects for the beneficiary, recorded and approved."""

    __tablename__ = "proxies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    proxy_name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    proxy_id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    proxy_id_hash: Mapped[str] = mapped_column(String(64), index=True)
    account_hash: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)  # proxy's account
    relation: Mapped[str] = mapped_column(String(32))  # 子女, 配偶, 村委会 …
    reason: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime)
    approved_by: Mapped[str] = mapped_column(String(64))
    approved_at: Mapped[dt.datetime] = mapped_column(DateTime)


class ListImport(Base):
    """One versioned import of a screening list (a full snapshot of that list)."""

    __tablename__ = "list_imports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[dt.date] = mapped_column(Date)
    source_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    row_count: Mapped[int] = mapped_column(Integer)
    imported_by: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime)
    __table_args__ = (UniqueConstraint("kind", "version"),)


class ListEntry(Base):
    __tablename__ = "list_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("list_imports.id"))
    id_hash: Mapped[str] = mapped_column(String(64), index=True)
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    date_of_death: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class AccountVerification(Base):
    """Cached answer of the partner bank: does this account belong to this person, and is it
    usable? [Art. 12, 18]. ``status``: ok, name_mismatch, id_mismatch, closed, frozen, lost,
    unknown, or unavailable (the bank could not be asked: a review, never a pass)."""

    __tablename__ = "account_verifications"
    account_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    bank_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    reason_code: Mapped[str | None] = mapped_column(String(8), nullable=True)
    reason_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    checked_at: Mapped[dt.datetime] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    __table_args__ = {"sqlite_with_rowid": False}


class FindingDecision(Base):
    """A person's decision on a review finding: ``cleared`` (may be paid) or ``confirmed`` (the
    problem is real; not paid). Append-only: the latest decision counts, earlier ones stay."""

    __tablename__ = "finding_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    finding_id: Mapped[int] = mapped_column(ForeignKey("findings.id"), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)

