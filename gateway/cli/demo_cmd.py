"""``ykt demo``: the whole cycle on SQLite with simulated banks, ending with a summary."""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.command("demo")
@click.option("--var", "var_dir", default="var", show_default=True, type=click.Path(path_type=Path),
              help="Where the demo writes (under DIR/demo/, replaced on each run).")
@click.option("--people", default=120, show_default=True, help="Beneficiaries per roster.")
@click.option("--seed", default=7, show_default=True, help="Same seed, same story.")
@click.pass_obj
def command(ctx, var_dir: Path, people: int, seed: int) -> None:
    """Run the main job end to end on SQLite with three simulated banks on loopback: rosters, validation,
    signed files over SFTP and HTTPS, the banks' answers across several (simulated) working days,
    reconciliation, and the reports. Everything it writes stays under var/demo/."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from gateway.demo import run_demo

    console = Console()
    started = time.perf_counter()
    steps = 12
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=False) as bar:
        task = bar.add_task("yikatong demo", total=steps)

        def say(text: str) -> None:
            bar.update(task, description=text, advance=1)

        result = run_demo(var_dir.resolve(), ctx.config_dir.resolve(), people=people, seed=seed, progress=say)
        bar.update(task, completed=steps, description="完成 done")
    if result.refused_roster:
        console.print("\n[bold]A roster with a typing mistake was refused whole, as it should be:[/bold]")
        console.print(result.refused_roster)
    table = Table(title="批次证明 batch proof: sent = settled + rejected + returned + outstanding")
    cols = [("batch", "批次"), ("items", "条数"), ("rejected_by_validation", "校验拒绝"), ("held_for_review", "待复核"),
            ("sent", "已发送"), ("settled", "已到账"), ("rejected", "银行退回"), ("returned", "跨行退汇"),
            ("outstanding", "未决"), ("amount_settled", "到账金额"), ("balances", "平衡")]
    for key, zh in cols:
        table.add_column(f"{zh}\n{key}", justify="left" if key == "batch" else "right")
    for row in result.rows:
        table.add_row(*[("yes" if row[k] else "NO") if k == "balances" else str(row[k]) for k, _ in cols])
    console.print(table)
    console.print(f"reconciliation exceptions queued 对账异常: {result.exceptions}")
    console.print("\n[bold]Files and reports 文件与报告[/bold] (open them):")
    for what, paths in result.paths.items():
        if not paths:
            continue
        shown = paths if len(paths) <= 4 else paths[:3]
        console.print(f"  {what}: " + ", ".join(str(p) for p in shown) + (f" … ({len(paths)} files)" if len(paths) > 4 else ""))
    console.print(f"\n[bold]{'OK' if result.ok else 'NOT BALANCED'}[/bold] in {time.perf_counter() - started:.0f} s. "
                  f"Database: {var_dir}/demo/yikatong.db")
    if not result.ok:
        raise SystemExit(1)
