"""Launches from a shared snapshot that wait for its packs to come back from archive storage.

Revision ID: 0005_archived_launches
Revises: 0004_lab_auto_snapshots
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_archived_launches"
down_revision = "0004_lab_auto_snapshots"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``archived_launches``: one row per launch still waiting (or that failed)."""
    op.create_table(
        "archived_launches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user", sa.String(length=255), nullable=False),
        sa.Column("environment_id", sa.String(length=255), nullable=False),
        sa.Column("snapshot_id", sa.String(length=64), nullable=False),
        sa.Column("from_lab", sa.String(length=128), nullable=False),
        sa.Column("to_lab", sa.String(length=128), nullable=False),
        sa.Column("server_name", sa.String(length=255), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("waiting", sa.Text(), nullable=False),
        sa.Column("ready_in_hours", sa.Integer(), nullable=False),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["environment_id"], ["environments.id"]),
        sa.ForeignKeyConstraint(["snapshot_id"], ["snapshots.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_archived_launches_user", "archived_launches", ["user"])
    op.create_index("ix_archived_launches_to_lab", "archived_launches", ["to_lab"])


def downgrade() -> None:
    """Drop it: waiting launches are forgotten (the packs' restores run out by themselves)."""
    op.drop_index("ix_archived_launches_to_lab", table_name="archived_launches")
    op.drop_index("ix_archived_launches_user", table_name="archived_launches")
    op.drop_table("archived_launches")
