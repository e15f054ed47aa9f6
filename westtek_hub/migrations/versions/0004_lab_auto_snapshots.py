"""Each lab's automatic-snapshot settings (none set: every lab follows the defaults).

Revision ID: 0004_lab_auto_snapshots
Revises: 0003_snapshot_image_digest
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_lab_auto_snapshots"
down_revision = "0003_snapshot_image_digest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``lab_auto_snapshots``: one row per lab that set something."""
    op.create_table(
        "lab_auto_snapshots",
        sa.Column("lab_id", sa.String(length=128), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=True),
        sa.Column("settle_seconds", sa.Float(), nullable=True),
        sa.Column("interval_hours", sa.Float(), nullable=True),
        sa.Column("retention", sa.JSON(), nullable=True),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["lab_id"], ["labs.id"]),
        sa.PrimaryKeyConstraint("lab_id"),
    )


def downgrade() -> None:
    """Drop it: every lab follows the defaults again."""
    op.drop_table("lab_auto_snapshots")
