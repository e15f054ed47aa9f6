"""A snapshot's registry record: its API shape, and the image digest it is stamped with.

The image digest comes from the spawner, not from the server: only the spawner learns it
(ECS knows a task's image digest once the task runs, too late for the task's environment).
It reports it with the server's ``container_info`` after each start; the hub service notes
when, and a snapshot reported later is stamped with it only when the snapshot was taken
after that report. A snapshot from before (delivered late from the outbox of a server that
has been replaced since, possibly by another image) gets None, never another image's digest.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from westtek_core.wire import MAX_ID, SnapshotRecord
from westtek_hub.models import Environment, Snapshot

REPORTED_AT = "reported_at"
"""The ``container_info`` key of when the hub service took the spawner's report (ISO 8601)."""


def aware(value: datetime) -> datetime:
    """``value`` with its time zone: UTC when the database kept none (SQLite)."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def iso(value: datetime | None) -> str | None:
    """``value`` in ISO 8601 with its time zone, or None."""
    return aware(value).isoformat() if value is not None else None


def container_record(info: Mapping[str, Any], image_digest: str, now: datetime) -> dict[str, Any]:
    """The ``container_info`` kept from a spawner's report at ``now``.

    An empty digest (a local process runs in no image) is left out, so a digest reported
    by an earlier start never outlives the server it was the image of.
    """
    digest = {"image_digest": image_digest} if image_digest else {}
    return dict(info) | digest | {REPORTED_AT: iso(now)}


def image_digest_at(env: Environment, taken: datetime) -> str | None:
    """The digest of the image ``env``'s server ran in when a snapshot was ``taken``.

    None when the spawner reported no digest, or reported it after the snapshot was taken
    (the snapshot may come from a server before that one).
    """
    info = env.container_info or {}
    digest, reported = info.get("image_digest"), info.get(REPORTED_AT)
    if not isinstance(digest, str) or not 0 < len(digest) <= MAX_ID:
        return None  # none, or not one the spawner sends (the column holds MAX_ID)
    if not isinstance(reported, str):
        return None
    try:
        started = aware(datetime.fromisoformat(reported))
    except ValueError:
        return None
    return digest if aware(taken) >= started else None


def snapshot_json(snap: Snapshot) -> dict[str, Any]:
    """The design document's Snapshot (metadata only), in the API's shape (``SnapshotRecord``)."""
    record = SnapshotRecord(
        id=snap.id,
        environment_id=snap.environment_id,
        created_by=snap.created_by,
        timestamp=iso(snap.timestamp),
        s3_location=snap.s3_location,
        size_bytes=snap.size_bytes,
        checksum=snap.checksum,
        container_image=snap.container_image,
        image_digest=snap.image_digest,
        efs_snapshot_id=snap.efs_snapshot_id,
        ebs_snapshot_id=snap.ebs_snapshot_id,
        metadata=snap.snap_metadata or {},
    )
    return record.model_dump(mode="json")
