"""the pull inbox: an index of pending deliveries by regulator and id

A pull regulator reads its pending deliveries in id order. Through ``ix_deliveries_regulator_id`` that
read walks every delivery the regulator ever had and drops the delivered ones; this partial index holds
the pending rows alone, so the read is one index range however long the history grows.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_pending", ["regulator", "id"], unique=False,
            postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_pending")
