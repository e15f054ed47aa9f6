"""Verify a store: re-read every object and name every snapshot and file a damage touches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from westtek_core.snapshot.archive import ArchivePoller, require_readable
from westtek_core.snapshot.create import Progress, ProgressCallback
from westtek_core.snapshot.manifest import iter_files, referenced_chunks
from westtek_core.store import Repository, StoreError


@dataclass
class VerifyReport:
    """The outcome of ``snapshot verify``."""

    snapshots: list[str]
    problems: list[str] = field(default_factory=list)
    damaged: list[dict[str, str]] = field(default_factory=list)  # snapshot, file
    # packs in archive storage that none of these snapshots needs: left unread
    archived_packs: int = 0

    @property
    def ok(self) -> bool:
        """True when every object read back with the right hash."""
        return not self.problems and not self.damaged

    def to_json(self) -> dict[str, Any]:
        """The ``snapshot verify --json`` output."""
        report: dict[str, Any] = {
            "ok": self.ok,
            "snapshots": self.snapshots,
            "problems": self.problems,
            "damaged": self.damaged,
        }
        if self.archived_packs:  # only stores with archive storage have any
            report["archived_packs"] = self.archived_packs
        return report


def verify_snapshots(
    repo: Repository,
    snapshot_ids: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
    archive: ArchivePoller | None = None,
) -> VerifyReport:
    """Check the store's objects and map each damaged chunk to the files that need it.

    ``snapshot_ids`` limits the file mapping to those snapshots; every object is re-read
    either way, since a damaged pack may hold chunks of any snapshot, except packs in
    archive storage these snapshots do not need. Those they need are brought back first
    (:class:`~westtek_core.store.ArchiveWait`, or waited for with an ``archive`` poller, as
    :func:`~westtek_core.snapshot.restore_snapshot`). ``progress`` counts packs read.
    """
    ids = list(snapshot_ids) if snapshot_ids else repo.list_manifests()
    needed: set[str] = set()
    for snapshot_id in ids:
        try:
            needed |= referenced_chunks(repo.load_manifest(snapshot_id))
        except StoreError:
            continue  # reported below, with the files it names
    what = f"snapshot {ids[0][:12]}" if len(ids) == 1 else f"{len(ids)} snapshots"
    require_readable(repo, needed, what, archive)

    def packs_read(done: int, total: int) -> None:
        if progress:
            progress(Progress(done, total, 0, 0))

    check = repo.check(read_data=True, progress=packs_read)
    report = VerifyReport(
        snapshots=ids, problems=list(check.problems), archived_packs=len(check.archived_packs)
    )
    for snapshot_id in ids:
        try:
            manifest = repo.load_manifest(snapshot_id)
        except StoreError as e:
            report.problems.append(f"snapshot {snapshot_id}: manifest unreadable: {e}")
            continue
        unindexed = 0
        for item in iter_files(manifest):
            # a chunk no index lists (an index file lost or unreadable) cannot be read either
            lost = [c for c in item.chunks if not _indexed(repo, c)]
            unindexed += len(lost)
            if lost or check.damaged_chunks.intersection(item.chunks):
                report.damaged.append({"snapshot": snapshot_id, "file": item.display})
        if unindexed:
            report.problems.append(
                f"snapshot {snapshot_id}: {unindexed} chunks are in no index of the store"
            )
    return report


def _indexed(repo: Repository, chunk_id: str) -> bool:
    try:
        return repo.has_chunk(chunk_id)
    except StoreError:
        return False  # not even a chunk id: a damaged or crafted manifest
