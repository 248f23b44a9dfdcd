"""The migrations create everything the models declare (on SQLite and PostgreSQL), and downgrade cleanly."""

import importlib
import subprocess
import sys

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gateway.db.models import Base

MODEL_MODULES = ("gateway.db.models", "gateway.admin.models", "gateway.admin.auth", "reconciliation.emergency",
                 "reconciliation.corrections")


def test_models_match_migrated_schema(engine):
    for m in MODEL_MODULES:
        importlib.import_module(m)
    with engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), Base.metadata)

    def op(d):
        return (d[0] if isinstance(d, tuple) else d[0][0])
    missing = [d for d in diff if op(d).startswith(("add_", "modify_")) and not _checked_set_wise(engine, d)]
    # tables and indexes that exist only in migrations (Core tables of audit, rekey window, …) are fine;
    # something a model declares that no migration creates is not
    assert not missing, missing


SET_WISE = {("item_events", "items.id"), ("item_bank_dates", "items.id"), ("outbound_file_items", "items.id"),
            ("items", "batches.id"), ("outbound_file_items", "outbound_files.id"), ("item_events", "outbound_files.id"),
            ("item_events", "inbound_files.id"), ("item_bank_dates", "inbound_files.id")}


def _checked_set_wise(engine, d) -> bool:
    """On PostgreSQL these references are checked by a statement trigger instead of a foreign key
    (migrations 0012 and 0013); test_immutability shows an orphan refused on both databases."""
    if engine.dialect.name != "postgresql" or not isinstance(d, tuple) or d[0] != "add_fk":
        return False
    fk = d[1]
    return {(fk.parent.name, e.target_fullname) for e in fk.elements} <= SET_WISE


def test_single_head_and_full_downgrade(tmp_path):
    from alembic.script import ScriptDirectory

    from gateway.db import migrate

    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    url = f"sqlite:///{tmp_path / 'd.db'}"
    migrate.upgrade(url)
    assert migrate.downgrade(url, "base") == "base"
    e = sa.create_engine(url)
    assert set(sa.inspect(e).get_table_names()) <= {"alembic_version"}


def test_the_cli_and_the_gateway_start_without_loading_alembic():
    """Alembic is loaded when a migration runs, not by every ``ykt`` command or gateway process (migrate.py)."""
    code = ("import sys, gateway.cli.main, gateway.db, gateway.service.cycle; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_latest_migration_downgrades_and_upgrades_again(db_url):
    """On both databases (the full downgrade above runs on SQLite only)."""
    from gateway.db import migrate

    head = migrate.upgrade(db_url)
    assert migrate.downgrade(db_url, "-1") != head
    assert migrate.upgrade(db_url) == head
