"""``ykt lists …``: screening lists (deceased, public employees, disabled, supported, registered poor) [Art. 18]."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.accounts_cmd import _now, admin_session
from gateway.cli.calendar_cmd import DateType
from gateway.config.model import LIST_KINDS


@click.group("lists")
def group() -> None:
    """Import and list the screening lists the validation rules compare against [Art. 18]."""


@group.command("import")
@click.argument("kind", type=click.Choice(LIST_KINDS))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--effective-from", type=DateType(), default=None, help="Date this version takes effect (default today).")
@click.option("--by", required=True, help="Who imports it.")
@click.pass_obj
def import_cmd(ctx, kind, file, effective_from, by):
    """Import FILE (CSV or XLSX) as the next version of list KIND. Every bad row is reported with
    row, column and value, and then nothing is imported."""
    from gateway.admin.lists import import_list

    now = _now()
    with admin_session(ctx) as (s, vault):
        r = import_list(s, vault, kind=kind, path=file, effective_from=effective_from or now.date(), imported_by=by,
                        now=now)
    ctx.emit(f"{kind} version {r.version}: {r.rows} rows, effective from {r.effective_from} (sha256 {r.sha256[:12]}…)",
             {"kind": kind, "version": r.version, "rows": r.rows, "effective_from": r.effective_from.isoformat(),
              "sha256": r.sha256})


@group.command("show")
@click.argument("kind", type=click.Choice(LIST_KINDS), required=False)
@click.pass_obj
def show_cmd(ctx, kind):
    """Every imported version (of KIND, or of all lists)."""
    from gateway.admin.lists import versions

    with admin_session(ctx) as (s, _v):
        vs = versions(s, kind)
        rows = [{"kind": v.kind, "version": v.version, "effective_from": v.effective_from.isoformat(), "rows": v.row_count,
                 "source": v.source_name, "imported_by": v.imported_by, "imported_at": v.imported_at.isoformat()} for v in vs]
    ctx.emit("\n".join(f"{r['kind']:<18} v{r['version']:<3} from {r['effective_from']}  {r['rows']:>8} rows  "
                       f"{r['source']} ({r['imported_by']}, {r['imported_at'][:16]})" for r in rows) or "no lists imported",
             rows)
