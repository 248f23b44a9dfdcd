"""``ykt db …``"""

from __future__ import annotations

import click


@click.group("db")
def group() -> None:
    """Create or migrate the database schema."""


@group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_obj
def upgrade_cmd(ctx, revision: str) -> None:
    """Create the schema, or migrate it to the latest revision. Safe to run repeatedly."""
    from gateway.db import upgrade

    rev = upgrade(ctx.db_url, revision)
    ctx.emit(f"database at revision {rev}: {ctx.db_url}", {"revision": rev, "db": ctx.db_url})
