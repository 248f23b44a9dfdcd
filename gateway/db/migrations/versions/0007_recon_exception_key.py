"""reconciliation exceptions: one row per report line, kind and reference

Applying the same report twice must change nothing (issue 7), but every line that went to the
exceptions queue was written again on each application. An exception is identified by the report
it came from, its line there, its kind and the reference it reported; a unique index on that key
makes a second copy impossible. The report may be anonymous (applied by hand, without a stored
inbound file) and a refused file's exception has no line or reference, so NULLs are folded into
values no real row has (file id 0, line -1, reference ''), since a unique index treats NULLs as
distinct on both SQLite and PostgreSQL.

Copies written before this migration are folded into the earliest row, which stays resolved if
any copy was.

Revision ID: 0007_recon_exc_key
Revises: 0006_guard_index
"""
from alembic import op
import sqlalchemy as sa

revision = "0007_recon_exc_key"
down_revision = "0006_guard_index"
branch_labels = None
depends_on = None

INDEX = "uq_recon_exceptions_line"
KEY = ("COALESCE(inbound_file_id, 0)", "COALESCE(line, -1)", "kind", "COALESCE(reference, '')")
# a row ``d`` with the same key as the row being updated or deleted
_SAME = ("COALESCE(d.inbound_file_id, 0) = COALESCE(recon_exceptions.inbound_file_id, 0) "
         "AND COALESCE(d.line, -1) = COALESCE(recon_exceptions.line, -1) AND d.kind = recon_exceptions.kind "
         "AND COALESCE(d.reference, '') = COALESCE(recon_exceptions.reference, '')")


def upgrade() -> None:
    op.execute(f"UPDATE recon_exceptions SET resolved = TRUE WHERE EXISTS "
               f"(SELECT 1 FROM recon_exceptions d WHERE d.resolved AND {_SAME})")
    op.execute(f"DELETE FROM recon_exceptions WHERE EXISTS "
               f"(SELECT 1 FROM recon_exceptions d WHERE d.id < recon_exceptions.id AND {_SAME})")
    op.create_index(INDEX, "recon_exceptions", [sa.text(k) for k in KEY], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="recon_exceptions")
