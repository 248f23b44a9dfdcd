"""``ykt pii-keys …``: the personal-data encryption key [Art. 30-35]. (``ykt keys`` is for banks.)"""

from __future__ import annotations

from pathlib import Path

import click


def _key_file(ctx, explicit: Path | None) -> Path:
    if explicit:
        return explicit
    try:
        return ctx.config().keys_dir / "pii.keys"
    except Exception:  # noqa: BLE001 - before bank keys exist the config may not load yet
        return (Path(ctx.config_dir) / "../var/keys").resolve() / "pii.keys"


_FILE = click.option("--file", "key_file", type=click.Path(dir_okay=False, path_type=Path),
                     help="Key file (default: <keys_dir>/pii.keys, i.e. var/keys/pii.keys).")


@click.group("pii-keys")
def group() -> None:
    """Create and rotate the key that encrypts names, ID numbers and account numbers."""


@group.command("init")
@_FILE
@click.pass_obj
def init_cmd(ctx, key_file: Path | None) -> None:
    """Create the key file with a first key (mode 0600). Refuses to overwrite one."""
    from gateway.privacy import init_key_file

    path = _key_file(ctx, key_file)
    kid = init_key_file(path)
    ctx.emit(f"personal-data key {kid} created in {path}; back this file up, without it the data is lost",
             {"key_id": kid, "file": str(path)})


@group.command("rotate")
@_FILE
@click.option("--batch-size", default=500, show_default=True, help="Rows re-encrypted per transaction.")
@click.option("--resume", is_flag=True, help="Do not add a key; finish re-encrypting to the current one.")
@click.option("--actor", default="ops", show_default=True, help="Who rotates (for the audit trail).")
@click.pass_obj
def rotate_cmd(ctx, key_file: Path | None, batch_size: int, resume: bool, actor: str) -> None:
    """Add a new current key, then re-encrypt every ciphertext to it in batches.

    Old keys stay in the file until nothing uses them (the first line also keys the blind index
    and must always stay). Interrupted? Run again with --resume.
    """
    import datetime as dt
    import os

    from sqlalchemy.orm import Session

    from gateway import audit
    from gateway.db import make_engine
    from gateway.privacy import KEY_ENV, PiiKeyError, PiiVault, add_key, reencrypt, remaining_under_old_keys

    if os.environ.get(KEY_ENV):
        raise PiiKeyError(f"keys come from ${KEY_ENV}: rotate the key file and update the environment instead")
    path = _key_file(ctx, key_file)
    if not path.exists():
        raise PiiKeyError(f"no key file {path}: run `ykt pii-keys init` first")
    now = lambda: dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)  # noqa: E731 - the CLI's clock
    engine = make_engine(ctx.db_url)
    try:
        if not resume:
            kid = add_key(path)
            with Session(engine) as s, s.begin():
                audit.append(s, actor=actor, action="pii.key_added", subject=f"pii-key:{kid}", detail={}, now=now())
        vault = PiiVault.from_text(path.read_text(encoding="ascii"))
        counted: dict[str, int] = {}

        def progress(table: str, n: int) -> None:
            counted[table] = counted.get(table, 0) + n
            if not ctx.json:
                click.echo(f"\r{table}: {counted[table]} rows", nl=False, err=True)

        stats = reencrypt(engine, vault, batch_size=batch_size, opened_by=actor, progress=progress)
        if counted and not ctx.json:
            click.echo("", err=True)
        left = remaining_under_old_keys(engine, vault)
        with Session(engine) as s, s.begin():
            audit.append(s, actor=actor, action="pii.reencrypted", subject=f"pii-key:{vault.current_key_id}",
                         detail={"values": stats.values_reencrypted, "rows": stats.rows_seen, "tables": stats.tables},
                         now=now())
    finally:
        engine.dispose()
    ctx.emit(f"current key {vault.current_key_id}: {stats.values_reencrypted} values re-encrypted in "
             f"{stats.rows_seen} rows; left under old keys: {sum(left.values())}",
             {"key_id": vault.current_key_id, "reencrypted": stats.values_reencrypted, "rows": stats.rows_seen,
              "tables": stats.tables, "left_under_old_keys": left})
