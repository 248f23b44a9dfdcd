"""Configuration as frozen dataclasses. Built only by :mod:`gateway.config.load`, which checks
every value strictly; code that holds a ``Config`` can trust it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

LIST_KINDS = ("deceased", "public-employees", "disabled", "supported", "registered-poor")
FREQUENCIES = ("monthly", "quarterly", "half-yearly", "yearly", "once")
SIGNATURE_SCHEMES = ("cms", "xmldsig", "sm2")
ISO_FORMATS = ("pain.001.001.09",)
REPORT_KINDS = ("pain.002", "camt.054", "camt.053")
UNIT_KINDS = ("township", "village", "school", "other")


@dataclass(frozen=True)
class County:
    code: str
    name: str


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    county: str


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    kind: str
    county: str


@dataclass(frozen=True)
class SftpTransport:
    host: str
    port: int
    username: str
    inbox: str
    outbox: str
    host_key: Path  # the bank's SSH host public key, pinned
    client_key: Path
    kind: str = "sftp"


@dataclass(frozen=True)
class HttpsTransport:
    url: str
    server_cert: Path  # pinned
    client_cert: Path
    client_key: Path
    kind: str = "https"


@dataclass(frozen=True)
class FolderTransport:
    outgoing: Path
    incoming: Path
    kind: str = "folder"


Transport = SftpTransport | HttpsTransport | FolderTransport


@dataclass(frozen=True)
class BankKeys:
    signing_key: Path
    signing_cert: Path
    bank_cert: Path  # the bank's signing certificate (or SM2 public key), pinned


@dataclass(frozen=True)
class Sla:
    """Deadlines in working days [Art. 20, 21, 22]."""

    credit_working_days: int = 1
    results_working_days: int = 3
    refund_info_working_days: int = 3


@dataclass(frozen=True)
class Limits:
    max_items_per_file: int
    max_amount_per_file: Decimal


@dataclass(frozen=True)
class Bank:
    id: str
    name: str
    bank_code: str
    counties: tuple[str, ...]
    format: str
    reports: tuple[str, ...]
    signature: str
    cutoff: dt.time
    disbursement_account_name: str
    disbursement_account_number: str
    limits: Limits
    sla: Sla
    transport: Transport
    keys: BankKeys

    @property
    def layout_name(self) -> str | None:
        return self.format.split(":", 1)[1] if self.format.startswith("flat:") else None


@dataclass(frozen=True)
class Disclosure:
    publish_days: int = 7
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    """One entry of the policy list 政策清单."""

    code: str
    name: str  # 补贴名目
    beneficiaries: str  # 补贴对象
    standard: Decimal  # 补贴标准, per beneficiary per period
    basis: str  # 补贴依据
    guide: str  # 申报指南
    frequency: str  # 发放频次
    department: str  # 主管部门
    counties: tuple[str, ...]
    hotline: str  # 咨询/举报电话
    exclusive_with: tuple[str, ...] = ()
    must_be_on: tuple[str, ...] = ()
    must_not_be_on: tuple[str, ...] = ()
    disclosure: Disclosure = field(default_factory=Disclosure)


@dataclass(frozen=True)
class Config:
    directory: Path
    keys_dir: Path
    counties: dict[str, County]
    departments: dict[str, Department]
    units: dict[str, Unit]
    banks: dict[str, Bank]
    policies: dict[str, Policy]
    reason_codes: dict  # raw mapping, turned into formats.reasons.ReasonTable by its user
    layouts: dict  # layout name -> raw mapping, turned into formats.flatfile layouts by their user

    def banks_for_county(self, county: str) -> list[Bank]:
        return [b for b in self.banks.values() if county in b.counties]
