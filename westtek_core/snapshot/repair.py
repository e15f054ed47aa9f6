"""Repair a damaged store: salvage what is intact, re-read the rest from the live environment.

``westtek snapshot verify`` names what is damaged; ``westtek snapshot repair`` then, under
the store's exclusive lock (no writer can run meanwhile):

1. reads every pack: a pack whose bytes still hash to its id is intact and kept (its own
   trailer lists its chunks, so a lost or damaged index file costs nothing); from a damaged
   pack every chunk that still decodes to its id is *salvaged* into a new pack;
2. for every chunk a snapshot needs and no intact copy holds, re-reads the files that need
   it from where the snapshot took them (the live workspace, environment prefix, kernel and
   config dirs; ``workspace_root`` when the workspace moved): chunk ids are content hashes,
   so a file that has not changed since gives back exactly the lost chunk;
3. writes one new index over the kept and new packs, then removes the old index files, the
   damaged packs, packs no index listed and no snapshot needs (left by interrupted
   writers) and, on a local store, partial writes a killed process left in ``tmp/``.

What cannot be recovered (a file changed or removed since, a manifest that no longer hashes
to its id) is named in the report; nothing that reads back correctly is ever removed.
Steps are ordered so that a crash during repair leaves a store that a re-run repairs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blake3

from westtek_core.snapshot.manifest import (
    AREA_CONFIG,
    AREA_ENV,
    AREA_KERNEL,
    AREA_WORKSPACE,
    ManifestError,
    ManifestFile,
    iter_files,
    safe_relative_path,
)
from westtek_core.store import LocalDirectoryBackend, Repository, StoreError
from westtek_core.store.chunker import Chunker
from westtek_core.store.index import decode_index_file
from westtek_core.store.locks import StoreLock
from westtek_core.store.pack import PackEntry, decode_trailer
from westtek_core.store.repository import _PackBuilder, pack_key

# The repair reaches into the repository's internals (codec, pack builder, index files):
# it is the one maintenance operation that rewrites what a writer normally owns.


@dataclass
class RepairReport:
    """What ``snapshot repair`` found and did (``--json`` output)."""

    packs_read: int = 0
    damaged_packs: list[str] = field(default_factory=list)
    missing_packs: list[str] = field(default_factory=list)
    unreadable_index_files: list[str] = field(default_factory=list)
    salvaged_chunks: int = 0
    recovered_chunks: int = 0
    recovered_files: list[dict[str, str]] = field(default_factory=list)  # snapshot, file, from
    unrecoverable: list[dict[str, str]] = field(default_factory=list)  # snapshot, file, reason
    damaged_snapshots: list[dict[str, str]] = field(default_factory=list)  # snapshot, problem
    removed_packs: int = 0
    removed_orphan_packs: int = 0
    removed_partial_writes: int = 0
    new_index: str | None = None

    @property
    def ok(self) -> bool:
        """Every snapshot is whole again."""
        return not self.unrecoverable and not self.damaged_snapshots

    def to_json(self) -> dict[str, Any]:
        """The ``snapshot repair --json`` output."""
        return {
            "ok": self.ok,
            "packs_read": self.packs_read,
            "damaged_packs": self.damaged_packs,
            "missing_packs": self.missing_packs,
            "unreadable_index_files": self.unreadable_index_files,
            "salvaged_chunks": self.salvaged_chunks,
            "recovered_chunks": self.recovered_chunks,
            "recovered_files": self.recovered_files,
            "unrecoverable": self.unrecoverable,
            "damaged_snapshots": self.damaged_snapshots,
            "removed_packs": self.removed_packs,
            "removed_orphan_packs": self.removed_orphan_packs,
            "removed_partial_writes": self.removed_partial_writes,
            "new_index": self.new_index,
        }


def repair_store(
    repo: Repository,
    *,
    workspace_root: Path | None = None,
    wait: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> RepairReport:
    """Repair ``repo`` in place (see the module docstring); return what was done.

    Raises :class:`~westtek_core.store.StoreLockedError` while a writer holds a fresh lock
    (after retrying for ``wait`` seconds). ``progress(packs_done, packs_total)`` follows the
    pack reading.
    """
    with repo._lock:
        if repo._active_writers:
            raise StoreError("cannot repair while this process has a writer open")
    lock = StoreLock(repo.backend, repo._crypto, exclusive=True, purpose="repair").acquire(wait)
    repair = _Repair(repo, workspace_root, progress, lock)
    try:
        return repair.run()
    finally:
        repair.builder.discard()
        lock.release()
        repo._refresh_index(full=True)


class _Repair:
    def __init__(
        self,
        repo: Repository,
        workspace_root: Path | None,
        progress: Callable[[int, int], None] | None,
        lock: StoreLock,
    ) -> None:
        self.repo = repo
        # refreshed as the work goes on: a lock older than 30 min counts as stale, and a
        # writer starting then would lose the packs this repair takes for orphans
        self.lock = lock
        self.backend = repo.backend
        self.workspace_root = workspace_root
        self.progress = progress
        self.report = RepairReport()
        self.builder = _PackBuilder(repo._crypto, repo.backend)
        self.new_packs: list[tuple[str, list[PackEntry]]] = []
        # blob id → where an intact copy is, or None once it is placed in a new pack
        self.available: dict[bytes, str | None] = {}
        self.damaged: list[str] = []  # ids of packs whose bytes no longer match them

    # -- reading what is there -----------------------------------------------------------

    def _index_files(self) -> tuple[list[str], dict[str, dict[bytes, PackEntry]]]:
        keys = list(self.backend.list("index/"))
        indexed: dict[str, dict[bytes, PackEntry]] = {}
        for key in keys:
            try:
                decoded = decode_index_file(self.backend.load(key), self.repo._crypto, key)
            except StoreError:
                self.report.unreadable_index_files.append(key)
                continue
            for pack_id, entries in decoded:
                blobs = indexed.setdefault(pack_id, {})
                for entry in entries:
                    blobs.setdefault(entry.blob_id, entry)
        return keys, indexed

    def _manifests(self) -> dict[str, Mapping[str, Any]]:
        manifests: dict[str, Mapping[str, Any]] = {}
        for sid in self.repo.list_manifests():
            try:
                manifests[sid] = self.repo.load_manifest(sid)
            except StoreError as exc:
                self.report.damaged_snapshots.append(
                    {
                        "snapshot": sid,
                        "problem": f"{exc}: it cannot be rebuilt; delete it with"
                        f" `westtek snapshot delete {sid[:12]}`",
                    }
                )
        return manifests

    def _salvage(self, key: str, data: bytes, entries: Mapping[bytes, PackEntry]) -> None:
        """Copy every blob of a damaged pack that still decodes to its id."""
        codec, crypto = self.repo._codec, self.repo._crypto
        for blob_id, entry in entries.items():
            if blob_id in self.available:
                continue  # an intact copy exists, or it was salvaged already
            stored = data[entry.offset : entry.offset + entry.length]
            if len(stored) != entry.length:
                continue
            try:
                plain = codec.decode_blob(stored, entry.flags, entry.raw_length, key)
            except StoreError:
                continue
            if len(plain) == entry.raw_length and crypto.chunk_id(plain) == blob_id:
                self._add(blob_id, entry.flags, stored, entry.raw_length)
                self.report.salvaged_chunks += 1

    def _add(self, blob_id: bytes, flags: int, stored: bytes, raw_length: int) -> None:
        self.builder.add(blob_id, flags, stored, raw_length)
        self.available[blob_id] = None
        if self.builder.size >= self.repo.pack_size:
            self._flush()

    def _flush(self) -> None:
        if not self.builder.entries:
            return
        pack_id = self.builder.finish()
        if pack_id in self.damaged:
            # the same chunks re-packed in the same order give the pack's original bytes,
            # under its id: the damaged copy must go first, or write-once would keep it
            self.backend.remove(pack_key(pack_id))
            self.damaged.remove(pack_id)
        self.new_packs.append(self.builder.save())
        self.builder = _PackBuilder(self.repo._crypto, self.repo.backend)

    # -- re-reading the live environment -------------------------------------------------

    def _live_path(self, manifest: Mapping[str, Any], item: ManifestFile) -> Path | None:
        try:
            relative = safe_relative_path(item.path)
        except ManifestError:
            return None
        root: Any = None
        if item.area == AREA_WORKSPACE:
            root = self.workspace_root or manifest.get("workspace", {}).get("root")
        elif item.area == AREA_ENV:
            interpreters = manifest.get("interpreters", [])
            index = int(item.area_key)
            tree = interpreters[index].get("prefix_tree") if index < len(interpreters) else None
            root = (tree or {}).get("root")
        elif item.area == AREA_KERNEL:
            for kernel in manifest.get("kernels", []):
                if str(kernel.get("name")) == item.area_key:
                    root = kernel.get("resource_dir")
        elif item.area == AREA_CONFIG:
            root = item.area_key
        return Path(str(root), relative) if root else None

    def _chunks_of(self, path: Path) -> Iterator[bytes | memoryview]:
        chunker = Chunker(self.repo.chunker_params)
        with open(path, "rb", buffering=0) as stream:
            if os.fstat(stream.fileno()).st_size < self.repo.chunker_params.small_file_size:
                yield from chunker.cut_buffer(stream.read())
            else:
                yield from chunker.cut_stream(stream)

    def _recover(self, sid: str, manifest: Mapping[str, Any], item: ManifestFile) -> None:
        """Re-read one file that needs lost chunks; record the outcome."""
        wanted = {b for b in map(bytes.fromhex, item.chunks) if self._lost(b)}
        path = self._live_path(manifest, item)
        where = {"snapshot": sid, "file": item.display}
        if path is None or not path.is_file() or path.is_symlink():
            self.report.unrecoverable.append({**where, "reason": "not in the live environment"})
            return
        codec, crypto = self.repo._codec, self.repo._crypto
        try:
            for chunk in self._chunks_of(path):
                blob_id = crypto.chunk_id(chunk)
                if blob_id in wanted and self._lost(blob_id):
                    flags, stored = codec.encode_blob(chunk)
                    self._add(blob_id, flags, stored, len(chunk))
                    self.report.recovered_chunks += 1
        except OSError as exc:
            self.report.unrecoverable.append({**where, "reason": f"cannot read {path}: {exc}"})
            return
        if any(self._lost(bytes.fromhex(c)) for c in item.chunks):
            self.report.unrecoverable.append({**where, "reason": f"{path} changed since"})
        else:
            self.report.recovered_files.append({**where, "from": str(path)})

    def _lost(self, blob_id: bytes) -> bool:
        return blob_id not in self.available

    # -- the whole repair ----------------------------------------------------------------

    def run(self) -> RepairReport:
        index_keys, indexed = self._index_files()
        present = {k.rpartition("/")[2]: k for k in self.backend.list("data/")}
        self.report.missing_packs = sorted(pack_key(p) for p in indexed.keys() - present.keys())
        manifests = self._manifests()
        needed = {
            bytes.fromhex(c)
            for manifest in manifests.values()
            for item in iter_files(manifest)
            for c in item.chunks
        }
        # Pass 1: intact packs, by their own trailers.
        intact: dict[str, list[PackEntry]] = {}
        damaged = self.damaged
        for done, (pack_id, key) in enumerate(sorted(present.items()), start=1):
            self.lock.refresh_if_due()
            data = self.backend.load(key)
            self.report.packs_read += 1
            if blake3.blake3(data).hexdigest() == pack_id:
                try:
                    trailer = decode_trailer(data, self.repo._crypto, f"pack {key}")
                except StoreError:
                    trailer = None
                if trailer is not None:
                    intact[pack_id] = trailer
                    for entry in trailer:
                        self.available.setdefault(entry.blob_id, pack_id)
                else:
                    damaged.append(pack_id)
            else:
                damaged.append(pack_id)
            if self.progress:
                self.progress(done, len(present))
        # Pass 2: salvage from damaged packs what no intact pack holds.
        for pack_id in list(damaged):
            self.lock.refresh_if_due()
            key = present[pack_id]
            self.report.damaged_packs.append(key)
            data = self.backend.load(key)
            where: dict[bytes, PackEntry] = dict(indexed.get(pack_id, {}))
            try:
                for entry in decode_trailer(data, self.repo._crypto, f"pack {key}"):
                    where.setdefault(entry.blob_id, entry)
            except StoreError:
                pass  # the index's entries are all we have
            self._salvage(key, data, {b: e for b, e in where.items() if b in needed})
        # Pass 3: the live environment, for every file that still misses a chunk.
        for sid, manifest in manifests.items():
            self.lock.refresh_if_due()
            for item in iter_files(manifest):
                if any(self._lost(bytes.fromhex(c)) for c in item.chunks):
                    self._recover(sid, manifest, item)
        self._flush()
        # Pass 4: one new index over what is kept; then remove what it replaces.
        # an intact pack no readable index lists is kept only when it holds a chunk some
        # snapshot needs and no listed pack has (its index file was lost or damaged)
        listed = {p: e for p, e in intact.items() if p in indexed}
        in_listed = {e.blob_id for entries in listed.values() for e in entries}
        kept = {
            pack_id: entries
            for pack_id, entries in intact.items()
            if pack_id in listed
            or any(e.blob_id in needed and e.blob_id not in in_listed for e in entries)
        }
        packs = [*kept.items(), *self.new_packs]
        if packs:
            self.report.new_index = self.repo._write_index_file(packs)
        for key in index_keys:
            if key.rpartition("/")[2] != self.report.new_index:
                self.backend.remove(key)
        self.report.removed_packs = len(self.report.damaged_packs)
        for pack_id in damaged:
            self.backend.remove(present[pack_id])
        for pack_id in intact.keys() - kept.keys():
            self.backend.remove(present[pack_id])
            self.report.removed_orphan_packs += 1
        self.report.removed_partial_writes = _remove_partial_writes(self.backend)
        return self.report


def _remove_partial_writes(backend: Any) -> int:
    """Delete ``tmp/`` leftovers of a local store (no writer runs: we hold the exclusive lock)."""
    if not isinstance(backend, LocalDirectoryBackend):
        return 0  # S3 writes are atomic PUTs: nothing partial is ever visible
    removed = 0
    tmp = Path(backend.root, "tmp")
    for path in tmp.iterdir() if tmp.is_dir() else []:
        if path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed
