"""``ykt recon …``: the batch proof, the exceptions queue and the department's correction queue."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import sqlalchemy as sa

from gateway.cli.common import calendar_for, find_batch, session_for, vault_for
from gateway.db.models import ReconException
from reconciliation.proof import batch_proof


@click.group("recon")
def group() -> None:
    """Reconciliation: does every batch balance, what matched nothing, what must be corrected."""


@group.command("batch")
@click.argument("batch")
@click.option("--deadlines/--no-deadlines", default=True, show_default=True, help="Also show the deadlines [Art. 20-22].")
@click.pass_obj
def batch_cmd(ctx, batch: str, deadlines: bool) -> None:
    """Print the proof of BATCH (id or ref): sent = settled + rejected + returned + outstanding.

    Exits 1, loudly, if it does not balance.
    """
    from gateway.cli.common import utcnow
    from reconciliation.deadlines import OBLIGATIONS, STATUS_LABEL, batch_deadlines

    with session_for(ctx) as s:
        b = find_batch(s, batch)
        p = batch_proof(s, b.id)
        machine = p.as_dict()
        lines = [f"批次 batch {p.ref} (id {p.batch_id})"]
        for k in ("submitted", "rejected_by_validation", "held_for_review", "awaiting_dispatch", "sent", "settled",
                  "rejected", "returned", "outstanding"):
            t = getattr(p, k)
            lines.append(f"  {k:<24} {t.count:>9}  {t.as_dict()['amount']:>16}")
        lines.append(f"  sent {p.sent.count} = settled {p.settled.count} + rejected {p.rejected.count} + returned "
                     f"{p.returned.count} + outstanding {p.outstanding.count}")
        if deadlines:
            cfg = ctx.config()
            d = batch_deadlines(s, cfg, calendar_for(ctx), b.id, now=utcnow())
            machine["deadlines"] = {k: {"status": d.status(k), "latest_due": d.due_dates()[k],
                                        "counts": d.tallies.counts[k]} for k in OBLIGATIONS}
            machine["fallback_years"] = sorted(d.fallback_years)
            for k in OBLIGATIONS:
                st = d.status(k)
                due = d.due_dates()[k]
                lines.append(f"  {k:<12} {STATUS_LABEL[st][0]} {STATUS_LABEL[st][1]:<15} latest due {due or '—'}")
            if d.fallback_years:
                lines.append(f"  (fallback calendar used for {', '.join(map(str, sorted(d.fallback_years)))})")
    if p.balances:
        ctx.emit("\n".join(lines + ["平衡 BALANCES"]), machine)
        return
    lines += ["", "!" * 60, "!!  批次不平衡 THIS BATCH DOES NOT BALANCE", *[f"!!  {a}" for a in p.anomalies], "!" * 60]
    ctx.emit("\n".join(lines), machine)
    click.echo(f"ykt: batch {p.ref} does not balance / 批次 {p.ref} 不平衡", err=True)
    sys.exit(1)


@group.command("exceptions")
@click.option("--all", "show_all", is_flag=True, help="Include resolved exceptions.")
@click.option("--limit", default=200, show_default=True)
@click.pass_obj
def exceptions_cmd(ctx, show_all: bool, limit: int) -> None:
    """List bank lines that matched no item exactly (never dropped), newest first."""
    with session_for(ctx) as s:
        q = sa.select(ReconException).order_by(ReconException.id.desc()).limit(limit)
        if not show_all:
            q = q.where(ReconException.resolved.is_(False))
        rows = list(s.scalars(q))
        total = s.scalar(sa.select(sa.func.count()).select_from(ReconException).where(
            sa.true() if show_all else ReconException.resolved.is_(False)))
    machine = [{"id": e.id, "kind": e.kind, "inbound_file_id": e.inbound_file_id, "line": e.line,
                "reference": e.reference, "detail": json.loads(e.detail) if e.detail.startswith("{") else e.detail,
                "created_at": e.created_at, "resolved": e.resolved} for e in rows]
    human = [f"{total} exception(s){'' if show_all else ' open'} / 待处理异常 {total} 条"]
    for m in machine:
        d = m["detail"] if isinstance(m["detail"], dict) else {}
        human.append(f"  #{m['id']} {m['kind']:<18} file {m['inbound_file_id']} line {m['line']} ref {m['reference']}: "
                     f"{d.get('zh', '')} / {d.get('en', m['detail'])}")
    ctx.emit("\n".join(human), {"total": total, "exceptions": machine})


@group.command("corrections")
@click.option("--department", help="Department code (业务主管部门).")
@click.option("--unit", help="Implementation unit code (项目实施单位).")
@click.option("--batch", help="Batch id or ref.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the queue as a recorded feedback export (.csv or .xlsx) [Art. 21-22].")
@click.option("--by", "created_by", default="cli", show_default=True, help="Who exports (recorded).")
@click.pass_obj
def corrections_cmd(ctx, department, unit, batch, out: Path | None, created_by: str) -> None:
    """The correction queue: failed items not yet resubmitted, with the reason in plain words [Art. 22]."""
    from gateway.cli.common import utcnow
    from reconciliation.corrections import CORRECTIONS, correction_queue, feedback_export

    cfg = ctx.config()
    vault = vault_for(ctx, cfg)
    with session_for(ctx) as s, s.begin():
        batch_id = find_batch(s, batch).id if batch else None
        q = correction_queue(s, cfg, vault, department_code=department, unit_code=unit, batch_id=batch_id)
        if out is not None:
            fmt = "xlsx" if out.suffix.lower() == ".xlsx" else "csv"
            _, data = feedback_export(s, cfg, vault, now=utcnow(), created_by=created_by, department_code=department,
                                      unit_code=unit, batch_id=batch_id, kind=CORRECTIONS, fmt=fmt)
            out.write_bytes(data)
    human = [f"待更正 {len(q)} 笔 / {len(q)} item(s) to correct"]
    for e in q:
        human.append(f"  {e.batch_ref} row {e.row} {e.end_to_end_id} {e.name} {e.id_number} {e.amount} "
                     f"[{e.state}] {e.reason_code or ''} {e.reason_zh} / {e.reason_en}\n      {e.explain}")
    if out is not None:
        human.append(f"written {out}")
    ctx.emit("\n".join(human), [e.as_dict() for e in q])


@group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bank", "bank_id", required=True, help="The bank that sent the file (its id in banks.toml).")
@click.option("--signature", "sig_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Detached signature (default: FILE.p7s or FILE.sm2 beside it).")
@click.pass_obj
def import_cmd(ctx, file: Path, bank_id: str, sig_path: Path | None) -> None:
    """Apply a bank report by hand (a file that came by e-mail or on a disk; the service polls by itself).

    The file is stored first (kept even if it is refused), verified against the bank's pinned key,
    parsed and applied; applying the same file again changes nothing.
    """
    from gateway.cli.common import utcnow, vault_for
    from gateway.errors import YktError
    from gateway.inbound.process import process_inbound
    from gateway.inbound.store import store_inbound

    cfg = ctx.config()
    if bank_id not in cfg.banks:
        raise YktError(f"unknown bank {bank_id!r}; banks: {', '.join(sorted(cfg.banks))}", zh=f"没有代发银行 {bank_id}")
    if sig_path is None:
        for ext in ("p7s", "sm2"):
            if file.with_name(f"{file.name}.{ext}").exists():
                sig_path = file.with_name(f"{file.name}.{ext}")
    vault = vault_for(ctx, cfg)
    with session_for(ctx) as s, s.begin():
        row, new = store_inbound(s, bank_id=bank_id, name=file.name, data=file.read_bytes(),
                                 signature=sig_path.read_bytes() if sig_path else None,
                                 inbound_dir=Path("var") / "inbound", now=utcnow())
        if not new and row.status != "stored":
            ctx.emit(f"already imported on {row.received_at:%Y-%m-%d %H:%M} UTC ({row.status}); nothing changed",
                     {"file": str(file), "status": row.status, "new": False})
            return
        stats = process_inbound(s, cfg, row, vault=vault, now=utcnow())
        status, error = row.status, row.error
    if stats is None:
        ctx.emit(f"REFUSED (kept as received): {error}", {"file": str(file), "status": status, "error": error})
        raise SystemExit(1)
    ctx.emit(f"applied {file.name}: {stats.applied} change(s), {stats.unchanged} unchanged, "
             f"{stats.exceptions} to the exceptions queue", {"file": str(file), "status": status, **stats.as_dict()})
