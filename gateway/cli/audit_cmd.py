"""``ykt audit …``: check and export the tamper-evident audit trail."""

from __future__ import annotations

import sys
from pathlib import Path

import click


def _keys(ctx, key_file: Path | None):
    from gateway.audit import AuditKeys

    if key_file:
        return AuditKeys.from_text(key_file.read_text(encoding="ascii"))
    try:
        default = ctx.config().keys_dir / "audit.keys"
    except Exception:  # noqa: BLE001 - a broken config must not stop an auditor from verifying
        default = None
    return AuditKeys.load(default)


@click.group("audit")
def group() -> None:
    """The audit trail: every change, decision and file in or out, hash-chained."""


@group.command("verify")
@click.option("--file", "export_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Check an export (jsonl or csv) instead of the database.")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Audit key file (default: $YKT_AUDIT_KEY or <keys_dir>/audit.keys).")
@click.option("--expect-head", metavar="SEQ:HASH", help="The head an auditor recorded earlier; fail unless the "
              "chain still contains it.")
@click.pass_obj
def verify_cmd(ctx, export_file: Path | None, key_file: Path | None, expect_head: str | None) -> None:
    """Recompute the chain; exit 1 naming every edited, deleted or reordered entry."""
    from gateway import audit

    keys = _keys(ctx, key_file)
    if export_file:
        fmt = "csv" if export_file.suffix.lower() == ".csv" else "jsonl"
        with export_file.open(encoding="utf-8", newline="") as f:
            seen = list(audit.read_export(f, fmt))
        breaks = audit.verify_entries(seen, keys)
        last = (seen[-1].seq, seen[-1].hash) if seen else (0, audit.GENESIS)
    else:
        from sqlalchemy.orm import Session

        from gateway.db import make_engine

        engine = make_engine(ctx.db_url)
        try:
            with Session(engine) as s:
                breaks = audit.verify(s, keys)
                last = audit.head(s)
                seen = None
                if expect_head:
                    seq = int(expect_head.split(":", 1)[0])
                    seen = {e.seq: e.hash for e in audit.entries(s, after=seq - 1) if e.seq == seq}
        finally:
            engine.dispose()
    if expect_head:
        seq_s, _, h = expect_head.partition(":")
        table = seen if isinstance(seen, dict) else {e.seq: e.hash for e in seen}
        if table.get(int(seq_s)) != h:
            breaks.append(audit.Break(int(seq_s), "head", "the recorded head is no longer in the chain"))
    machine = {"ok": not breaks, "entries": last[0], "head": f"{last[0]}:{last[1]}", "keyed": keys is not None,
               "breaks": [b.__dict__ for b in breaks]}
    if breaks:
        ctx.emit("\n".join(str(b) for b in breaks) + f"\naudit trail BROKEN: {len(breaks)} problem(s)", machine)
        sys.exit(1)
    ctx.emit(f"audit trail intact: {last[0]} entries, head {last[0]}:{last[1]}"
             + ("" if keys else " (no audit key: plain SHA-256 chain)"), machine)


@group.command("export")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output file.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default=None,
              help="Default: from the file's extension (.csv or .jsonl).")
@click.pass_obj
def export_cmd(ctx, out: Path, fmt: str | None) -> None:
    """Write the whole chain, hashes included, for auditors."""
    from sqlalchemy.orm import Session

    from gateway import audit
    from gateway.db import make_engine

    fmt = fmt or ("csv" if out.suffix.lower() == ".csv" else "jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(ctx.db_url)
    try:
        with Session(engine) as s, out.open("w", encoding="utf-8", newline="") as f:
            n = audit.export(s, f, fmt)
            seq, h = audit.head(s)
    finally:
        engine.dispose()
    ctx.emit(f"{n} entries written to {out}; head {seq}:{h}", {"entries": n, "out": str(out), "head": f"{seq}:{h}"})
