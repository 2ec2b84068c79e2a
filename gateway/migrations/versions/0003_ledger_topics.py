"""ledger topics: an index of entries by business key and party

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_pending", schema=None) as batch_op:
        batch_op.add_column(sa.Column("topics", sa.Text(), nullable=True))
    op.create_table(
        "ledger_topics",
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("topic", "idx", name=op.f("pk_ledger_topics")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("ledger_topics")
    with op.batch_alter_table("ledger_pending", schema=None) as batch_op:
        batch_op.drop_column("topics")
