"""``ykt funding import FILE``: record the treasury's transfers to partner banks [Art. 19]."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.common import session_for, utcnow
from gateway.funding import import_funding
from formats.money import from_fen


@click.group("funding")
def group() -> None:
    """Funding of the banks' disbursement accounts: it starts each bank's credit clock [Art. 19-20]."""


@group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def import_cmd(ctx, file: Path) -> None:
    """Import a funding CSV (代发银行, 金额, 到账时间, 起息日, 流水号[, 批次]): all rows or none.

    A transfer already on record identically is skipped; one on record with a difference refuses the file.
    """
    cfg = ctx.config()
    with session_for(ctx) as s, s.begin():
        r = import_funding(s, cfg, file.read_bytes(), source=str(file), now=utcnow())
    human = (f"recorded {r.recorded} transfer(s), {from_fen(r.total_fen)} yuan; {r.repeated} already on record"
             + (f"; {r.unattributed} without a batch (they start no credit clock)" if r.unattributed else ""))
    ctx.emit(f"已记录拨款 {r.recorded} 笔\n{human}", r.as_dict())
