"""Which snapshot each environment's drift is measured against.

The store is write-once, so the baseline pointer lives beside it, in the user's data
directory, keyed by the store's id and the environment id. Without one, the first snapshot
of the environment is the baseline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from westtek_core.paths import data_dir, write_atomic
from westtek_core.snapshot import load_snapshot, resolve_snapshot_id, snapshot_summaries
from westtek_core.store import Repository, StoreError


def _registry_path() -> Path:
    return data_dir() / "baselines.json"


def _read_registry() -> dict[str, dict[str, str]]:
    try:
        loaded = json.loads(_registry_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def set_baseline(repo: Repository, id_or_prefix: str) -> dict[str, Any]:
    """Make a snapshot the baseline of its environment; returns that snapshot's manifest."""
    manifest = load_snapshot(repo, id_or_prefix)
    registry = _read_registry()
    registry.setdefault(repo.id, {})[str(manifest["environment_id"])] = str(manifest["id"])
    write_atomic(_registry_path(), json.dumps(registry, indent=1, sort_keys=True))
    return manifest


def chosen_baseline(repo: Repository, environment_id: str) -> str | None:
    """The snapshot id set as the environment's baseline, if one was (a cheap read)."""
    return _read_registry().get(repo.id, {}).get(environment_id)


def baseline_id(repo: Repository, environment_id: str, explicit: str | None = None) -> str:
    """The baseline's id: ``explicit`` if given, else the one set, else the environment's first."""
    if explicit:
        return resolve_snapshot_id(repo, explicit)
    chosen = chosen_baseline(repo, environment_id)
    if chosen and chosen in repo.list_manifests():
        return chosen
    mine = [s for s in snapshot_summaries(repo) if s.get("environment_id") == environment_id]
    if not mine:
        raise StoreError(
            f"environment {environment_id!r} has no snapshot in this store yet: "
            "run `westtek snapshot create` first, or pass --baseline ID"
        )
    return str(min(mine, key=lambda m: str(m.get("timestamp")))["id"])


def baseline_manifest(
    repo: Repository, environment_id: str, explicit: str | None = None
) -> dict[str, Any]:
    """The baseline's manifest (which one: :func:`baseline_id`)."""
    return load_snapshot(repo, baseline_id(repo, environment_id, explicit))


def baseline_or_none(repo: Repository | None, environment_id: str) -> dict[str, Any] | None:
    """The baseline's manifest, or None when there is no store or no snapshot to measure against.

    For readers that show drift when they can (the service's state, the agents' tools): a
    missing or unreadable baseline means "nothing to compare with", not a failure.
    """
    if repo is None:
        return None
    try:
        return baseline_manifest(repo, environment_id)
    except StoreError:
        return None
