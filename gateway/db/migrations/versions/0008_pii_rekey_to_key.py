"""the personal-data re-encryption window names the key rotated to, and the triggers check it

Migration 0004's window let any ``*_enc`` ciphertext change while a ``pii_rekey_window`` row is
visible. Anyone with raw SQL can insert that row, so it also let one item's account ciphertext be
copied into another item (found by an audit). Three things close that hole together:

* the ciphertexts are bound to their cell (``gateway.privacy``: table, column and row key in the
  AES-GCM associated data), so a copied ciphertext no longer decrypts;
* dispatch checks each item's decrypted account and ID number against its blind index and holds a
  mismatch out of every payment file (``gateway.dispatch.render``);
* here: the window row must name ``to_key_id``, and a ciphertext may only change from a *different*
  key to a ciphertext whose header carries that key id (the version byte, then the 8-byte key id).
  A swap between two rows under the same key, or a rewrite to the key it already has, is refused by
  the database. What the database cannot see (a ciphertext of another row that is already under the
  new key, during a real rotation) is caught by the first two. Separate database roles (only the
  rotation job may write ``pii_rekey_window``) are a deployment choice, outside the schema.

``emergency_payments`` (migration 0005) holds ciphertext too but got no window, so a rotation could
never finish once it had rows; it gets the same narrow window here.

Revision ID: 0008_rekey_to_key
Revises: 0007_recon_exc_key
"""
from alembic import op
import sqlalchemy as sa

from gateway.db import immutability

revision = "0008_rekey_to_key"
down_revision = "0007_recon_exc_key"
branch_labels = None
depends_on = None

# frozen here: the tables holding ciphertext (0004's five, and emergency_payments from 0005)
CIPHER_TABLES = ("items", "beneficiaries", "accounts", "proxies", "list_entries", "emergency_payments")
OLD_WINDOW_TABLES = CIPHER_TABLES[:5]
KEY_MESSAGE = ("in the re-encryption window a ciphertext may only change from another key to one under the "
               "to_key_id of the window")


def _columns(table: str) -> list[str]:
    return [c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)]


def _window_table(with_key: bool) -> None:
    op.drop_table("pii_rekey_window")
    cols = [sa.Column("id", sa.Integer(), primary_key=True), sa.Column("opened_by", sa.String(64), nullable=False)]
    if with_key:
        cols.append(sa.Column("to_key_id", sa.String(8), nullable=False))
    op.create_table("pii_rekey_window", *cols)


def _sqlite_triggers(t: str, with_key: bool) -> list[str]:
    cols = _columns(t)
    same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in cols if not c.endswith("_enc"))
    out = [f"CREATE TRIGGER {t}_no_update BEFORE UPDATE ON {t} "
           f"WHEN NOT (EXISTS (SELECT 1 FROM pii_rekey_window) AND {same}) "
           f"BEGIN SELECT RAISE(ABORT, '{t}: {immutability.MESSAGE}'); END"]
    if with_key:
        # key id = bytes 2-9 of the ciphertext = hex characters 3-18; the window's id padded with NULs
        key = "substr(hex(w.to_key_id) || '0000000000000000', 1, 16)"
        moves = " AND ".join(f"(NEW.{c} IS OLD.{c} OR (OLD.{c} IS NOT NULL AND substr(hex(OLD.{c}), 3, 16) <> {key} "
                             f"AND substr(hex(NEW.{c}), 3, 16) = {key}))" for c in cols if c.endswith("_enc"))
        out.append(f"CREATE TRIGGER {t}_rekey_to_key BEFORE UPDATE ON {t} "
                   f"WHEN NOT EXISTS (SELECT 1 FROM pii_rekey_window w WHERE {moves}) "
                   f"BEGIN SELECT RAISE(ABORT, '{t}: {immutability.MESSAGE}; {KEY_MESSAGE}'); END")
    return out


def _pg_function(with_key: bool) -> str:
    check = ""
    if with_key:
        # to_jsonb renders bytea as '\x' + hex: the key id is hex characters 5-20
        check = (
            "SELECT rpad(encode(convert_to(w.to_key_id, 'UTF8'), 'hex'), 16, '0') INTO k "
            "FROM pii_rekey_window w ORDER BY w.id DESC LIMIT 1; "
            "n := to_jsonb(NEW); o := to_jsonb(OLD); "
            "FOREACH c IN ARRAY TG_ARGV LOOP "
            "IF (n->>c) IS DISTINCT FROM (o->>c) AND ((o->>c) IS NULL OR substring(o->>c from 5 for 16) = k "
            "OR substring(n->>c from 5 for 16) IS DISTINCT FROM k) THEN "
            f"RAISE EXCEPTION '%: {immutability.MESSAGE}; {KEY_MESSAGE} (column %)', TG_TABLE_NAME, c "
            "USING ERRCODE = 'integrity_constraint_violation'; END IF; END LOOP; ")
    return (
        "CREATE OR REPLACE FUNCTION ykt_refuse_change_unless_rekey() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "DECLARE k text; n jsonb; o jsonb; c text; "
        "BEGIN IF TG_OP = 'UPDATE' AND EXISTS (SELECT 1 FROM pii_rekey_window) "
        "AND (to_jsonb(NEW) - TG_ARGV) = (to_jsonb(OLD) - TG_ARGV) THEN "
        f"{check}RETURN NEW; END IF; "
        f"RAISE EXCEPTION '%: {immutability.MESSAGE}', TG_TABLE_NAME "
        "USING ERRCODE = 'integrity_constraint_violation'; END $$")


def _switch(with_key: bool) -> None:
    dialect = op.get_bind().dialect.name
    tables = CIPHER_TABLES if with_key else OLD_WINDOW_TABLES
    if dialect == "sqlite":
        for t in CIPHER_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {t}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {t}_rekey_to_key")
        _window_table(with_key)
        for t in tables:
            for stmt in _sqlite_triggers(t, with_key):
                op.execute(stmt)
        if not with_key:
            op.execute(immutability.create_statements(dialect, ("emergency_payments",))[0])  # its _no_update
    elif dialect == "postgresql":
        _window_table(with_key)
        op.execute(_pg_function(with_key))
        for t in CIPHER_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {t}_immutable ON {t}")
        for t in tables:
            enc = ", ".join(f"'{c}'" for c in _columns(t) if c.endswith("_enc"))
            op.execute(f"CREATE TRIGGER {t}_immutable BEFORE UPDATE OR DELETE ON {t} "
                       f"FOR EACH ROW EXECUTE FUNCTION ykt_refuse_change_unless_rekey({enc})")
        if not with_key:
            op.execute("CREATE TRIGGER emergency_payments_immutable BEFORE UPDATE OR DELETE ON emergency_payments "
                       "FOR EACH ROW EXECUTE FUNCTION ykt_refuse_change()")
    else:
        raise NotImplementedError(f"no re-encryption window for database {dialect!r}")


def upgrade() -> None:
    _switch(with_key=True)


def downgrade() -> None:
    _switch(with_key=False)
