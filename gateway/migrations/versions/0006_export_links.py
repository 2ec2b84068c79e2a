"""export: what each document points at (its waybills, lists and master bill) and customs' summary results

Export documents name each other many to many -- a master bill or an arrival covers many waybills, a
summary many lists -- so the declaration view reads ``document_refs`` (one row per thing a document
names, keyed by that thing) instead of scanning JSON. ``summary_results`` holds the latest CEB792 per
(sumNo, declSeqNo): the customs declarations a summary became.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":  # an export invtNo has up to 20 characters (SQLite: no limit)
        op.alter_column("documents", "invt_no", type_=sa.String(20), existing_type=sa.String(18))
    op.create_table(
        "document_refs",
        sa.Column("ref", sa.String(120), primary_key=True),
        sa.Column("document_id", Id, sa.ForeignKey("documents.id"), primary_key=True),
    )
    op.create_index("ix_document_refs_document_id", "document_refs", ["document_id"])
    op.create_table(
        "summary_results",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("document_id", Id, sa.ForeignKey("documents.id"), nullable=False),
        sa.Column("sum_no", sa.String(18), nullable=False),
        sa.Column("decl_seq_no", sa.String(18), nullable=False),
        sa.Column("dec_tmp_no", sa.String(18)),
        sa.Column("dec_pre_no", sa.String(18)),
        sa.Column("entry_id", sa.String(18)),
        sa.Column("dec_state", sa.String(3)),
        sa.Column("gross_weight", sa.String(30)),
        sa.Column("net_weight", sa.String(30)),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.Column("receipt_guid", sa.String(36), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("sum_no", "decl_seq_no"),
    )
    op.create_index("ix_summary_results_document_id", "summary_results", ["document_id"])


def downgrade() -> None:
    op.drop_index("ix_summary_results_document_id", "summary_results")
    op.drop_table("summary_results")
    op.drop_index("ix_document_refs_document_id", "document_refs")
    op.drop_table("document_refs")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("documents", "invt_no", type_=sa.String(18), existing_type=sa.String(20))
