"""``ykt batch …``: submit a department's roster, look at a batch, its findings and its proof."""

from __future__ import annotations

import json
from pathlib import Path

import click
import sqlalchemy as sa

from gateway.cli.common import progress_bar, session_for, utcnow, vault_for
from gateway.db.models import Batch, Finding, Item
from gateway.errors import YktError


def _batch(session, ref: str) -> Batch:
    q = sa.select(Batch).where(Batch.ref == ref)
    if ref.isdigit():
        q = sa.select(Batch).where(sa.or_(Batch.ref == ref, Batch.id == int(ref)))
    b = session.scalars(q).first()
    if b is None:
        raise YktError(f"no batch {ref!r}", zh=f"没有批次 {ref}")
    return b


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
        b = _batch(s, batch)
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
              help="Also write the findings as XLSX and HTML into this folder.")
@click.pass_obj
def report_cmd(ctx, batch: str, out_dir: Path | None) -> None:
    """Validation findings of a batch, for the department [Art. 18]: code, severity, message, row."""
    from gateway.privacy import mask_id, mask_name

    cfg = ctx.config()
    vault = vault_for(ctx, cfg)
    with session_for(ctx) as s:
        b = _batch(s, batch)
        rows = s.execute(sa.select(Item.seq, Item.name_enc, Item.id_number_enc, Finding.code, Finding.severity,
                                   Finding.message_zh, Finding.message_en)
                         .join(Item, Item.id == Finding.item_id).where(Finding.batch_id == b.id)
                         .order_by(Item.seq, Finding.id)).all()
        findings = [{"row": seq, "name": mask_name(vault.decrypt(n)), "id_number": mask_id(vault.decrypt(i)),
                     "code": code, "severity": sev, "zh": zh, "en": en}
                    for seq, n, i, code, sev, zh, en in rows]
    if out_dir is not None:
        try:
            from gateway.admin.findings_report import write_findings_reports
        except ImportError:
            write_findings_reports = None
        if write_findings_reports is None:
            raise YktError("findings reports (XLSX/HTML) are not available in this build")
        paths = write_findings_reports(findings, batch_ref=b.ref, out_dir=out_dir)
        click.echo("wrote " + ", ".join(map(str, paths)), err=True)
    if ctx.json:
        ctx.emit("", {"batch": b.ref, "findings": findings})
        return
    click.echo(f"batch {b.ref}: {len(findings)} finding(s)")
    for f in findings:
        click.echo(f"  row {f['row']:>6} {f['severity']:<7} {f['code']:<24} {f['name']} {f['id_number']}  "
                   f"{f['zh']} / {f['en']}")
