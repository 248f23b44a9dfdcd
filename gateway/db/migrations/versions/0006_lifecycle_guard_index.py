"""lifecycle guard: the PostgreSQL trigger finds an item's latest event through its index

Migration 0005's trigger function looked up the item's latest event with ``WHERE item_id = …
ORDER BY id DESC LIMIT 1``. PL/pgSQL plans that query once per session, generically; on a table
that was small (or empty) when last analysed the planner may walk the primary key backwards and
scan, so every inserted event reads the whole log: quadratic (seen: 1.6 ms an event at 10,000
items, the intake's first events planned against an empty, freshly analysed table). Ordering by ``(item_id, id)``, the columns of
``ix_item_events_item``, with sequential scans off inside this one function, makes the lookup one
descent of that index whatever the statistics say. The guarantee is unchanged: an
event that does not follow the item's current state is refused (same check, same message, same
error code). SQLite's planner already uses the index; its trigger is not touched.

Revision ID: 0006_guard_index
Revises: 0005_recon
"""
from alembic import op

revision = "0006_guard_index"
down_revision = "0005_recon"
branch_labels = None
depends_on = None

GUARD_MESSAGE = "item lifecycle: this event does not follow the current state of the item (Art. 22)"


def _function(order_by: str, settings: str = "") -> str:
    return (
        f"CREATE OR REPLACE FUNCTION ykt_item_event_lifecycle() RETURNS trigger LANGUAGE plpgsql {settings} AS $$ "
        "DECLARE cur text; BEGIN "
        f"SELECT e.state INTO cur FROM item_events e WHERE e.item_id = NEW.item_id ORDER BY {order_by} LIMIT 1; "
        "IF NOT EXISTS (SELECT 1 FROM lifecycle_transitions t WHERE t.from_state = COALESCE(cur, '') "
        "AND t.to_state = NEW.state) THEN "
        f"RAISE EXCEPTION 'item %: % -> %: {GUARD_MESSAGE}', NEW.item_id, COALESCE(cur, 'nothing'), NEW.state "
        "USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NEW; END $$"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function("e.item_id DESC, e.id DESC", "SET enable_seqscan = off"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function("e.id DESC"))
