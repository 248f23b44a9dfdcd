"""PostgreSQL: the lifecycle and dispatch guards check a whole statement's rows at once

The guards of migrations 0005/0006 (an item event must follow the item's current state) and 0009
(only a validated item may be linked to a payment file) ran a PL/pgSQL function for every row:
at a million-item roster, two million function calls, each planning and running its own look-up,
a third of the intake's time in the server. They are now ``AFTER INSERT … FOR EACH STATEMENT``
triggers over the statement's transition table: one query joins every new row to the event
before it (one descent of ``ix_item_events_item`` each) and refuses the statement if any row
breaks the rule. The guarantee, message and error code are unchanged: the whole statement is
refused, whoever wrote it. An event's "state before" is the item's latest event with a smaller
id, so several events for one item in one statement are checked in order. SQLite has no
statement triggers; its row triggers are not touched.

Revision ID: 0011_set_wise_guards
Revises: 0010_item_bank_dates
"""
from alembic import op

revision = "0011_set_wise_guards"
down_revision = "0010_item_bank_dates"
branch_labels = None
depends_on = None

LIFECYCLE_MESSAGE = "item lifecycle: this event does not follow the current state of the item (Art. 22)"
DISPATCH_MESSAGE = "dispatch guard: only a validated item can be put into a payment file (Art. 18, 22)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS item_events_lifecycle ON item_events")
    op.execute(
        "CREATE OR REPLACE FUNCTION ykt_item_events_lifecycle_set() RETURNS trigger LANGUAGE plpgsql "
        "SET enable_seqscan = off AS $$ DECLARE bad record; BEGIN "
        "SELECT n.item_id, n.state, p.state AS cur INTO bad FROM ykt_new_events n "
        "LEFT JOIN LATERAL (SELECT e.state FROM item_events e WHERE e.item_id = n.item_id AND e.id < n.id "
        "ORDER BY e.item_id DESC, e.id DESC LIMIT 1) p ON true "
        "WHERE NOT EXISTS (SELECT 1 FROM lifecycle_transitions t WHERE t.from_state = COALESCE(p.state, '') "
        "AND t.to_state = n.state) ORDER BY n.id LIMIT 1; "
        "IF FOUND THEN "
        f"RAISE EXCEPTION 'item %: % -> %: {LIFECYCLE_MESSAGE}', bad.item_id, COALESCE(bad.cur, 'nothing'), bad.state "
        "USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NULL; END $$")
    op.execute("CREATE TRIGGER item_events_lifecycle AFTER INSERT ON item_events "
               "REFERENCING NEW TABLE AS ykt_new_events FOR EACH STATEMENT "
               "EXECUTE FUNCTION ykt_item_events_lifecycle_set()")
    op.execute("DROP FUNCTION IF EXISTS ykt_item_event_lifecycle()")

    op.execute("DROP TRIGGER IF EXISTS outbound_file_items_validated ON outbound_file_items")
    op.execute(
        "CREATE OR REPLACE FUNCTION ykt_outbound_file_items_validated_set() RETURNS trigger LANGUAGE plpgsql "
        "SET enable_seqscan = off AS $$ DECLARE bad record; BEGIN "
        "SELECT n.item_id, p.state AS cur INTO bad FROM ykt_new_links n "
        "LEFT JOIN LATERAL (SELECT e.state FROM item_events e WHERE e.item_id = n.item_id "
        "ORDER BY e.item_id DESC, e.id DESC LIMIT 1) p ON true "
        "WHERE p.state IS DISTINCT FROM 'validated' LIMIT 1; "
        "IF FOUND THEN "
        f"RAISE EXCEPTION 'item % is %: {DISPATCH_MESSAGE}', bad.item_id, COALESCE(bad.cur, 'nothing') "
        "USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NULL; END $$")
    op.execute("CREATE TRIGGER outbound_file_items_validated AFTER INSERT ON outbound_file_items "
               "REFERENCING NEW TABLE AS ykt_new_links FOR EACH STATEMENT "
               "EXECUTE FUNCTION ykt_outbound_file_items_validated_set()")
    op.execute("DROP FUNCTION IF EXISTS ykt_outbound_file_item_validated()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS item_events_lifecycle ON item_events")
    op.execute("DROP FUNCTION IF EXISTS ykt_item_events_lifecycle_set()")
    op.execute(
        "CREATE OR REPLACE FUNCTION ykt_item_event_lifecycle() RETURNS trigger LANGUAGE plpgsql "
        "SET enable_seqscan = off AS $$ DECLARE cur text; BEGIN "
        "SELECT e.state INTO cur FROM item_events e WHERE e.item_id = NEW.item_id "
        "ORDER BY e.item_id DESC, e.id DESC LIMIT 1; "
        "IF NOT EXISTS (SELECT 1 FROM lifecycle_transitions t WHERE t.from_state = COALESCE(cur, '') "
        "AND t.to_state = NEW.state) THEN "
        f"RAISE EXCEPTION 'item %: % -> %: {LIFECYCLE_MESSAGE}', NEW.item_id, COALESCE(cur, 'nothing'), NEW.state "
        "USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NEW; END $$")
    op.execute("CREATE TRIGGER item_events_lifecycle BEFORE INSERT ON item_events "
               "FOR EACH ROW EXECUTE FUNCTION ykt_item_event_lifecycle()")
    op.execute("DROP TRIGGER IF EXISTS outbound_file_items_validated ON outbound_file_items")
    op.execute("DROP FUNCTION IF EXISTS ykt_outbound_file_items_validated_set()")
    op.execute(
        "CREATE OR REPLACE FUNCTION ykt_outbound_file_item_validated() RETURNS trigger LANGUAGE plpgsql "
        "SET enable_seqscan = off AS $$ DECLARE cur text; BEGIN "
        "SELECT e.state INTO cur FROM item_events e WHERE e.item_id = NEW.item_id "
        "ORDER BY e.item_id DESC, e.id DESC LIMIT 1; "
        "IF cur IS DISTINCT FROM 'validated' THEN "
        f"RAISE EXCEPTION 'item % is %: {DISPATCH_MESSAGE}', NEW.item_id, COALESCE(cur, 'nothing') "
        "USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NEW; END $$")
    op.execute("CREATE TRIGGER outbound_file_items_validated BEFORE INSERT ON outbound_file_items "
               "FOR EACH ROW EXECUTE FUNCTION ykt_outbound_file_item_validated()")
