"""Finding, loading and deleting snapshots in a store."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from typing import Any

from westtek_core.paths import write_atomic
from westtek_core.snapshot.archive import require_readable
from westtek_core.snapshot.manifest import (
    AREA_WORKSPACE,
    ManifestFile,
    content_checksum,
    iter_files,
    referenced_chunks,
    safe_relative_path,
)
from westtek_core.store import FileContent, Repository, SnapshotNotFound, StoreError

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


# Summaries of the snapshots seen before, in the store's local cache directory.
SUMMARIES_CACHE = "snapshot-summaries.json"


def snapshot_summaries(repo: Repository) -> list[dict[str, Any]]:
    """:func:`summarize` of every snapshot in the store, by id, reading only new manifests.

    A snapshot's id is the hash of its manifest, so its summary never changes: once made it
    is kept in the store's cache directory, and finding "the newest snapshot of alice"
    (every server start) reads one manifest instead of each in a shared lab store.
    """
    from westtek_core.snapshot.create import summarize

    path = repo.cache_dir / SUMMARIES_CACHE
    try:
        cached = json.loads(path.read_text())
        known: dict[str, dict[str, Any]] = cached if isinstance(cached, dict) else {}
    except (OSError, ValueError):
        known = {}
    ids = repo.list_manifests()
    fresh = [i for i in ids if not isinstance(known.get(i), dict)]
    for snapshot_id in fresh:
        known[snapshot_id] = summarize(load_snapshot(repo, snapshot_id))
    summaries = [known[i] for i in ids]
    if fresh or len(known) != len(ids):
        _keep_summaries(path, {s["id"]: s for s in summaries})
    return summaries


def _keep_summaries(path: Any, summaries: dict[str, dict[str, Any]]) -> None:
    """Write the cache whole and atomically (servers and the CLI share it); best effort."""
    try:
        write_atomic(path, json.dumps(summaries))
    except OSError:
        pass  # a cache: the next listing reads the manifests again


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


def copy_snapshot(source: Repository, dest: Repository, id_or_prefix: str) -> str:
    """Copy a snapshot and the data it needs from ``source`` into ``dest``; its id there.

    Chunks keep their boundaries and are verified as they are read; their ids (and so the
    snapshot's) change when the stores' keys differ. Nothing appears in ``dest`` until every
    chunk is stored: the manifest is saved last. When packs it needs are in archive storage,
    their restore is requested and :class:`~westtek_core.store.ArchiveWait` raised before
    anything is written.
    """
    manifest = copy.deepcopy(load_snapshot(source, id_or_prefix))
    require_readable(source, referenced_chunks(manifest), f"snapshot {manifest['id'][:12]}")
    del manifest["id"]  # the id is the hash of the rest, recomputed by ``dest``
    copied: dict[str, str] = {}
    with dest.writer() as writer:
        for item in iter_files(manifest):
            if not item.chunks:
                continue
            for chunk in item.chunks:
                if chunk not in copied:
                    copied[chunk] = writer.add_chunk(source.read_chunk(chunk))
            item.entry["content"] = [copied[chunk] for chunk in item.chunks]  # type: ignore[index]
    if "checksum" in manifest:
        manifest["checksum"] = content_checksum(manifest)
    return dest.save_manifest(manifest)


def workspace_files(manifest: dict[str, Any], suffixes: tuple[str, ...]) -> list[ManifestFile]:
    """The regular files of a snapshot's workspace whose names end with one of ``suffixes``.

    Paths are checked (no absolute path, no ``..``): a hostile manifest cannot make a reader
    write outside the folder it extracts into.
    """
    found = []
    for item in iter_files(manifest):
        if item.area != AREA_WORKSPACE or item.entry.get("kind", "file") != "file":
            continue
        if item.path.lower().endswith(suffixes):
            safe_relative_path(item.path)
            found.append(item)
    return found


def read_stored_file(repo: Repository, item: ManifestFile, max_bytes: int) -> bytes:
    """A file's stored bytes (verified chunk by chunk); StoreError past ``max_bytes``."""
    size = int(item.entry.get("stored_size", item.entry.get("size", 0)))
    if size > max_bytes:
        raise StoreError(f"{item.path} is {size} bytes, over the {max_bytes}-byte limit")
    data = b"".join(repo.iter_file(FileContent(size=size, chunks=tuple(item.chunks))))
    if len(data) > max_bytes:
        raise StoreError(f"{item.path} is over the {max_bytes}-byte limit")
    return data
