"""Alembic, driven from code: ``upgrade(url)`` creates or migrates the schema. No alembic.ini.

Alembic is imported when a migration runs, not with this module: it takes a quarter of a second to
load, which every ``ykt`` command and gateway process would otherwise pay.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gateway.db.engine import database_url, make_engine

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _run(action: str, url: str | None, revision: str) -> str:
    from alembic import command

    url = database_url(url)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            getattr(command, action)(cfg, revision)
        from alembic.runtime.migration import MigrationContext

        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() or "base"
    finally:
        engine.dispose()


def upgrade(url: str | None = None, revision: str = "head") -> str:
    """Bring the database at ``url`` to ``revision``; returns the revision now in force."""
    return _run("upgrade", url, revision)


def downgrade(url: str | None, revision: str) -> str:
    """Take the database at ``url`` back to ``revision`` ("base" drops everything)."""
    return _run("downgrade", url, revision)
