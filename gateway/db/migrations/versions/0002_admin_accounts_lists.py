"""admin: beneficiaries, accounts, proxies, screening lists, verification cache, finding decisions

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

from gateway.db import immutability

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# frozen here (not imported from gateway.admin.models, which may change later)
APPEND_ONLY = ("beneficiaries", "accounts", "account_events", "proxies", "list_imports", "list_entries",
               "finding_decisions")
H = 64  # blind-index length


def upgrade() -> None:
    op.create_table(
        "beneficiaries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("id_hash", sa.String(H), nullable=False, unique=True),
        sa.Column("id_number_enc", sa.LargeBinary(), nullable=False),
        sa.Column("name_enc", sa.LargeBinary(), nullable=False),
        sa.Column("name_hash", sa.String(H), nullable=False),
        sa.Column("household_hash", sa.String(H), nullable=True),
        sa.Column("unit_code", sa.String(32), nullable=False),
        sa.Column("registered_by", sa.String(64), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_beneficiaries_household_hash", "beneficiaries", ["household_hash"])
    # covering indexes for the rule engine's per-chunk registry look-ups
    op.create_index("ix_beneficiaries_lookup", "beneficiaries", ["id_hash", "id", "household_hash"])
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("beneficiary_id", sa.Integer(), sa.ForeignKey("beneficiaries.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("bank_id", sa.String(32), nullable=False),
        sa.Column("account_enc", sa.LargeBinary(), nullable=False),
        sa.Column("account_hash", sa.String(H), nullable=False),
        sa.Column("social_security_card", sa.Boolean(), nullable=False),
        sa.Column("bank_chosen_by_beneficiary", sa.Boolean(), nullable=False),
        sa.Column("declaration_ref", sa.String(64), nullable=True),
        sa.Column("replaces_account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=True),
        sa.Column("declared_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.CheckConstraint("kind IN ('card', 'passbook')", name="ck_accounts_kind"),
        # Art. 10: no unit or person may assign a bank to a beneficiary
        sa.CheckConstraint("bank_chosen_by_beneficiary", name="ck_accounts_self_declared"),
    )
    op.create_index("ix_accounts_beneficiary_id", "accounts", ["beneficiary_id", "account_hash", "id"])
    op.create_index("ix_accounts_account_hash", "accounts", ["account_hash"])
    op.create_table(
        "account_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index("ix_account_events_account", "account_events", ["account_id", "id", "kind"])
    op.create_table(
        "proxies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("beneficiary_id", sa.Integer(), sa.ForeignKey("beneficiaries.id"), nullable=False),
        sa.Column("proxy_name_enc", sa.LargeBinary(), nullable=False),
        sa.Column("proxy_id_number_enc", sa.LargeBinary(), nullable=False),
        sa.Column("proxy_id_hash", sa.String(H), nullable=False),
        sa.Column("account_hash", sa.String(H), nullable=True),
        sa.Column("relation", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("approved_by", sa.String(64), nullable=False),
        sa.Column("approved_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_proxies_beneficiary_id", "proxies", ["beneficiary_id"])
    op.create_index("ix_proxies_proxy_id_hash", "proxies", ["proxy_id_hash"])
    op.create_index("ix_proxies_account_hash", "proxies", ["account_hash"])
    op.create_table(
        "list_imports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("source_name", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("imported_by", sa.String(64), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("kind", "version"),
    )
    op.create_table(
        "list_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("import_id", sa.Integer(), sa.ForeignKey("list_imports.id"), nullable=False),
        sa.Column("id_hash", sa.String(H), nullable=False),
        sa.Column("name_enc", sa.LargeBinary(), nullable=False),
        sa.Column("date_of_death", sa.Date(), nullable=True),
    )
    op.create_index("ix_list_entries_id_hash", "list_entries", ["id_hash"])
    op.create_table(
        "account_verifications",
        sa.Column("account_hash", sa.String(H), primary_key=True),
        sa.Column("id_hash", sa.String(H), primary_key=True),
        sa.Column("name_hash", sa.String(H), primary_key=True),
        sa.Column("bank_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(8), nullable=True),
        sa.Column("reason_text", sa.Text(), nullable=True),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sqlite_with_rowid=False,  # one B-tree probe per look-up, not two
    )
    op.create_table(
        "finding_decisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("finding_id", sa.Integer(), sa.ForeignKey("findings.id"), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("decision IN ('cleared', 'confirmed')", name="ck_finding_decisions_decision"),
    )
    op.create_index("ix_finding_decisions_finding_id", "finding_decisions", ["finding_id"])
    # duplicate and exclusive-policy look-ups go by period and policy
    op.create_index("ix_batches_period_policy", "batches", ["period", "policy_code"])
    dialect = op.get_bind().dialect.name
    for stmt in immutability.create_statements(dialect, APPEND_ONLY):
        op.execute(stmt)


def downgrade() -> None:
    for stmt in immutability.drop_statements(op.get_bind().dialect.name, APPEND_ONLY):
        op.execute(stmt)
    op.drop_index("ix_batches_period_policy", "batches")
    for t in ("finding_decisions", "account_verifications", "list_entries", "list_imports", "proxies",
              "account_events", "accounts", "beneficiaries"):
        op.drop_table(t)
