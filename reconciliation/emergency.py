"""Emergency payments made outside the system [Art. 23].

Sudden emergency or temporary relief that cannot be paid through the one card in time may be paid
through another lawful channel, as the city-level department requires. Such a payment is still
recorded here — who (encrypted, with a blind index), how much, when, through which channel, why,
and under which approval — so that the compliance report shows it and a later one-card payment to
the same person for the same purpose can be checked against it. Records are append-only
(database triggers, migration 0005); a mistake is corrected by a new record, never by editing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from formats.money import from_fen, to_fen, yuan
from gateway.config.model import Config
from gateway.db.models import Base
from gateway.errors import YktError
from gateway.identity import InvalidResidentId, validate_resident_id
from gateway.privacy import PiiVault, mask_id, mask_name

CHANNELS = {
    "cash": ("现金", "cash"),
    "bank_transfer": ("其他银行转账", "transfer outside the one card"),
    "in_kind": ("实物", "in kind"),
    "other": ("其他合法合规渠道", "other lawful channel"),
}


class EmergencyPayment(Base):
    __tablename__ = "emergency_payments"
    id: Mapped[int] = mapped_column(primary_key=True)
    county_code: Mapped[str] = mapped_column(sa.String(6))
    department_code: Mapped[str] = mapped_column(sa.String(32))
    policy_code: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    unit_code: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    name_enc: Mapped[bytes] = mapped_column(sa.LargeBinary)
    id_number_enc: Mapped[bytes] = mapped_column(sa.LargeBinary)
    id_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    paid_on: Mapped[dt.date] = mapped_column(sa.Date, index=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    channel_detail: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    reason: Mapped[str] = mapped_column(sa.Text)
    approval_ref: Mapped[str] = mapped_column(sa.String(64))
    recorded_by: Mapped[str] = mapped_column(sa.String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(sa.DateTime)


class EmergencyRefused(YktError):
    """The record is refused; ``problems`` lists every problem as (field, zh, en)."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems
        super().__init__("emergency payment not recorded:\n" + "\n".join(f"  {f}: {en}" for f, _, en in problems),
                         zh="应急发放未记录：" + "；".join(f"{f}：{zh}" for f, zh, _ in problems))


@dataclass(frozen=True)
class EmergencyView:
    """A recorded payment as shown in reports: personal data masked."""

    id: int
    county_code: str
    department_code: str
    policy_code: str | None
    unit_code: str | None
    name: str
    id_number: str
    amount: Decimal
    paid_on: dt.date
    channel: str
    channel_zh: str
    channel_detail: str | None
    reason: str
    approval_ref: str
    recorded_by: str
    recorded_at: dt.datetime

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["amount"] = str(self.amount)
        return d


def record_emergency(session: Session, cfg: Config, vault: PiiVault, *, department_code: str, name: str,
                     id_number: str, amount: str | Decimal, paid_on: dt.date, channel: str, reason: str,
                     approval_ref: str, recorded_by: str, now: dt.datetime, policy_code: str | None = None,
                     unit_code: str | None = None, channel_detail: str | None = None) -> int:
    """Record one payment made outside the system; returns its id. Every problem is listed. The caller commits."""
    problems: list[tuple[str, str, str]] = []
    dept = cfg.departments.get(department_code)
    if dept is None:
        problems.append(("department", f"没有业务主管部门 {department_code}", f"unknown department {department_code!r}"))
    if policy_code is not None and policy_code not in cfg.policies:
        problems.append(("policy", f"政策清单中没有 {policy_code}", f"unknown policy {policy_code!r}"))
    if unit_code is not None and unit_code not in cfg.units:
        problems.append(("unit", f"没有项目实施单位 {unit_code}", f"unknown implementation unit {unit_code!r}"))
    if channel not in CHANNELS:
        problems.append(("channel", f"发放渠道应为 {'/'.join(CHANNELS)}", f"channel must be one of {', '.join(CHANNELS)}"))
    if not name.strip():
        problems.append(("name", "姓名不能为空", "name is required"))
    try:
        id_number = validate_resident_id(id_number.strip().upper())
    except InvalidResidentId as e:
        problems.append(("id_number", e.zh, f"resident ID: {e.en}"))
    fen = None
    try:
        d = yuan(amount)
        if d <= 0:
            raise ValueError
        fen = to_fen(d)
    except (ValueError, TypeError):
        problems.append(("amount", "金额应为大于零、最多两位小数的数字（元）", "amount must be positive yuan, two decimals"))
    if len(reason.strip()) < 4:
        problems.append(("reason", "请写明无法通过“一卡通”及时发放的原因", "say why the one card could not be used in time"))
    if not approval_ref.strip():
        problems.append(("approval_ref", "请填写市级主管部门的审批文号", "the approval reference is required"))
    if paid_on > (now + dt.timedelta(hours=8)).date():
        problems.append(("paid_on", "发放日期不能晚于今天", "the payment date is in the future"))
    if problems:
        raise EmergencyRefused(problems)
    idh = vault.blind_index("id", id_number)
    row = EmergencyPayment(county_code=dept.county, department_code=department_code, policy_code=policy_code,
                           unit_code=unit_code, id_hash=idh,
                           name_enc=vault.encrypt(name.strip(), "emergency_payments", "name_enc", idh),
                           id_number_enc=vault.encrypt(id_number, "emergency_payments", "id_number_enc", idh),
                           amount_fen=fen, paid_on=paid_on, channel=channel, channel_detail=channel_detail,
                           reason=reason.strip(), approval_ref=approval_ref.strip(), recorded_by=recorded_by,
                           recorded_at=now)
    session.add(row)
    session.flush()
    return row.id


def emergency_payments(session: Session, vault: PiiVault, *, paid_from: dt.date | None = None,
                       paid_to: dt.date | None = None, county_code: str | None = None) -> list[EmergencyView]:
    """Recorded payments paid in ``[paid_from, paid_to]``, masked, oldest first."""
    q = sa.select(EmergencyPayment).order_by(EmergencyPayment.paid_on, EmergencyPayment.id)
    if paid_from:
        q = q.where(EmergencyPayment.paid_on >= paid_from)
    if paid_to:
        q = q.where(EmergencyPayment.paid_on <= paid_to)
    if county_code:
        q = q.where(EmergencyPayment.county_code == county_code)
    return [EmergencyView(r.id, r.county_code, r.department_code, r.policy_code, r.unit_code,
                          mask_name(vault.read(r, "name_enc")), mask_id(vault.read(r, "id_number_enc")),
                          from_fen(r.amount_fen), r.paid_on, r.channel, CHANNELS[r.channel][0], r.channel_detail,
                          r.reason, r.approval_ref, r.recorded_by, r.recorded_at)
            for r in session.scalars(q)]
