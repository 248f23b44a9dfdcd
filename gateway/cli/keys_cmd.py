"""``ykt keys …``: test keys and certificates for the gateway and the simulated banks."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("keys")
def group() -> None:
    """Keys and certificates (test keys for simulators and the demo; never production keys)."""


@group.command("init")
@click.option("--keys-dir", type=click.Path(path_type=Path), default=None,
              help="Where to write (default: keys_dir of banks.toml, i.e. var/keys).")
@click.pass_obj
def init_cmd(ctx, keys_dir: Path | None) -> None:
    """Create, once, every key the gateway and each simulated bank need, at the paths banks.toml names.
    Existing files are kept."""
    from simulators.keys import ensure_keys

    config = ctx.config()
    paths = ensure_keys(keys_dir or config.keys_dir, config)
    ctx.emit(f"keys ready in {paths.keys_dir} ({len(paths.banks)} banks)",
             {"keys_dir": str(paths.keys_dir), "banks": sorted(paths.banks)})
