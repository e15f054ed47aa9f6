"""The wire form of environments, as the caller may see them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from westtek_hub.models import Environment, Snapshot
from westtek_hub.snapshot_records import snapshot_json


def iso(value: datetime | None) -> str | None:
    """A stored time in ISO 8601, UTC when the database dropped its zone."""
    if value is None:
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return aware.isoformat()


def environment_json(env: Environment, access: str) -> dict[str, Any]:
    """The design document's Environment, plus how the caller may reach it."""
    return {
        "id": env.id,
        "lab_id": env.lab_id,
        "researcher_id": env.researcher_id,
        "name": env.name or env.id,
        "created_at": iso(env.created_at),
        "last_snapshot": iso(env.last_snapshot),
        "last_snapshot_id": env.last_snapshot_id,
        "drift_status": env.drift_status,
        "configuration_hash": env.configuration_hash,
        "container_info": env.container_info or {},
        "metadata": env.env_metadata or {},
        "access": access,
    }


def shared_environment_json(
    env: Environment, access: str, shared: Iterable[Snapshot]
) -> dict[str, Any]:
    """What a share shows of an environment: whose it is, and the shared snapshots.

    Nothing of its live state or history: drift, installs, other snapshots, where it runs.
    """
    snaps = sorted(shared, key=lambda snap: iso(snap.timestamp) or "")
    newest = snaps[-1] if snaps else None
    return environment_json(env, access) | {
        "last_snapshot": iso(newest.timestamp) if newest else None,
        "last_snapshot_id": newest.id if newest else None,
        "drift_status": None,
        "configuration_hash": newest.checksum if newest else None,
        "container_info": {},
        "metadata": {},
        "shared_snapshots": [snapshot_json(snap) for snap in snaps],
    }
