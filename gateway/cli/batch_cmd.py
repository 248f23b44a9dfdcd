"""``ykt batch …``: submit a department's roster, look at a batch, its findings and its proof."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gateway.cli.common import find_batch, progress_bar, session_for, utcnow, vault_for


@click.group("batch")
def group() -> None:
    """Submit rosters as immutable batches; show their findings, status and proof."""


@group.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--policy", required=True, help="Policy code from the policy list (e.g. GDDL).")
@click.option("--period", required=True, help="Period paid, YYYY-MM.")
@click.option("--by", "submitted_by", default="cli", show_default=True, help="Who submits (recorded) [Art. 16].")
@click.pass_obj
def submit_cmd(ctx, file: Path, policy: str, period: str, submitted_by: str) -> None:
    """Import FILE (CSV in UTF-8 or GBK, or XLSX; columns in the README) as one batch and validate it.

    The roster is read whole or not at all: any problem is listed with its row, column and value,
    and nothing is imported. The batch can never be changed afterwards (Art. 15); corrections are
    new batches (`ykt batch resubmit`).
    """
    from gateway.intake.submit import submit_roster

    cfg = ctx.config()
    vault = vault_for(ctx, cfg)
    data = file.read_bytes()
    lines = max(1, data.count(b"\n"))
    with session_for(ctx) as s, progress_bar(lines, f"导入 {file.name}", enabled=not ctx.json) as bar:
        with s.begin():
            r = submit_roster(s, cfg, vault, data=data, source_name=str(file), policy_code=policy, period=period,
                              submitted_by=submitted_by, now=utcnow(), progress=bar.advance)
    ctx.emit(f"批次 batch {r.ref} (id {r.batch_id}): {r.item_count} items, {r.total_fen / 100:.2f} yuan — "
             f"validated {r.validated}, rejected {r.rejected}, held for review {r.held_for_review}, "
             f"findings {r.findings}", r.__dict__)


@group.command("show")
@click.argument("batch")
@click.pass_obj
def show_cmd(ctx, batch: str) -> None:
    """The batch, its status counts and its proof (sent = settled + rejected + returned + outstanding)."""
    from reconciliation.proof import batch_proof

    with session_for(ctx) as s:
        b = find_batch(s, batch)
        proof = batch_proof(s, b.id)
        info = {"id": b.id, "ref": b.ref, "policy": b.policy_code, "period": b.period, "county": b.county_code,
                "department": b.department_code, "submitted_by": b.submitted_by, "submitted_at": str(b.submitted_at),
                "sha256": b.content_sha256, "items": b.item_count, "total": f"{b.total_fen / 100:.2f}",
                "corrects_batch_id": b.corrects_batch_id, "proof": proof.as_dict()}
    if ctx.json:
        ctx.emit("", info)
        return
    click.echo(f"batch {b.ref} (id {b.id}) policy {b.policy_code} period {b.period}, submitted by {b.submitted_by} "
               f"at {b.submitted_at} UTC, sha256 {b.content_sha256[:16]}…")
    p = info["proof"]
    for k in ("submitted", "rejected_by_validation", "held_for_review", "awaiting_dispatch", "sent", "settled",
              "rejected", "returned", "outstanding"):
        click.echo(f"  {k:<24}{p[k]['count']:>10}{p[k]['amount']:>16}")
    click.echo("  proof: " + ("balances 平衡" if p["balances"] else "DOES NOT BALANCE 不平衡: " + "; ".join(p["anomalies"])))


@group.command("report")
@click.argument("batch")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write the findings as XLSX and HTML into this folder, for the department.")
@click.pass_obj
def report_cmd(ctx, batch: str, out_dir: Path | None) -> None:
    """Validation findings of a batch, for the department [Art. 18]: row, code, severity, message (masked)."""
    from gateway.admin.findings import batch_findings, render_html, write_xlsx

    with session_for(ctx) as s:
        b = find_batch(s, batch)
        views = batch_findings(s, b.id)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            xlsx = out_dir / f"findings-{b.ref}.xlsx"
            write_xlsx(s, b.id, xlsx)
            html = out_dir / f"findings-{b.ref}.html"
            html.write_text(render_html(s, b.id), encoding="utf-8")
            click.echo(f"wrote {xlsx} and {html}", err=True)
    rows = [{k: getattr(v, k) for k in v.__dataclass_fields__} for v in views]
    if ctx.json:
        ctx.emit("", {"batch": b.ref, "findings": rows})
        return
    click.echo(f"batch {b.ref}: {len(rows)} finding(s)")
    for r in rows:
        click.echo("  " + "  ".join(str(r[k]) for k in r if r[k] is not None))


@group.command("resubmit")
@click.argument("batch")
@click.option("--corrections", "corrections", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A roster (CSV/XLSX) with one more column, 原编号 (EndToEndId) or 原行号 (row), naming the "
                   "rejected or returned item each row corrects.")
@click.option("--by", "submitted_by", default="cli", show_default=True, help="Who submits (recorded).")
@click.pass_obj
def resubmit_cmd(ctx, batch: str, corrections: Path, submitted_by: str) -> None:
    """Correct failed items of BATCH as a new batch linked item by item to the originals [Art. 22].

    Only items rejected by validation or by the bank, or returned, can be corrected, each once; the
    originals can never be paid again. The new items are validated like any roster.
    """
    from reconciliation.resubmit import resubmit_batch

    cfg = ctx.config()
    vault = vault_for(ctx, cfg)
    with session_for(ctx) as s, s.begin():
        b = find_batch(s, batch)
        r = resubmit_batch(s, cfg, vault, original_batch_id=b.id, corrections=corrections.read_bytes(),
                           source_name=str(corrections), submitted_by=submitted_by, now=utcnow())
    d = r.as_dict()
    ctx.emit(f"更正批次 correction batch {d.get('ref', '')}: {json.dumps(d, ensure_ascii=False, default=str)}", d)
