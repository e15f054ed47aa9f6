"""Finding, loading and deleting snapshots in a store."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from westtek_core.snapshot.manifest import referenced_chunks
from westtek_core.store import Repository, SnapshotNotFound, StoreError

MIN_PREFIX = 4


def resolve_snapshot_id(repo: Repository, id_or_prefix: str) -> str:
    """The full id of the one snapshot whose id starts with ``id_or_prefix``."""
    wanted = id_or_prefix.strip().lower()
    if len(wanted) < MIN_PREFIX:
        raise StoreError(
            f"snapshot id {id_or_prefix!r} is too short: give at least {MIN_PREFIX} characters"
        )
    matches = [i for i in repo.list_manifests() if i.startswith(wanted)]
    if not matches:
        raise SnapshotNotFound(
            f"no snapshot {id_or_prefix!r} in this store (see `westtek snapshot list`)"
        )
    if len(matches) > 1:
        raise StoreError(
            f"snapshot id {id_or_prefix!r} is ambiguous: {', '.join(m[:12] for m in matches)}"
        )
    return matches[0]


def load_snapshot(repo: Repository, id_or_prefix: str) -> dict[str, Any]:
    """The manifest of a snapshot, with its ``id``."""
    snapshot_id = resolve_snapshot_id(repo, id_or_prefix)
    return {**repo.load_manifest(snapshot_id), "id": snapshot_id}


def delete_snapshot(repo: Repository, id_or_prefix: str) -> dict[str, Any]:
    """Delete a snapshot, then free the objects no remaining snapshot references.

    The referenced set is computed under prune's exclusive lock, so a snapshot another
    writer commits meanwhile keeps its data.
    """
    snapshot_id = resolve_snapshot_id(repo, id_or_prefix)
    repo.delete_manifest(snapshot_id)

    def still_referenced() -> set[str]:
        keep: set[str] = set()
        for other in repo.list_manifests():
            keep |= referenced_chunks(repo.load_manifest(other))
        return keep

    stats = repo.prune(still_referenced)
    return {"id": snapshot_id, "prune": asdict(stats)}
