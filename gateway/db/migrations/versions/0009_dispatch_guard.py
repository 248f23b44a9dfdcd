"""dispatch guard: only a validated item can be put into a payment file, whoever writes the row

``outbound_file_items`` links an item to the file that pays it. Its unique ``item_id`` kept an item
out of a second file, but an item that was never in a file (rejected by validation, or held) could
still be linked to a file by a raw INSERT; a ``planned`` file is then rendered with it, so the bank
would pay a person whose correction is paid too (found by an audit: a resubmitted original slipped
into its correction's file) [Art. 18, 22]. The database now refuses a link unless the item's
latest event is ``validated``: the planner only links such items, and a failed, settled or
resubmitted original never is one again (its events are guarded by migration 0005). The look-up of
the latest event follows 0006 (one descent of ``ix_item_events_item`` on PostgreSQL).

Revision ID: 0009_dispatch_guard
Revises: 0008_rekey_to_key
"""
from alembic import op

revision = "0009_dispatch_guard"
down_revision = "0008_rekey_to_key"
branch_labels = None
depends_on = None

MESSAGE = "dispatch guard: only a validated item can be put into a payment file (Art. 18, 22)"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TRIGGER outbound_file_items_validated BEFORE INSERT ON outbound_file_items "
            "WHEN COALESCE((SELECT e.state FROM item_events e WHERE e.item_id = NEW.item_id ORDER BY e.id DESC LIMIT 1), "
            f"'') <> 'validated' BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION ykt_outbound_file_item_validated() RETURNS trigger LANGUAGE plpgsql "
        "SET enable_seqscan = off AS $$ DECLARE cur text; BEGIN "
        "SELECT e.state INTO cur FROM item_events e WHERE e.item_id = NEW.item_id "
        "ORDER BY e.item_id DESC, e.id DESC LIMIT 1; "
        "IF cur IS DISTINCT FROM 'validated' THEN "
        f"RAISE EXCEPTION 'item % is %: {MESSAGE}', NEW.item_id, COALESCE(cur, 'nothing') "
        "USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NEW; END $$")
    op.execute("CREATE TRIGGER outbound_file_items_validated BEFORE INSERT ON outbound_file_items "
               "FOR EACH ROW EXECUTE FUNCTION ykt_outbound_file_item_validated()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS outbound_file_items_validated")
        return
    op.execute("DROP TRIGGER IF EXISTS outbound_file_items_validated ON outbound_file_items")
    op.execute("DROP FUNCTION IF EXISTS ykt_outbound_file_item_validated()")
