"""``ykt report …``: deadline compliance [Art. 20-23, 36-37] and results fed back [Art. 21]."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from gateway.cli.calendar_cmd import DateType
from gateway.cli.common import calendar_for, session_for, utcnow, vault_for


@click.group("report")
def group() -> None:
    """Reports for compliance clerks, departments and implementation units."""


@group.command("compliance")
@click.option("--from", "date_from", type=DateType(), required=True, help="First delivery date (China), YYYY-MM-DD.")
@click.option("--to", "date_to", type=DateType(), required=True, help="Last delivery date (China), YYYY-MM-DD.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory for the CSV files, compliance.xlsx and compliance.html.")
@click.pass_obj
def compliance_cmd(ctx, date_from: dt.date, date_to: dt.date, out_dir: Path) -> None:
    """Deadline compliance per bank, county, policy and batch: CSV, XLSX and one HTML page with charts."""
    from reconciliation.compliance import OBLIGATIONS, _rate, compliance_report, group_tallies, write_report

    cfg = ctx.config()
    with session_for(ctx) as s:
        rep = compliance_report(s, cfg, calendar_for(ctx), vault_for(ctx, cfg), date_from=date_from,
                                date_to=date_to, now=utcnow())
    paths = write_report(rep, out_dir)
    rates = ", ".join(f"{k} {_rate(rep.total, k) or '—'}" for k in OBLIGATIONS)
    human = [f"{rep.total.items} item(s) delivered {date_from} .. {date_to}; on-time: {rates}",
             *[f"  {p}" for p in paths]]
    if rep.fallback_years:
        human.append(f"  warning: fallback calendar used for {', '.join(map(str, rep.fallback_years))}")
    ctx.emit("\n".join(human), {"items": rep.total.items, "files": [str(p) for p in paths],
                                "fallback_years": rep.fallback_years, "by_bank": group_tallies(rep, "bank")})


@group.command("outcomes")
@click.option("--department", help="Department code (业务主管部门).")
@click.option("--unit", help="Implementation unit code (项目实施单位).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="FILE.csv or FILE.xlsx")
@click.option("--by", "created_by", default="cli", show_default=True, help="Who exports (recorded).")
@click.pass_obj
def outcomes_cmd(ctx, department, unit, out: Path, created_by: str) -> None:
    """Every item's result for a department or unit, masked; the export is recorded [Art. 21]."""
    from reconciliation.corrections import feedback_export

    cfg = ctx.config()
    with session_for(ctx) as s, s.begin():
        name, data = feedback_export(s, cfg, vault_for(ctx, cfg), now=utcnow(), created_by=created_by,
                                     department_code=department, unit_code=unit,
                                     fmt="xlsx" if out.suffix.lower() == ".xlsx" else "csv")
    out.write_bytes(data)
    ctx.emit(f"written {out} ({name})", {"file": str(out), "name": name})


@group.command("warnings")
@click.pass_obj
def warnings_cmd(ctx) -> None:
    """The daily deadline check: what is due today or on the next working day, and what is overdue."""
    from reconciliation.deadlines import deadline_warnings

    cfg = ctx.config()
    with session_for(ctx) as s:
        ws = deadline_warnings(s, cfg, calendar_for(ctx), now=utcnow())
    ctx.emit("\n".join([f"{len(ws)} warning(s)"] + [f"  {w.zh}\n  {w.en}" for w in ws]), [w.as_dict() for w in ws])
