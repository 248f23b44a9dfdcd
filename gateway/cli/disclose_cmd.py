"""``ykt disclose …``: the policy list, payment notices and the self-service query [Art. 24-29]."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import click


def _today() -> dt.date:
    from gateway.timeutil import local_date

    return local_date(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))


def _vault(ctx, cfg):
    from gateway.privacy import PiiVault

    return PiiVault.load(cfg.keys_dir / "pii.keys")


_DATE = click.option("--on", "published_on", type=click.DateTime(["%Y-%m-%d"]), default=None,
                     help="Publication date (default: today, China time).")


@click.group("disclose")
def group() -> None:
    """Publish the policy list and payment notices; answer a citizen's own query."""


@group.command("policy-list")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@_DATE
@click.pass_obj
def policy_list_cmd(ctx, out_dir: Path, published_on) -> None:
    """The policy list 政策清单 as HTML and CSV [Art. 26-27]."""
    from gateway.admin.disclosure import write_policy_list

    cfg = ctx.config()
    paths = write_policy_list(cfg, out_dir, published_on=published_on.date() if published_on else _today())
    ctx.emit("\n".join(str(p) for p in paths), {"files": [str(p) for p in paths], "policies": len(cfg.policies)})


@group.command("notice")
@click.option("--unit", required=True, help="Implementation unit code.")
@click.option("--policy", required=True, help="Policy code.")
@click.option("--period", required=True, help="YYYY-MM")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@_DATE
@click.option("--no-pdf", is_flag=True, help="HTML only.")
@click.option("--actor", default="cli", show_default=True, help="Who publishes (for the audit trail).")
@click.pass_obj
def notice_cmd(ctx, unit: str, policy: str, period: str, out_dir: Path, published_on, no_pdf: bool,
               actor: str) -> None:
    """A payment notice 公示 (HTML and PDF) for one unit, policy and period, masked [Art. 28]."""
    from sqlalchemy.orm import Session

    from gateway import audit
    from gateway.admin.disclosure import build_notice, write_notice
    from gateway.db import make_engine
    from gateway.privacy import MaskingRules

    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        raise click.BadParameter("period must be YYYY-MM", param_hint="--period")
    cfg = ctx.config()
    day = published_on.date() if published_on else _today()
    engine = make_engine(ctx.db_url)
    try:
        with Session(engine) as s:
            notice = build_notice(s, cfg, _vault(ctx, cfg), unit=unit, policy=policy, period=period, published_on=day,
                                  rules=MaskingRules.load(ctx.config_dir))
            paths = write_notice(notice, out_dir, pdf=not no_pdf)
            audit.append(s, actor=actor, action="disclosure.published", subject=f"notice:{unit}:{policy}:{period}",
                         detail={"items": notice.count, "total": str(notice.total),
                                 "publish_from": notice.publish_from.isoformat(),
                                 "publish_to": notice.publish_to.isoformat()},
                         now=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
            s.commit()
    finally:
        engine.dispose()
    ctx.emit("\n".join(str(p) for p in paths) + f"\n{notice.count} payments, {notice.total:,.2f} yuan; "
             f"published {notice.publish_from} to {notice.publish_to}",
             {"files": [str(p) for p in paths], "items": notice.count, "total": str(notice.total),
              "publish_from": notice.publish_from, "publish_to": notice.publish_to})


@group.command("query")
@click.option("--name", required=True, help="The person's name.")
@click.option("--id", "id_number", required=True, help="The person's resident ID number.")
@click.pass_obj
def query_cmd(ctx, name: str, id_number: str) -> None:
    """A person's own payments, masked (自助查询). Unknown ID and wrong name look the same."""
    from sqlalchemy.orm import Session

    from gateway.admin.disclosure import QueryLimits, SelfServiceQuery
    from gateway.db import make_engine
    from gateway.privacy import MaskingRules

    cfg = ctx.config()
    service = SelfServiceQuery(cfg, _vault(ctx, cfg), clock=lambda: dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
                               rules=MaskingRules.load(ctx.config_dir), limits=QueryLimits.load(ctx.config_dir))
    engine = make_engine(ctx.db_url)
    try:
        with Session(engine) as s:
            lines = service.ask(s, name=name, id_number=id_number, client_key="cli")
    finally:
        engine.dispose()
    if not lines:
        human = "没有查询到记录（姓名与身份证号不符，或没有发放记录）\nno record found"
    else:
        human = "\n".join(f"{ln.period}  {ln.policy_name}  {ln.amount:,.2f} 元  {ln.state_zh}  {ln.date}  "
                          f"{ln.name} {ln.id_number} {ln.account}  {ln.unit_name}  咨询/举报 {ln.hotline}"
                          for ln in lines)
    ctx.emit(human, [ln.__dict__ for ln in lines])
