"""Shares record the copy a launch made in the recipient lab's store, and its removal.

Revision ID: 0002_share_copies
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_share_copies"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``shares.copy_id`` and ``shares.copy_removed_at`` (empty for existing shares)."""
    op.add_column("shares", sa.Column("copy_id", sa.String(length=64), nullable=True))
    op.add_column("shares", sa.Column("copy_removed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("shares") as batch:
        batch.drop_column("copy_removed_at")
        batch.drop_column("copy_id")
