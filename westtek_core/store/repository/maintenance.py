"""Maintaining a repository: stats, check, forgetting snapshots and prune.

Like restic's ``check`` and ``prune``: :meth:`MaintenanceOps.check` reads every index,
pack and manifest and reports what is damaged; :meth:`MaintenanceOps.prune` (under an
exclusive lock) deletes packs nothing references, repacks mostly unused ones and rewrites
the index as one file. Rebuilding an index from the packs themselves is
:mod:`westtek_core.snapshot.repair`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import blake3

from westtek_core.store.errors import ObjectArchived, ObjectCorrupt, ObjectMissing, StoreError
from westtek_core.store.index import decode_index_file
from westtek_core.store.locks import StoreLock
from westtek_core.store.pack import PackEntry, decode_trailer
from westtek_core.store.repository.read import ReadOps
from westtek_core.store.repository.state import map_threaded, pack_key, parse_chunk_id
from westtek_core.store.repository.write import PackBuilder, WriteOps

log = logging.getLogger(__name__)


@dataclass
class CheckReport:
    """What :meth:`Repository.check` found."""

    damaged_chunks: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    # Packs no index lists (left by an interrupted writer): harmless, removed by prune.
    orphan_packs: list[str] = field(default_factory=list)
    # Packs in archive storage (S3 Glacier), not read: neither damaged nor checked.
    archived_packs: list[str] = field(default_factory=list)
    packs_checked: int = 0
    chunks_checked: int = 0

    @property
    def ok(self) -> bool:
        """No problems and no damaged chunks."""
        return not self.problems and not self.damaged_chunks


@dataclass
class PruneStats:
    """What :meth:`Repository.prune` did."""

    removed_packs: int = 0
    repacked_packs: int = 0
    removed_blobs: int = 0
    kept_blobs: int = 0
    freed_bytes: int = 0
    # Referenced chunks the store does not have (their snapshots are already damaged).
    missing_blobs: int = 0


@dataclass
class _PackCheck:
    """What reading one pack found: its intact chunks, its problems, chunks checked."""

    good: set[bytes]
    problems: list[str]
    count: int
    archived: bool = False  # in archive storage: not read


class MaintenanceOps(ReadOps, WriteOps):
    """The maintenance operations of :class:`~westtek_core.store.Repository`.

    They build on both others: check reads manifests, prune writes a new index file.
    """

    # -- forgetting snapshots ------------------------------------------------------------

    def delete_manifest(self, snapshot_id: str) -> None:
        """Remove a snapshot (its data stays until :meth:`prune`)."""
        sid = self._resolve_snapshot(snapshot_id)
        if not self.backend.exists(f"snapshots/{sid}"):
            raise ObjectMissing(f"no snapshot {sid} in the store at {self.backend.url}")
        self.backend.remove(f"snapshots/{sid}")

    # -- stats and check -----------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counts over the index: packs, blobs, stored_bytes, raw_bytes, snapshots."""
        self._refresh_index()
        with self._lock:
            stored, raw = self._index.totals()
            packs = len(self._index.pack_ids())
            blobs = len(self._index)
        return {
            "packs": packs,
            "blobs": blobs,
            "stored_bytes": stored,
            "raw_bytes": raw,
            "snapshots": len(self.list_manifests()),
        }

    def _read_all_indexes(
        self, problems: list[str] | None
    ) -> tuple[list[str], dict[str, dict[bytes, PackEntry]]]:
        """Every index file's key and, per pack, its blobs (from all files, merged)."""
        keys = list(self.backend.list("index/"))
        packs: dict[str, dict[bytes, PackEntry]] = {}
        for key in keys:
            try:
                decoded = decode_index_file(self.backend.load(key), self._crypto, key)
            except (ObjectCorrupt, ObjectMissing) as exc:
                if problems is None:
                    raise StoreError(f"{exc}: run check, then retry") from None
                problems.append(str(exc))
                continue
            for pack_id, entries in decoded:
                blobs = packs.setdefault(pack_id, {})
                for entry in entries:
                    blobs.setdefault(entry.blob_id, entry)
        return keys, packs

    def _present_packs(self) -> dict[str, str]:
        return {k.rpartition("/")[2]: k for k in self.backend.list("data/")}

    def check(
        self, read_data: bool = True, progress: Callable[[int, int], None] | None = None
    ) -> CheckReport:
        """Verify the store: indexes, packs, snapshots; with ``read_data`` every chunk's hash.

        Problems are human lines naming the object; ``damaged_chunks`` lists the chunks with
        no intact copy anywhere. Packs no index lists are reported as orphans, not problems.
        ``progress(packs_done, packs_total)`` is called after each pack read.
        """
        report = CheckReport()
        _, indexed = self._read_all_indexes(report.problems)
        present = self._present_packs()
        healthy: set[bytes] = set()
        for pack_id in sorted(present.keys() - indexed.keys()):
            report.orphan_packs.append(present[pack_id])
        for pack_id in sorted(indexed.keys() - present.keys()):
            count = len(indexed[pack_id])
            report.problems.append(f"pack {pack_key(pack_id)} is missing ({count} chunks)")
        to_read = sorted(indexed.keys() & present.keys())
        if not read_data:
            for pack_id in to_read:
                healthy.update(indexed[pack_id])
        else:
            results = map_threaded(
                lambda p: self._check_pack(p, present[p], indexed[p]), to_read, workers=2
            )
            for pack_id, checked in zip(to_read, results, strict=True):
                if checked.archived:
                    report.archived_packs.append(present[pack_id])
                    healthy.update(indexed[pack_id])  # unknown, not damaged: left unread
                healthy.update(checked.good)
                report.problems.extend(checked.problems)
                report.chunks_checked += checked.count
                report.packs_checked += 1
                if progress:
                    progress(report.packs_checked, len(to_read))
        for blobs in indexed.values():
            report.damaged_chunks.update(b.hex() for b in blobs if b not in healthy)
        for sid in self.list_manifests():
            try:
                self.load_manifest(sid)
            except (ObjectCorrupt, ObjectMissing) as exc:
                report.problems.append(str(exc))
        return report

    def _check_pack(self, pack_id: str, key: str, blobs: dict[bytes, PackEntry]) -> _PackCheck:
        problems: list[str] = []
        good: set[bytes] = set()
        try:
            data = self.backend.load(key)
        except ObjectMissing:
            return _PackCheck(good, [f"pack {key} is missing ({len(blobs)} chunks)"], 0)
        except ObjectArchived:
            return _PackCheck(good, [], 0, archived=True)
        if blake3.blake3(data).hexdigest() != pack_id:
            problems.append(f"pack {key} does not match its id (damaged, {len(data)} bytes)")
        trailer: dict[bytes, PackEntry] = {}
        try:
            trailer = {e.blob_id: e for e in decode_trailer(data, self._crypto, f"pack {key}")}
        except ObjectCorrupt as exc:
            problems.append(str(exc))
        for blob_id, entry in blobs.items():
            what = f"chunk {blob_id.hex()} in pack {key}"
            if trailer and trailer.get(blob_id) != entry:
                problems.append(f"{what} is not where the index says")
            stored = data[entry.offset : entry.offset + entry.length]
            try:
                if len(stored) != entry.length:
                    raise ObjectCorrupt(f"{what} is truncated")
                plain = self._codec.decode_blob(stored, entry.flags, entry.raw_length, what)
                if len(plain) != entry.raw_length or self._crypto.chunk_id(plain) != blob_id:
                    raise ObjectCorrupt(f"{what} does not match its id (damaged)")
            except ObjectCorrupt as exc:
                problems.append(str(exc))
                continue
            good.add(blob_id)
        return _PackCheck(good, problems, len(blobs))

    # -- prune ---------------------------------------------------------------------------

    def prune(
        self,
        referenced: set[str] | Callable[[], set[str]],
        *,
        wait: float = 0.0,
    ) -> PruneStats:
        """Delete what no snapshot references, under an exclusive lock.

        ``referenced`` holds every chunk id the remaining snapshots use, or is a function
        computing that set; a function is called once the lock is held, so a snapshot
        committed meanwhile cannot lose its data (a set computed beforehand is only safe
        when no writer can commit in between). Packs with no referenced chunk are deleted;
        packs more than half unused are repacked; orphan packs go too; the index is
        rewritten. Refuses (:class:`StoreLockedError`) while a writer holds a fresh lock,
        after retrying for ``wait`` seconds.
        """
        with self._lock:
            if self._active_writers:
                raise StoreError("cannot prune while this process has a writer open")
        lock = StoreLock(self.backend, self._crypto, exclusive=True, purpose="prune").acquire(wait)
        try:
            chunk_ids = referenced() if callable(referenced) else referenced
            # A lock older than STALE_AFTER counts as abandoned: a long prune keeps renewing
            # its own, or a writer on another host could start and dedup against packs
            # this prune is about to delete.
            lock.refresh_if_due()
            return self._prune_locked({parse_chunk_id(c) for c in chunk_ids}, lock.refresh_if_due)
        finally:
            lock.release()

    def _prune_locked(
        self, wanted: set[bytes], keep_fresh: Callable[[], None] = lambda: None
    ) -> PruneStats:
        stats = PruneStats()
        index_keys, indexed = self._read_all_indexes(None)
        present = self._present_packs()
        kept: list[tuple[str, list[PackEntry]]] = []
        to_repack: list[tuple[str, list[PackEntry]]] = []
        to_delete = [p for p in present if p not in indexed]  # orphans
        placed: set[bytes] = set()
        for pack_id, blobs in indexed.items():
            if pack_id not in present:
                continue
            used = [e for e in blobs.values() if e.blob_id in wanted and e.blob_id not in placed]
            placed.update(e.blob_id for e in used)
            total = sum(e.length for e in blobs.values())
            unused = total - sum(e.length for e in used)
            if not used:
                to_delete.append(pack_id)
                stats.removed_blobs += len(blobs)
            elif unused * 2 > total:
                to_repack.append((pack_id, used))
                stats.removed_blobs += len(blobs) - len(used)
            else:
                kept.append((pack_id, list(blobs.values())))
        stats.missing_blobs = len(wanted - placed)
        if stats.missing_blobs:
            log.warning("prune: %d referenced chunks are not in the store", stats.missing_blobs)
        new_packs = self._repack(to_repack, keep_fresh)
        new_index = kept + new_packs
        new_name = self._write_index_file(new_index) if new_index else None
        for key in index_keys:
            if key.rpartition("/")[2] != new_name:
                self.backend.remove(key)
        sizes = {p: sum(e.length for e in indexed.get(p, {}).values()) for p in present}
        for pack_id in to_delete + [p for p, _ in to_repack]:
            self.backend.remove(present[pack_id])
            stats.freed_bytes += sizes[pack_id]
        stats.freed_bytes -= sum(e.length for _, entries in new_packs for e in entries)
        stats.removed_packs = len(to_delete)
        stats.repacked_packs = len(to_repack)
        stats.kept_blobs = sum(len(entries) for _, entries in new_index)
        self._refresh_index(full=True)
        return stats

    def _repack(
        self,
        packs: list[tuple[str, list[PackEntry]]],
        keep_fresh: Callable[[], None] = lambda: None,
    ) -> list[tuple[str, list[PackEntry]]]:
        """Copy the given blobs (verified, still compressed and sealed) into new packs."""
        out: list[tuple[str, list[PackEntry]]] = []
        builder = PackBuilder(self._crypto, self.backend)
        try:
            for pack_id, entries in packs:
                keep_fresh()
                key = pack_key(pack_id)
                data = self.backend.load(key)
                for e in entries:
                    stored = data[e.offset : e.offset + e.length]
                    what = f"chunk {e.blob_id.hex()} in pack {key}"
                    plain = self._codec.decode_blob(stored, e.flags, e.raw_length, what)
                    if self._crypto.chunk_id(plain) != e.blob_id:
                        raise ObjectCorrupt(
                            f"{what} does not match its id: run check; prune stopped"
                        )
                    builder.add(e.blob_id, e.flags, stored, e.raw_length)
                    if builder.size >= self.pack_size:
                        out.append(builder.save())
                        builder = PackBuilder(self._crypto, self.backend)
            if builder.entries:
                out.append(builder.save())
        finally:
            builder.discard()
        return out
