"""``ykt emergency …``: payments made outside the system, with channel and reason [Art. 23]."""

from __future__ import annotations

import datetime as dt

import click

from gateway.cli.calendar_cmd import DateType
from gateway.cli.common import session_for, utcnow, vault_for
from reconciliation.emergency import CHANNELS, emergency_payments, record_emergency


@click.group("emergency")
def group() -> None:
    """Emergency or temporary relief paid through another lawful channel [Art. 23]."""


@group.command("record")
@click.option("--department", required=True, help="Department code (业务主管部门).")
@click.option("--name", required=True, help="Beneficiary's name.")
@click.option("--id-number", required=True, help="Beneficiary's resident ID.")
@click.option("--amount", required=True, help="Yuan, e.g. 500.00.")
@click.option("--paid-on", type=DateType(), required=True, help="Date paid, YYYY-MM-DD.")
@click.option("--channel", type=click.Choice(sorted(CHANNELS)), required=True)
@click.option("--channel-detail", help="e.g. the paying bank and account, or who handed out the cash.")
@click.option("--reason", required=True, help="Why the one card could not be used in time.")
@click.option("--approval", "approval_ref", required=True, help="Approval reference of the city-level department.")
@click.option("--policy", help="Policy code, if the payment belongs to one.")
@click.option("--unit", help="Implementation unit code.")
@click.option("--by", "recorded_by", default="cli", show_default=True, help="Who records.")
@click.pass_obj
def record_cmd(ctx, department, name, id_number, amount, paid_on: dt.date, channel, channel_detail, reason,
               approval_ref, policy, unit, recorded_by) -> None:
    """Record one payment made outside the system (append-only)."""
    cfg = ctx.config()
    with session_for(ctx) as s, s.begin():
        pid = record_emergency(s, cfg, vault_for(ctx, cfg), department_code=department, name=name,
                               id_number=id_number, amount=amount, paid_on=paid_on, channel=channel, reason=reason,
                               approval_ref=approval_ref, recorded_by=recorded_by, now=utcnow(), policy_code=policy,
                               unit_code=unit, channel_detail=channel_detail)
    ctx.emit(f"已记录应急发放 #{pid}\nrecorded emergency payment #{pid}", {"id": pid})


@group.command("list")
@click.option("--from", "date_from", type=DateType())
@click.option("--to", "date_to", type=DateType())
@click.pass_obj
def list_cmd(ctx, date_from, date_to) -> None:
    """List recorded emergency payments, masked."""
    cfg = ctx.config()
    with session_for(ctx) as s:
        rows = emergency_payments(s, vault_for(ctx, cfg), paid_from=date_from, paid_to=date_to)
    human = [f"{len(rows)} emergency payment(s)"] + [
        f"  #{e.id} {e.paid_on} {e.department_code} {e.name} {e.id_number} {e.amount} {e.channel_zh}/{e.channel}: "
        f"{e.reason} ({e.approval_ref})" for e in rows]
    ctx.emit("\n".join(human), [e.as_dict() for e in rows])
