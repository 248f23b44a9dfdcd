"""audit trail (hash-chained, append-only) and the personal-data re-encryption window

Revision ID: 0004
Revises: 0003_web

* ``audit_log`` + one-row ``audit_head`` (see ``gateway.audit``); UPDATE and DELETE on the log are
  refused by trigger, the head may only move forward.
* ``pii_rekey_window``: the immutability triggers of the tables holding ciphertext (Art. 15) are
  replaced by ones that allow exactly one kind of UPDATE: while a row exists in
  ``pii_rekey_window`` *visible to the updating transaction*, and only when no column other than
  the ``*_enc`` ciphertext columns changes. ``gateway.privacy.reencrypt`` inserts that row and
  deletes it again inside each of its transactions, so no other connection ever sees it (MVCC in
  PostgreSQL; SQLite's single writer). Amounts, hashes, keys and every other column stay immutable.
"""
from alembic import op
import sqlalchemy as sa

from gateway.db import immutability

revision = "0004"
down_revision = "0003_web"
branch_labels = None
depends_on = None

# frozen here: the tables holding ciphertext when this migration was written
CIPHER_TABLES = ("items", "beneficiaries", "accounts", "proxies", "list_entries")
AUDIT_MSG = "audit_log is append-only"


def _columns(table: str) -> list[str]:
    return [c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)]


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_subject", "audit_log", ["subject"])
    op.create_index("ix_audit_log_action_at", "audit_log", ["action", "at"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_head_single_row"),
    )
    op.execute(f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{'0' * 64}')")
    op.create_table(
        "pii_rekey_window",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("opened_by", sa.String(64), nullable=False),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for t in ("audit_log",):
            op.execute(f"CREATE TRIGGER {t}_no_update BEFORE UPDATE ON {t} BEGIN SELECT RAISE(ABORT, '{AUDIT_MSG}'); END")
            op.execute(f"CREATE TRIGGER {t}_no_delete BEFORE DELETE ON {t} BEGIN SELECT RAISE(ABORT, '{AUDIT_MSG}'); END")
        op.execute("CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
                   "BEGIN SELECT RAISE(ABORT, 'audit_head cannot be deleted'); END")
        op.execute("CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head WHEN NEW.seq < OLD.seq "
                   "OR NEW.id <> OLD.id BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward'); END")
        for t in CIPHER_TABLES:
            same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in _columns(t) if not c.endswith("_enc"))
            op.execute(f"DROP TRIGGER IF EXISTS {t}_no_update")
            op.execute(f"CREATE TRIGGER {t}_no_update BEFORE UPDATE ON {t} "
                       f"WHEN NOT (EXISTS (SELECT 1 FROM pii_rekey_window) AND {same}) "
                       f"BEGIN SELECT RAISE(ABORT, '{t}: {immutability.MESSAGE}'); END")
    elif dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION ykt_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION '%: append-only, % refused', TG_TABLE_NAME, TG_OP "
            "USING ERRCODE = 'integrity_constraint_violation'; END $$")
        op.execute(
            "CREATE OR REPLACE FUNCTION ykt_audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF TG_OP = 'UPDATE' THEN IF NEW.seq >= OLD.seq AND NEW.id = OLD.id THEN RETURN NEW; END IF; "
            "RAISE EXCEPTION 'audit_head only moves forward' USING ERRCODE = 'integrity_constraint_violation'; "
            "END IF; RAISE EXCEPTION 'audit_head cannot be deleted' USING ERRCODE = 'integrity_constraint_violation'; "
            "END $$")
        op.execute("CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
                   "FOR EACH ROW EXECUTE FUNCTION ykt_audit_refuse()")
        op.execute("CREATE TRIGGER audit_head_forward BEFORE UPDATE OR DELETE ON audit_head "
                   "FOR EACH ROW EXECUTE FUNCTION ykt_audit_head_forward()")
        for t in ("audit_log", "audit_head"):
            op.execute(f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION ykt_audit_refuse()")
        op.execute(
            "CREATE OR REPLACE FUNCTION ykt_refuse_change_unless_rekey() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN IF TG_OP = 'UPDATE' AND EXISTS (SELECT 1 FROM pii_rekey_window) "
            "AND (to_jsonb(NEW) - TG_ARGV) = (to_jsonb(OLD) - TG_ARGV) THEN RETURN NEW; END IF; "
            f"RAISE EXCEPTION '%: {immutability.MESSAGE}', TG_TABLE_NAME "
            "USING ERRCODE = 'integrity_constraint_violation'; END $$")
        for t in CIPHER_TABLES:
            enc = ", ".join(f"'{c}'" for c in _columns(t) if c.endswith("_enc"))
            op.execute(f"DROP TRIGGER IF EXISTS {t}_immutable ON {t}")
            op.execute(f"CREATE TRIGGER {t}_immutable BEFORE UPDATE OR DELETE ON {t} "
                       f"FOR EACH ROW EXECUTE FUNCTION ykt_refuse_change_unless_rekey({enc})")
    else:
        raise NotImplementedError(f"no audit triggers for database {dialect!r}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for t in CIPHER_TABLES:  # back to the plain immutability triggers
        for stmt in immutability.drop_statements(dialect, (t,)):
            op.execute(stmt)
        for stmt in immutability.create_statements(dialect, (t,)):
            op.execute(stmt)
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS ykt_refuse_change_unless_rekey()")
    for t in ("pii_rekey_window", "audit_head", "audit_log"):
        op.drop_table(t)
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS ykt_audit_refuse()")
        op.execute("DROP FUNCTION IF EXISTS ykt_audit_head_forward()")
