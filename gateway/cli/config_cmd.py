"""``ykt config …``"""

from __future__ import annotations

from pathlib import Path

import click


@click.group("config")
def group() -> None:
    """Check the configuration (counties, banks, policy list, calendars, layouts)."""


@group.command("check")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.pass_obj
def check_cmd(ctx, directory: Path | None) -> None:
    """Check DIRECTORY (default: --config) and report every problem with its file and key path.

    Exits 1 if there is any error; warnings are shown but do not fail the check.
    """
    from gateway.config import check

    directory = directory or ctx.config_dir
    cfg, problems = check(directory)
    errors = [p for p in problems if p.severity == "error"]
    if ctx.json:
        ctx.emit("", {"directory": str(directory), "ok": cfg is not None,
                      "problems": [{"file": p.file, "key_path": p.key_path, "message": p.message,
                                    "severity": p.severity} for p in problems]})
    else:
        for p in problems:
            click.echo(str(p), err=p.severity == "error")
        if cfg is not None:
            click.echo(f"配置正确 configuration OK: {len(cfg.counties)} counties, {len(cfg.banks)} banks, "
                       f"{len(cfg.policies)} policies"
                       + (f", {len(problems)} warning(s)" if problems else ""))
        else:
            click.echo(f"配置有误 configuration has {len(errors)} error(s)", err=True)
    if cfg is None:
        raise SystemExit(1)
