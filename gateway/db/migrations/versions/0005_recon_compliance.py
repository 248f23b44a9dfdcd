"""reconciliation and compliance: lifecycle guard on item events, bank dates, feedback records,
emergency payments

* ``lifecycle_transitions`` + a trigger on ``item_events``: an event that breaks the item
  lifecycle (e.g. ``validated`` after ``rejected_by_bank``) is refused by the database itself, so
  a failed original can never become dispatchable again, not even by hand-written SQL [Art. 22].
* ``item_events.bank_date``: the date the bank itself states for a credit or a return (booking
  date), when the report carries one; the deadline clock of Art. 20-22 uses it.
* ``feedback_exports`` / ``feedback_export_items``: every export of outcomes, corrections and
  refunds to a department or implementation unit, and which events it carried [Art. 21-22].
* ``emergency_payments``: payments made outside the system, with channel and reason [Art. 23].

Revision ID: 0005_recon
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

from gateway.db import immutability

revision = "0005_recon"
down_revision = "0004"
branch_labels = None
depends_on = None

# frozen here (a copy of reconciliation.lifecycle.TRANSITIONS at the time of writing; a test keeps
# the two equal). "" stands for "no event yet".
TRANSITIONS = (
    ("", "submitted"),
    ("submitted", "validated"), ("submitted", "rejected_by_validation"),
    ("validated", "sent"),
    ("sent", "accepted"), ("sent", "settled"), ("sent", "rejected_by_bank"),
    ("accepted", "settled"), ("accepted", "rejected_by_bank"),
    ("settled", "returned"),
)
APPEND_ONLY = ("emergency_payments", "feedback_exports", "feedback_export_items", "lifecycle_transitions")
GUARD_MESSAGE = "item lifecycle: this event does not follow the current state of the item (Art. 22)"


def _guard_statements(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return [
            "CREATE TRIGGER item_events_lifecycle BEFORE INSERT ON item_events "
            "WHEN NOT EXISTS (SELECT 1 FROM lifecycle_transitions t WHERE t.to_state = NEW.state AND t.from_state = "
            "COALESCE((SELECT e.state FROM item_events e WHERE e.item_id = NEW.item_id ORDER BY e.id DESC LIMIT 1), '')) "
            f"BEGIN SELECT RAISE(ABORT, '{GUARD_MESSAGE}'); END"
        ]
    if dialect == "postgresql":
        return [
            "CREATE OR REPLACE FUNCTION ykt_item_event_lifecycle() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "DECLARE cur text; BEGIN "
            "SELECT e.state INTO cur FROM item_events e WHERE e.item_id = NEW.item_id ORDER BY e.id DESC LIMIT 1; "
            "IF NOT EXISTS (SELECT 1 FROM lifecycle_transitions t WHERE t.from_state = COALESCE(cur, '') "
            "AND t.to_state = NEW.state) THEN "
            f"RAISE EXCEPTION 'item %: % -> %: {GUARD_MESSAGE}', NEW.item_id, COALESCE(cur, 'nothing'), NEW.state "
            "USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER item_events_lifecycle BEFORE INSERT ON item_events "
            "FOR EACH ROW EXECUTE FUNCTION ykt_item_event_lifecycle()",
        ]
    raise NotImplementedError(dialect)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    t = op.create_table(
        "lifecycle_transitions",
        sa.Column("from_state", sa.String(32), primary_key=True),
        sa.Column("to_state", sa.String(32), primary_key=True),
    )
    op.bulk_insert(t, [{"from_state": a, "to_state": b} for a, b in TRANSITIONS])
    for stmt in _guard_statements(dialect):
        op.execute(stmt)
    op.add_column("item_events", sa.Column("bank_date", sa.Date(), nullable=True))

    op.create_table(
        "feedback_exports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),  # outcomes | corrections | refunds
        sa.Column("department_code", sa.String(32), nullable=True),
        sa.Column("unit_code", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
    )
    op.create_table(
        "feedback_export_items",
        sa.Column("export_id", sa.Integer(), sa.ForeignKey("feedback_exports.id"), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("item_events.id"), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id"), nullable=False),
    )
    op.create_index("ix_feedback_export_items_event", "feedback_export_items", ["event_id"])
    op.create_table(
        "emergency_payments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("county_code", sa.String(6), nullable=False),
        sa.Column("department_code", sa.String(32), nullable=False),
        sa.Column("policy_code", sa.String(16), nullable=True),
        sa.Column("unit_code", sa.String(32), nullable=True),
        sa.Column("name_enc", sa.LargeBinary(), nullable=False),
        sa.Column("id_number_enc", sa.LargeBinary(), nullable=False),
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("channel_detail", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("approval_ref", sa.String(64), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name="ck_emergency_amount_positive"),
    )
    op.create_index("ix_emergency_payments_paid_on", "emergency_payments", ["paid_on"])
    op.create_index("ix_emergency_payments_id_hash", "emergency_payments", ["id_hash"])
    for stmt in immutability.create_statements(dialect, APPEND_ONLY):
        op.execute(stmt)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for stmt in immutability.drop_statements(dialect, APPEND_ONLY):
        op.execute(stmt)
    op.drop_table("emergency_payments")
    op.drop_table("feedback_export_items")
    op.drop_table("feedback_exports")
    op.drop_column("item_events", "bank_date")
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS item_events_lifecycle")
    else:
        op.execute("DROP TRIGGER IF EXISTS item_events_lifecycle ON item_events")
        op.execute("DROP FUNCTION IF EXISTS ykt_item_event_lifecycle()")
    op.drop_table("lifecycle_transitions")
