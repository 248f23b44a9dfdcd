"""item bank dates: a bank's booking date stated by a report that changes nothing else

A bank often answers a file twice: a pain.002 that settles each item (it carries no booking date),
then a camt.054/053 that states the day it booked the credit or the return. The second report
matches an item already in that state, so it wrote no event and its booking date was lost; the
Art. 20 credit deadline was then counted from the day the pain.002 was recorded, and an on-time
bank could be reported late. This append-only table keeps that date (the first one stated per item
and state); ``reconciliation.deadlines`` reads it when the state's own event carries none.

Revision ID: 0010_item_bank_dates
Revises: 0009_dispatch_guard
"""
from alembic import op
import sqlalchemy as sa

from gateway.db.immutability import create_statements, drop_statements

revision = "0010_item_bank_dates"
down_revision = "0009_dispatch_guard"
branch_labels = None
depends_on = None

TABLES = ("item_bank_dates",)


def upgrade() -> None:
    op.create_table(
        "item_bank_dates",
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id"), primary_key=True),
        sa.Column("state", sa.String(32), primary_key=True),
        sa.Column("bank_date", sa.Date(), nullable=False),
        sa.Column("inbound_file_id", sa.Integer(), sa.ForeignKey("inbound_files.id"), nullable=True),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
    )
    for stmt in create_statements(op.get_bind().dialect.name, TABLES):
        op.execute(stmt)


def downgrade() -> None:
    for stmt in drop_statements(op.get_bind().dialect.name, TABLES):
        op.execute(stmt)
    op.drop_table("item_bank_dates")
