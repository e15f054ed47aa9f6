"""The registry: labs, researchers, environments, snapshots, drift events, shares, transfers, audit.

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the registry's tables."""
    op.create_table(
        "audit",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("lab_id", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("hash"),
    )
    op.create_index(op.f("ix_audit_action"), "audit", ["action"], unique=False)
    op.create_index(op.f("ix_audit_lab_id"), "audit", ["lab_id"], unique=False)
    op.create_table(
        "labs",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "researchers",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "environments",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("lab_id", sa.String(length=128), nullable=False),
        sa.Column("researcher_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_snapshot", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_snapshot_id", sa.String(length=64), nullable=True),
        sa.Column("drift_status", sa.String(length=32), nullable=False),
        sa.Column("configuration_hash", sa.String(length=128), nullable=True),
        sa.Column("container_info", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lab_id"],
            ["labs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["researcher_id"],
            ["researchers.name"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_environments_lab_id"), "environments", ["lab_id"], unique=False)
    op.create_index(
        op.f("ix_environments_researcher_id"), "environments", ["researcher_id"], unique=False
    )
    op.create_table(
        "drift_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("environment_id", sa.String(length=255), nullable=False),
        sa.Column("reported_by", sa.String(length=255), nullable=False),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("risk_assessment", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("environment_id", "reported_by", "event_key"),
    )
    op.create_index(
        op.f("ix_drift_events_environment_id"), "drift_events", ["environment_id"], unique=False
    )
    op.create_index(op.f("ix_drift_events_time"), "drift_events", ["time"], unique=False)
    op.create_table(
        "snapshots",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("environment_id", sa.String(length=255), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("s3_location", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(length=128), nullable=True),
        sa.Column("container_image", sa.Text(), nullable=True),
        sa.Column("efs_snapshot_id", sa.String(length=255), nullable=True),
        sa.Column("ebs_snapshot_id", sa.String(length=255), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_snapshots_environment_id"), "snapshots", ["environment_id"], unique=False
    )
    op.create_table(
        "transfers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("environment_id", sa.String(length=255), nullable=False),
        sa.Column("from_researcher", sa.String(length=255), nullable=False),
        sa.Column("to_researcher", sa.String(length=255), nullable=False),
        sa.Column("from_lab", sa.String(length=128), nullable=False),
        sa.Column("to_lab", sa.String(length=128), nullable=False),
        sa.Column("by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_transfers_environment_id"), "transfers", ["environment_id"], unique=False
    )
    op.create_table(
        "shares",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("snapshot_id", sa.String(length=64), nullable=False),
        sa.Column("from_lab", sa.String(length=128), nullable=False),
        sa.Column("to_lab", sa.String(length=128), nullable=False),
        sa.Column("permission", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["from_lab"],
            ["labs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
        ),
        sa.ForeignKeyConstraint(
            ["to_lab"],
            ["labs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_shares_snapshot_id"), "shares", ["snapshot_id"], unique=False)
    op.create_index(op.f("ix_shares_to_lab"), "shares", ["to_lab"], unique=False)


def downgrade() -> None:
    """Drop the registry's tables."""
    op.drop_index(op.f("ix_shares_to_lab"), table_name="shares")
    op.drop_index(op.f("ix_shares_snapshot_id"), table_name="shares")
    op.drop_table("shares")
    op.drop_index(op.f("ix_transfers_environment_id"), table_name="transfers")
    op.drop_table("transfers")
    op.drop_index(op.f("ix_snapshots_environment_id"), table_name="snapshots")
    op.drop_table("snapshots")
    op.drop_index(op.f("ix_drift_events_time"), table_name="drift_events")
    op.drop_index(op.f("ix_drift_events_environment_id"), table_name="drift_events")
    op.drop_table("drift_events")
    op.drop_index(op.f("ix_environments_researcher_id"), table_name="environments")
    op.drop_index(op.f("ix_environments_lab_id"), table_name="environments")
    op.drop_table("environments")
    op.drop_table("researchers")
    op.drop_table("labs")
    op.drop_index(op.f("ix_audit_lab_id"), table_name="audit")
    op.drop_index(op.f("ix_audit_action"), table_name="audit")
    op.drop_table("audit")
