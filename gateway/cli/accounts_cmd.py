"""``ykt accounts …``: one-card accounts of beneficiaries [Art. 10-14]. Output is masked unless --reveal."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

import click


@contextmanager
def admin_session(ctx):
    """A session in one transaction (committed on success) and the personal-data vault."""
    from sqlalchemy.orm import Session

    from gateway.db import make_engine
    from gateway.privacy import PiiVault

    vault = PiiVault.load()
    engine = make_engine(ctx.db_url)
    try:
        with Session(engine) as s, s.begin():
            yield s, vault
    finally:
        engine.dispose()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@click.group("accounts")
def group() -> None:
    """Register, change (approve, confirm) and show one-card accounts 一卡通账户 [Art. 10-14]."""


_kind = click.option("--kind", type=click.Choice(["card", "passbook"]), default="card", show_default=True,
                     help="Card (卡) or passbook (折): one of each per person.")
_ssc = click.option("--social-security-card", "ssc", is_flag=True, help="The account is a social-security-card financial account.")
_chosen = click.option("--chosen-by-beneficiary", "chosen", is_flag=True,
                       help="Required: the person chose this bank themselves (Art. 10: nobody may assign one).")


@group.command("register")
@click.option("--name", required=True, help="Beneficiary's name 姓名.")
@click.option("--id", "id_number", required=True, help="Resident ID 身份证号码.")
@click.option("--unit", required=True, help="Implementation unit code 项目实施单位.")
@click.option("--account", required=True, help="Card or passbook number.")
@click.option("--bank", required=True, help="Bank id (config/banks.toml).")
@_kind
@_ssc
@_chosen
@click.option("--household", help="Household register number 户口簿户号.")
@click.option("--form-ref", help="Number of the signed declaration form.")
@click.option("--by", required=True, help="Who records it (the unit's clerk).")
@click.pass_obj
def register_cmd(ctx, name, id_number, unit, account, bank, kind, ssc, chosen, household, form_ref, by):
    """Register a beneficiary's self-declared account (active at once) [Art. 10-11]."""
    from gateway.admin import accounts

    _known(ctx, bank, unit)
    with admin_session(ctx) as (s, vault):
        a = accounts.register(s, vault, now=_now(), name=name, id_number=id_number, unit_code=unit, account=account,
                              bank_id=bank, kind=kind, social_security_card=ssc, bank_chosen_by_beneficiary=chosen,
                              recorded_by=by, household=household, declaration_ref=form_ref)
        ctx.emit(f"registered account {a.id} ({kind}, {bank}) — active", {"account_id": a.id, "state": "active"})


def _known(ctx, bank, unit=None):
    cfg = ctx.config()
    if bank not in cfg.banks:
        raise click.BadParameter(f"unknown bank {bank!r} (known: {', '.join(cfg.banks)})", param_hint="--bank")
    if unit is not None and unit not in cfg.units:
        raise click.BadParameter(f"unknown implementation unit {unit!r}", param_hint="--unit")


@group.command("change")
@click.option("--id", "id_number", required=True, help="Resident ID of the registered beneficiary.")
@click.option("--account", required=True, help="The new card or passbook number.")
@click.option("--bank", required=True)
@_kind
@_ssc
@_chosen
@click.option("--form-ref", help="Number of the signed re-declaration form.")
@click.option("--by", required=True, help="Who records the re-declaration.")
@click.pass_obj
def change_cmd(ctx, id_number, account, bank, kind, ssc, chosen, form_ref, by):
    """Record a re-declared account; it needs `approve` (unit) then `confirm` (county finance) [Art. 14]."""
    from gateway.admin import accounts

    _known(ctx, bank)
    with admin_session(ctx) as (s, vault):
        a = accounts.change(s, vault, now=_now(), id_number=id_number, account=account, bank_id=bank, kind=kind,
                            social_security_card=ssc, bank_chosen_by_beneficiary=chosen, recorded_by=by,
                            declaration_ref=form_ref)
        ctx.emit(f"account {a.id} declared; next: ykt accounts approve {a.id} --by <unit reviewer>",
                 {"account_id": a.id, "state": "declared"})


@group.command("approve")
@click.argument("account_id", type=int)
@click.option("--by", required=True, help="The implementation unit's reviewer.")
@click.option("--note")
@click.pass_obj
def approve_cmd(ctx, account_id, by, note):
    """The implementation unit approves a declared change of account [Art. 14]."""
    from gateway.admin import accounts

    with admin_session(ctx) as (s, _v):
        accounts.approve(s, now=_now(), account_id=account_id, by=by, note=note)
        ctx.emit(f"account {account_id} approved; next: ykt accounts confirm {account_id} --by <county finance>",
                 {"account_id": account_id, "state": "approved"})


@group.command("confirm")
@click.argument("account_id", type=int)
@click.option("--by", required=True, help="County finance 区县财政部门 officer.")
@click.option("--note")
@click.pass_obj
def confirm_cmd(ctx, account_id, by, note):
    """County finance confirms an approved change; the old account is superseded (kept) [Art. 14]."""
    from gateway.admin import accounts

    with admin_session(ctx) as (s, _v):
        accounts.confirm(s, now=_now(), account_id=account_id, by=by, note=note)
        ctx.emit(f"account {account_id} active; the previous account is superseded",
                 {"account_id": account_id, "state": "active"})


@group.command("proxy")
@click.option("--id", "id_number", required=True, help="Resident ID of the beneficiary.")
@click.option("--proxy-name", required=True)
@click.option("--proxy-id", "proxy_id_number", required=True, help="The proxy's resident ID.")
@click.option("--proxy-account", help="The account the proxy collects into, if not the beneficiary's.")
@click.option("--relation", required=True, help="e.g. 子女, 配偶, 村委会.")
@click.option("--reason", required=True)
@click.option("--by", required=True, help="Who records it.")
@click.option("--approved-by", required=True, help="Who approved it (another person).")
@click.pass_obj
def proxy_cmd(ctx, id_number, proxy_name, proxy_id_number, proxy_account, relation, reason, by, approved_by):
    """Record an approved proxy collection 代领 [Art. 13]."""
    from gateway.admin import accounts

    with admin_session(ctx) as (s, vault):
        p = accounts.record_proxy(s, vault, now=_now(), id_number=id_number, proxy_name=proxy_name,
                                  proxy_id_number=proxy_id_number, relation=relation, reason=reason, recorded_by=by,
                                  approved_by=approved_by, proxy_account=proxy_account)
        ctx.emit(f"proxy {p.id} recorded and approved", {"proxy_id": p.id})


@group.command("show")
@click.option("--id", "id_number", required=True, help="Resident ID.")
@click.option("--reveal", is_flag=True, help="Show personal data unmasked (for roles allowed to see it).")
@click.pass_obj
def show_cmd(ctx, id_number, reveal):
    """A beneficiary's accounts (superseded ones too) with every step: who and when."""
    from dataclasses import asdict

    from gateway.admin import accounts

    with admin_session(ctx) as (s, vault):
        v = accounts.show(s, vault, id_number, reveal=reveal)
    lines = [f"{v.name}  {v.id_number}  unit {v.unit_code}  registered {v.registered_at:%Y-%m-%d %H:%M} by {v.registered_by}"]
    for a in v.accounts:
        flag = " 社保卡" if a.social_security_card else ""
        lines.append(f"  account {a.account_id}: {a.kind} {a.bank_id} {a.account}{flag} — {a.state}"
                     + (f" (replaces {a.replaces_account_id})" if a.replaces_account_id else ""))
        for kind, by, role, at, note in a.history:
            lines.append(f"    {at:%Y-%m-%d %H:%M} {kind:<10} {by} ({role}){' — ' + note if note else ''}")
    for p in v.proxies:
        lines.append(f"  proxy 代领: {p['proxy_name']} {p['proxy_id']} ({p['relation']}: {p['reason']}) "
                     f"approved by {p['approved_by']}")
    ctx.emit("\n".join(lines), asdict(v))
