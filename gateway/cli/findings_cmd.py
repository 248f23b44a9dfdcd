"""``ykt findings …``: validation findings for the department, and decisions on review findings [Art. 18]."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.accounts_cmd import _now, admin_session


@click.group("findings")
def group() -> None:
    """Findings of a batch as XLSX / HTML; clear or confirm review findings."""


@group.command("report")
@click.argument("batch_id", type=int)
@click.option("--xlsx", type=click.Path(dir_okay=False, path_type=Path), help="Write an Excel workbook here.")
@click.option("--html", type=click.Path(dir_okay=False, path_type=Path), help="Write an HTML page here.")
@click.pass_obj
def report_cmd(ctx, batch_id, xlsx, html):
    """Write the findings of BATCH_ID for the department (masked personal data only)."""
    from gateway.admin import findings
    from gateway.db.models import Batch

    if not xlsx and not html:
        raise click.UsageError("give --xlsx FILE and/or --html FILE")
    with admin_session(ctx) as (s, vault):
        if s.get(Batch, batch_id) is None:
            raise click.BadParameter(f"no batch {batch_id}", param_hint="BATCH_ID")
        n = 0
        if xlsx:
            n = findings.write_xlsx(s, batch_id, xlsx, vault)
        if html:
            text = findings.render_html(s, batch_id, vault)
            html.write_text(text, encoding="utf-8")
            n = len(findings.batch_findings(s, batch_id))
    ctx.emit(f"{n} findings written" + "".join(f" to {p}" for p in (xlsx, html) if p), {"findings": n})


@group.command("decide")
@click.argument("finding_id", type=int)
@click.argument("decision", type=click.Choice(["cleared", "confirmed"]))
@click.option("--by", required=True, help="Who decides.")
@click.option("--note", help="What was checked (required to clear).")
@click.pass_obj
def decide_cmd(ctx, finding_id, decision, by, note):
    """Record a decision on a review finding (kept forever; the latest counts)."""
    from gateway.admin import findings

    with admin_session(ctx) as (s, _v):
        decision_id = findings.decide(s, finding_id=finding_id, decision=decision, by=by, note=note, now=_now()).id
    # the id is read inside the session: after the commit the row is expired and detached
    ctx.emit(f"finding {finding_id}: {decision} by {by}", {"decision_id": decision_id, "finding_id": finding_id,
                                                          "decision": decision})
