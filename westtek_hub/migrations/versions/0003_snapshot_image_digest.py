"""Snapshots record the digest of the container image their server ran in.

Revision ID: 0003_snapshot_image_digest
Revises: 0002_share_copies
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_snapshot_image_digest"
down_revision = "0002_share_copies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``snapshots.image_digest`` (unknown, so empty, for snapshots reported before)."""
    op.add_column("snapshots", sa.Column("image_digest", sa.String(length=255), nullable=True))


def downgrade() -> None:
    """Drop it."""
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("image_digest")
