"""The hub service's registry, as SQLAlchemy 2 models (SQLite by default, PostgreSQL in production).

The design document's ``Environment`` and ``Snapshot`` (snapshot metadata only: the bytes
stay in the store), the drift events single-user servers report, shares between labs,
transfers between researchers, and the hash-chained audit log. The schema is created and
upgraded by the Alembic migrations in ``westtek_hub/migrations``, never by ``create_all``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """The registry's declarative base."""


class Lab(Base):
    """A lab: a JupyterHub group (``lab-<id>`` or one the configuration names)."""

    __tablename__ = "labs"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LabAutoSnapshots(Base):
    """A lab's automatic-snapshot settings; a None setting is the default.

    Only what an admin set is kept, so a lab that set nothing follows the defaults
    (``westtek_core.autosnapshot_settings.DEFAULTS``) when they change.
    """

    __tablename__ = "lab_auto_snapshots"
    lab_id: Mapped[str] = mapped_column(ForeignKey("labs.id"), primary_key=True)
    enabled: Mapped[bool | None] = mapped_column(Boolean)
    settle_seconds: Mapped[float | None] = mapped_column(Float)
    interval_hours: Mapped[float | None] = mapped_column(Float)
    # keep_last, keep_daily, keep_weekly, keep_monthly (a RetentionPolicy)
    retention: Mapped[dict[str, int] | None] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Researcher(Base):
    """A hub user seen by the service."""

    __tablename__ = "researchers"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Environment(Base):
    """A researcher's environment in a lab (the design document's fields)."""

    __tablename__ = "environments"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    lab_id: Mapped[str] = mapped_column(ForeignKey("labs.id"), index=True)
    researcher_id: Mapped[str] = mapped_column(ForeignKey("researchers.name"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_snapshot: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_snapshot_id: Mapped[str | None] = mapped_column(String(64))
    drift_status: Mapped[str] = mapped_column(String(32), default="STABLE")
    configuration_hash: Mapped[str | None] = mapped_column(String(128))
    container_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # experiment_id, funding_source, criticality, jupyter_packages
    env_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)


class Snapshot(Base):
    """A snapshot's metadata, as its environment's server reported it."""

    __tablename__ = "snapshots"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), index=True)
    created_by: Mapped[str] = mapped_column(String(255))
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    s3_location: Mapped[str | None] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    checksum: Mapped[str | None] = mapped_column(String(128))
    container_image: Mapped[str | None] = mapped_column(Text)
    # the digest of the image the reporting server ran in, from the spawner's report of it
    image_digest: Mapped[str | None] = mapped_column(String(255))
    efs_snapshot_id: Mapped[str | None] = mapped_column(String(255))
    ebs_snapshot_id: Mapped[str | None] = mapped_column(String(255))
    # jupyter_version, installed_packages, notebook_count, configuration_files, notes
    snap_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)


class DriftEvent(Base):
    """A drift event a server reported (stored once per server-side id)."""

    __tablename__ = "drift_events"
    __table_args__ = (UniqueConstraint("environment_id", "reported_by", "event_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), index=True)
    reported_by: Mapped[str] = mapped_column(String(255))
    event_key: Mapped[str] = mapped_column(String(64))
    time: Mapped[float] = mapped_column(Float, index=True)
    status: Mapped[str] = mapped_column(String(32))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    risk_assessment: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Share(Base):
    """A snapshot shared with another lab: ``read`` or ``restore``."""

    __tablename__ = "shares"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    snapshot_id: Mapped[str] = mapped_column(ForeignKey("snapshots.id"), index=True)
    from_lab: Mapped[str] = mapped_column(ForeignKey("labs.id"))
    to_lab: Mapped[str] = mapped_column(ForeignKey("labs.id"), index=True)
    permission: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # the snapshot's id in the recipient lab's store once a launch copied it there, and
    # when revoking removed that copy
    copy_id: Mapped[str | None] = mapped_column(String(64))
    copy_removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ArchivedLaunch(Base):
    """A launch from another lab's shared snapshot, waiting for its packs to leave archive.

    Kept until the server starts (the row is then removed) or the launch cannot go on
    (``failure`` says why, until the researcher dismisses it).
    """

    __tablename__ = "archived_launches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"))
    snapshot_id: Mapped[str] = mapped_column(ForeignKey("snapshots.id"))
    from_lab: Mapped[str] = mapped_column(String(128))
    to_lab: Mapped[str] = mapped_column(String(128), index=True)
    server_name: Mapped[str] = mapped_column(String(255), default="")
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # the store's last word: "waiting for archive, ready in about N hours: ..."
    waiting: Mapped[str] = mapped_column(Text)
    ready_in_hours: Mapped[int] = mapped_column(Integer)
    failure: Mapped[str | None] = mapped_column(Text)


class Transfer(Base):
    """An environment reassigned from one researcher to a successor."""

    __tablename__ = "transfers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), index=True)
    from_researcher: Mapped[str] = mapped_column(String(255))
    to_researcher: Mapped[str] = mapped_column(String(255))
    from_lab: Mapped[str] = mapped_column(String(128))
    to_lab: Mapped[str] = mapped_column(String(128))
    by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEntry(Base):
    """One append-only audit entry, chained to the previous one by its hash."""

    __tablename__ = "audit"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(Text, default="")
    lab_id: Mapped[str | None] = mapped_column(String(128), index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # ok | denied | error
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
