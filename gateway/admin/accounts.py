"""Beneficiaries and their one-card accounts [Art. 10-14], as plain functions over a session.

* :func:`register` — an implementation unit enters what the beneficiary self-declared [Art. 10-11]:
  one active account per person and kind (一人一卡（折）: one card, one passbook at most), the
  social-security-card financial account flagged, and the record that the person chose the bank
  (the database refuses an account without it). The account is active at once (``declared`` by
  the beneficiary, ``active`` by the unit that checked and entered it).
* :func:`change` — the person re-declares a new account (``declared``); :func:`approve` — the
  unit approves it (``approved``); :func:`confirm` — county finance confirms it (``active``), and
  only then the old account is ``superseded`` [Art. 14]. :func:`refuse` ends a pending change.
  Every step records who and when; nothing is updated or deleted (the tables are append-only).
* :func:`record_proxy` — proxy collection 代领 [Art. 13]: the proxy's identity, relation and
  reason, recorded by one person and approved by another.

Each function takes the session, the :class:`PiiVault` and ``now``; it flushes but does not
commit (the caller owns the transaction). Errors are :class:`AccountError` (bilingual).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import audit
from gateway.admin.models import (ACCOUNT_KINDS, ACTIVE, APPROVED, DECLARED, REFUSED, SUPERSEDED, Account,
                                  AccountEvent, Beneficiary, Proxy)
from gateway.errors import YktError
from gateway.privacy import PiiVault, mask_account, mask_id, mask_name
from gateway.validation.checks import check_card_number, check_resident_id


class AccountError(YktError, ValueError):
    """A registration or change of account that the rules do not allow; ``field`` names the input at
    fault when there is one (``id_number``, ``account``, ``kind`` …, as the HTTP API calls them)."""

    def __init__(self, message: str, *, zh: str | None = None, field: str | None = None) -> None:
        super().__init__(message, zh=zh)
        self.field = field


@dataclass(frozen=True)
class AccountView:
    """An account as shown to a clerk (masked unless ``reveal``)."""

    account_id: int
    kind: str
    bank_id: str
    account: str
    social_security_card: bool
    state: str
    replaces_account_id: int | None
    history: tuple[tuple[str, str, str, dt.datetime, str | None], ...]  # (kind, by, role, at, note)


@dataclass(frozen=True)
class BeneficiaryView:
    beneficiary_id: int
    name: str
    id_number: str
    unit_code: str
    registered_by: str
    registered_at: dt.datetime
    accounts: tuple[AccountView, ...]
    proxies: tuple[dict, ...]


def _naive(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.timezone.utc).replace(tzinfo=None) if t.tzinfo else t


def _check_id(id_number: str, field: str = "id_number") -> None:
    problems = check_resident_id(id_number)
    if problems:
        codes = ", ".join(c for c, _ in problems)
        raise AccountError(f"resident ID {mask_id(id_number)} is not valid ({codes})",
                           zh=f"身份证号码 {mask_id(id_number)} 无效（{codes}）", field=field)


def _check_account(number: str, field: str = "account") -> str:
    number = "".join(number.split())
    problems = [c for c, _ in check_card_number(number, 12, 21, 16, 19) if c != "CARD_LUHN"]
    if problems:
        raise AccountError(f"account number {mask_account(number)} is not plausible ({', '.join(problems)})",
                           zh=f"账号 {mask_account(number)} 不合理（{', '.join(problems)}）", field=field)
    return number


def find_beneficiary(session: Session, vault: PiiVault, id_number: str) -> Beneficiary | None:
    return session.scalar(select(Beneficiary).where(Beneficiary.id_hash == vault.blind_index("id", id_number)))


def _require(session: Session, vault: PiiVault, id_number: str) -> Beneficiary:
    b = find_beneficiary(session, vault, id_number)
    if b is None:
        raise AccountError(f"no beneficiary registered with ID {mask_id(id_number)}",
                           zh=f"身份证号 {mask_id(id_number)} 未登记")
    return b


def account_state(session: Session, account_id: int) -> str:
    """The kind of the account's latest event."""
    return session.scalar(select(AccountEvent.kind).where(AccountEvent.account_id == account_id)
                          .order_by(AccountEvent.id.desc()).limit(1))


def _accounts_with_state(session: Session, beneficiary_id: int) -> list[tuple[Account, str]]:
    accts = session.scalars(select(Account).where(Account.beneficiary_id == beneficiary_id).order_by(Account.id)).all()
    return [(a, account_state(session, a.id)) for a in accts]


def _event(session: Session, account_id: int, kind: str, by: str, role: str, at: dt.datetime, note=None) -> None:
    session.add(AccountEvent(account_id=account_id, kind=kind, by=by, role=role, at=at, note=note))
    audit.append(session, actor=by, action=f"account.{kind}", subject=f"account:{account_id}", detail={"role": role},
                 now=at)


def _account_taken(session: Session, account_hash: str, beneficiary_id: int | None) -> bool:
    """Is the account number the active or pending account of another person? (one card, one person)"""
    for a_id, b_id in session.execute(select(Account.id, Account.beneficiary_id)
                                      .where(Account.account_hash == account_hash)):
        if b_id != beneficiary_id and account_state(session, a_id) in (ACTIVE, APPROVED, DECLARED):
            return True
    return False


def register(session: Session, vault: PiiVault, *, now: dt.datetime, name: str, id_number: str, unit_code: str,
             account: str, bank_id: str, kind: str = "card", social_security_card: bool = False,
             bank_chosen_by_beneficiary: bool, recorded_by: str, household: str | None = None,
             declaration_ref: str | None = None) -> Account:
    """Register a beneficiary's self-declared account [Art. 10-11]; returns the active account.

    :param bank_chosen_by_beneficiary: must be True — nobody may assign a bank [Art. 10].
    :raises AccountError: invalid ID or account number, bank not chosen by the person, a second
        account of the same kind (use :func:`change`), or an account number another person uses.
    """
    now = _naive(now)
    if not bank_chosen_by_beneficiary:
        raise AccountError("the beneficiary must choose the bank; no one may assign one (Art. 10)",
                           zh="任何单位和个人不得为补贴对象指定金融机构开设“一卡通”账户（第十条）",
                           field="chosen_by_beneficiary")
    if kind not in ACCOUNT_KINDS:
        raise AccountError(f"account kind must be one of {', '.join(ACCOUNT_KINDS)}, not {kind!r}",
                           zh="账户类型应为 card（卡）或 passbook（折）", field="kind")
    if not name.strip():
        raise AccountError("the beneficiary's name is empty", zh="姓名为空", field="name")
    _check_id(id_number)
    number = _check_account(account)
    b = find_beneficiary(session, vault, id_number)
    if b is None:
        idh = vault.blind_index("id", id_number)
        b = Beneficiary(id_hash=idh,
                        id_number_enc=vault.encrypt(id_number.strip().upper(), "beneficiaries", "id_number_enc", idh),
                        name_enc=vault.encrypt(name.strip(), "beneficiaries", "name_enc", idh),
                        name_hash=vault.blind_index("name", name),
                        household_hash=vault.blind_index("household", household) if household else None,
                        unit_code=unit_code, registered_by=recorded_by, registered_at=now)
        session.add(b)
        session.flush()
    else:
        for a, state in _accounts_with_state(session, b.id):
            if a.kind == kind and state in (ACTIVE, APPROVED, DECLARED):
                raise AccountError(
                    f"{mask_id(id_number)} already has a {kind} account (one person, one card or passbook); "
                    "declare a change of account instead (Art. 14)",
                    zh=f"{mask_id(id_number)} 已有同类“一卡通”账户（一人一卡（折）），应申报变更（第十四条）")
    ah = vault.blind_index("account", number)
    if _account_taken(session, ah, b.id):
        raise AccountError(f"account {mask_account(number)} is already another person's one-card account",
                           zh=f"账号 {mask_account(number)} 已是他人的“一卡通”账户", field="account")
    a = Account(beneficiary_id=b.id, kind=kind, bank_id=bank_id, account_hash=ah,
                account_enc=vault.encrypt(number, "accounts", "account_enc", ah),
                social_security_card=social_security_card, bank_chosen_by_beneficiary=True,
                declaration_ref=declaration_ref, replaces_account_id=None, declared_at=now, recorded_by=recorded_by)
    session.add(a)
    session.flush()
    _event(session, a.id, DECLARED, "beneficiary", "beneficiary", now, f"self-declared, recorded by {recorded_by}")
    _event(session, a.id, ACTIVE, recorded_by, "unit", now, "checked and entered by the implementation unit (Art. 11)")
    session.flush()
    return a


def change(session: Session, vault: PiiVault, *, now: dt.datetime, id_number: str, account: str, bank_id: str,
           kind: str = "card", social_security_card: bool = False, bank_chosen_by_beneficiary: bool,
           recorded_by: str, declaration_ref: str | None = None) -> Account:
    """The beneficiary re-declares a new account [Art. 14]; returns it in state ``declared``.
    The old account stays active until county finance confirms the change."""
    now = _naive(now)
    if not bank_chosen_by_beneficiary:
        raise AccountError("the beneficiary must choose the bank; no one may assign one (Art. 10)",
                           zh="任何单位和个人不得为补贴对象指定金融机构开设“一卡通”账户（第十条）",
                           field="chosen_by_beneficiary")
    b = _require(session, vault, id_number)
    number = _check_account(account)
    current = None
    for a, state in _accounts_with_state(session, b.id):
        if a.kind == kind and state in (DECLARED, APPROVED):
            raise AccountError(f"a change of {kind} account is already pending (account {a.id})",
                               zh=f"已有待审核的账户变更（账户 {a.id}）")
        if a.kind == kind and state == ACTIVE:
            current = a
    ah = vault.blind_index("account", number)
    if current is not None and current.account_hash == ah:
        raise AccountError("the new account is the same as the current one", zh="新账号与现账号相同", field="account")
    if _account_taken(session, ah, b.id):
        raise AccountError(f"account {mask_account(number)} is already another person's one-card account",
                           zh=f"账号 {mask_account(number)} 已是他人的“一卡通”账户", field="account")
    a = Account(beneficiary_id=b.id, kind=kind, bank_id=bank_id, account_hash=ah,
                account_enc=vault.encrypt(number, "accounts", "account_enc", ah),
                social_security_card=social_security_card, bank_chosen_by_beneficiary=True,
                declaration_ref=declaration_ref, replaces_account_id=current.id if current else None,
                declared_at=now, recorded_by=recorded_by)
    session.add(a)
    session.flush()
    _event(session, a.id, DECLARED, "beneficiary", "beneficiary", now, f"re-declared, recorded by {recorded_by}")
    session.flush()
    return a


def _pending(session: Session, account_id: int, expected: str, step: str) -> Account:
    a = session.get(Account, account_id)
    if a is None:
        raise AccountError(f"no account {account_id}", zh=f"账户 {account_id} 不存在")
    state = account_state(session, account_id)
    if state != expected:
        step_zh = {"approved": "审核", "confirmed": "确认"}[step]
        raise AccountError(f"account {account_id} is {state}; it must be {expected} to be {step}",
                           zh=f"账户 {account_id} 状态为 {state}，须为 {expected} 才能{step_zh}")
    return a


def approve(session: Session, *, now: dt.datetime, account_id: int, by: str, note: str | None = None) -> Account:
    """The implementation unit approves a declared change [Art. 14]."""
    a = _pending(session, account_id, DECLARED, "approved")
    _event(session, a.id, APPROVED, by, "unit", _naive(now), note)
    session.flush()
    return a


def confirm(session: Session, *, now: dt.datetime, account_id: int, by: str, note: str | None = None) -> Account:
    """County finance confirms an approved change [Art. 14]: the new account becomes active and
    the one it replaces is superseded (kept, never deleted)."""
    a = _pending(session, account_id, APPROVED, "confirmed")
    approver = session.scalar(select(AccountEvent.by).where(AccountEvent.account_id == a.id,
                                                            AccountEvent.kind == APPROVED))
    if approver == by:
        raise AccountError("the county finance confirmation must be by another person than the unit's approval",
                           zh="区县财政确认人不得与实施单位审核人为同一人")
    now = _naive(now)
    for old, state in _accounts_with_state(session, a.beneficiary_id):
        if old.id != a.id and old.kind == a.kind and state == ACTIVE:
            _event(session, old.id, SUPERSEDED, by, "county-finance", now, f"replaced by account {a.id}")
    _event(session, a.id, ACTIVE, by, "county-finance", now, note)
    session.flush()
    return a


def refuse(session: Session, *, now: dt.datetime, account_id: int, by: str, role: str, note: str) -> Account:
    """The unit or county finance refuses a pending change; the old account stays active."""
    a = session.get(Account, account_id)
    if a is None or account_state(session, account_id) not in (DECLARED, APPROVED):
        raise AccountError(f"account {account_id} has no pending change", zh=f"账户 {account_id} 没有待处理的变更")
    _event(session, a.id, REFUSED, by, role, _naive(now), note)
    session.flush()
    return a


def record_proxy(session: Session, vault: PiiVault, *, now: dt.datetime, id_number: str, proxy_name: str,
                 proxy_id_number: str, relation: str, reason: str, recorded_by: str, approved_by: str,
                 proxy_account: str | None = None) -> Proxy:
    """Record and approve proxy collection 代领 [Art. 13]: the proxy's identity is checked and
    stored encrypted; recorder and approver must be two people."""
    b = _require(session, vault, id_number)
    _check_id(proxy_id_number, "proxy_id_number")
    if vault.blind_index("id", proxy_id_number) == b.id_hash:
        raise AccountError("a person cannot be their own proxy", zh="代领人不能是本人", field="proxy_id_number")
    if not reason.strip() or not relation.strip():
        raise AccountError("proxy collection needs a relation and a reason (Art. 13)", zh="代领须写明关系和原因（第十三条）",
                           field="reason" if relation.strip() else "relation")
    if recorded_by == approved_by:
        raise AccountError("proxy collection must be approved by someone other than who recorded it",
                           zh="代领须由录入人以外的人员审核", field="approved_by")
    now = _naive(now)
    pidh = vault.blind_index("id", proxy_id_number)
    p = Proxy(beneficiary_id=b.id,
              proxy_name_enc=vault.encrypt(proxy_name.strip(), "proxies", "proxy_name_enc", pidh),
              proxy_id_number_enc=vault.encrypt(proxy_id_number.strip().upper(), "proxies", "proxy_id_number_enc",
                                                pidh),
              proxy_id_hash=pidh,
              account_hash=(vault.blind_index("account", _check_account(proxy_account, "proxy_account"))
                            if proxy_account else None),
              relation=relation, reason=reason, recorded_by=recorded_by, recorded_at=now, approved_by=approved_by,
              approved_at=now)
    session.add(p)
    session.flush()
    audit.append(session, actor=recorded_by, action="proxy.recorded", subject=f"proxy:{p.id}",
                 detail={"relation": relation, "approved_by": approved_by}, now=now)
    return p


def show(session: Session, vault: PiiVault, id_number: str, *, reveal: bool = False) -> BeneficiaryView:
    """The beneficiary with every account (superseded ones too) and its history; masked unless
    ``reveal`` (for roles allowed to see personal data)."""
    return beneficiary_view(session, vault, _require(session, vault, id_number), reveal=reveal)


def beneficiary_view(session: Session, vault: PiiVault, b: Beneficiary, *, reveal: bool = False) -> BeneficiaryView:
    """:func:`show` for a beneficiary already found (the HTTP API finds them by their id)."""
    name, idn = vault.read(b, "name_enc"), vault.read(b, "id_number_enc")
    views = []
    for a, state in _accounts_with_state(session, b.id):
        number = vault.read(a, "account_enc")
        hist = tuple((e.kind, e.by, e.role, e.at, e.note) for e in session.scalars(
            select(AccountEvent).where(AccountEvent.account_id == a.id).order_by(AccountEvent.id)))
        views.append(AccountView(a.id, a.kind, a.bank_id, number if reveal else mask_account(number),
                                 a.social_security_card, state, a.replaces_account_id, hist))
    proxies = []
    for p in session.scalars(select(Proxy).where(Proxy.beneficiary_id == b.id).order_by(Proxy.id)):
        pn, pid = vault.read(p, "proxy_name_enc"), vault.read(p, "proxy_id_number_enc")
        proxies.append({"proxy_name": pn if reveal else mask_name(pn), "proxy_id": pid if reveal else mask_id(pid),
                        "relation": p.relation, "reason": p.reason, "recorded_by": p.recorded_by,
                        "approved_by": p.approved_by, "approved_at": p.approved_at})
    return BeneficiaryView(b.id, name if reveal else mask_name(name), idn if reveal else mask_id(idn), b.unit_code,
                           b.registered_by, b.registered_at, tuple(views), tuple(proxies))

