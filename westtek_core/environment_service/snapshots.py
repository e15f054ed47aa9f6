"""The environment service's store: snapshots listed and read, and the jobs that write them.

Snapshot, verify, restore, rollback and take-over run as background jobs, and so do the
restore and the take-over a container start left for when their packs are back from archive
storage; the store is polled for snapshots taken elsewhere (the CLI, another server), each
announced once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from westtek_core.areas import AREAS
from westtek_core.autosnapshot import prune_automatic, unchanged_since
from westtek_core.capture import capture_environment
from westtek_core.drift.baseline import baseline_manifest, chosen_baseline, set_baseline
from westtek_core.environment_service.state import ServiceState
from westtek_core.hub_reports import snapshot_report
from westtek_core.jobs import Job
from westtek_core.rollback import RollbackProgress, RollbackReport, preview_rollback, run_rollback
from westtek_core.rollback.container_start import pending_restore, pending_take_over
from westtek_core.snapshot import (
    Progress,
    create_snapshot,
    export_snapshot,
    load_snapshot,
    referenced_chunks,
    restore_snapshot,
    snapshot_summaries,
    verify_snapshots,
)
from westtek_core.snapshot.archive import require_readable
from westtek_core.snapshot.restore import ignore_in_workspace, workspace_restore_target
from westtek_core.snapshot.retention import RetentionPolicy
from westtek_core.store import ArchiveWait, SnapshotNotFound

log = logging.getLogger(__name__)


class SnapshotOps(ServiceState):
    """The store's reads and background jobs of :class:`EnvironmentService`."""

    def list_snapshots(self) -> dict[str, Any]:
        """Every snapshot in the store, oldest first, the baseline marked."""
        repo = self._existing_repo()
        if repo is None:
            return {"snapshots": [], "store_bytes": 0}
        baseline = self._baseline()
        rows = snapshot_summaries(repo)
        for row in rows:
            row["baseline"] = bool(baseline and row["id"] == baseline["id"])
        rows.sort(key=lambda r: str(r["timestamp"]))
        return {"snapshots": rows, "store_bytes": repo.stats()["stored_bytes"]}

    def snapshot(self, id_or_prefix: str) -> dict[str, Any]:
        """One snapshot's manifest."""
        return load_snapshot(self._store_with_snapshots(), id_or_prefix)

    def diff(self, id_a: str, id_b: str) -> dict[str, Any]:
        """Two snapshots compared, in the drift report's shape."""
        from westtek_core.drift import diff_manifests

        repo = self._store_with_snapshots()
        return diff_manifests(load_snapshot(repo, id_a), load_snapshot(repo, id_b)).to_json()

    def export(self, id_or_prefix: str, fmt: str, interpreter: int = 0) -> str:
        """A snapshot's packages as a lockfile."""
        return export_snapshot(self.snapshot(id_or_prefix), fmt, interpreter)

    def start_snapshot(
        self,
        note: str = "",
        labels: Mapping[str, str] | None = None,
        baseline: bool = False,
        skip_unchanged: bool = False,
        retention: RetentionPolicy | None = None,
    ) -> Job:
        """Snapshot the environment in the background (and make it the baseline if asked).

        ``skip_unchanged`` writes nothing when the environment is as its latest snapshot
        (the result is ``{"unchanged_since": <its id>}``); ``retention`` then prunes the
        environment's automatic snapshots (westtek_core.autosnapshot).
        """

        def work(progress: Callable[[Progress], None]) -> dict[str, Any]:
            self.check_store()  # what is there already is not this snapshot's news
            repo = self.repo(create=True)
            capture = capture_environment(
                self.pythons, self.root, secret_scanner=self.secret_scanner
            )
            if skip_unchanged and (
                same := unchanged_since(repo, capture, self.environment_id, self.root)
            ):
                return {"unchanged_since": same}
            result = create_snapshot(
                repo,
                capture,
                note=note,
                labels=labels,
                environment_id=self.environment_id,
                progress=progress,
            )
            if baseline:
                set_baseline(repo, result.id)
            pruned = []
            if retention is not None:
                # the baseline (set, or else the environment's first snapshot) always stays
                kept = {str(baseline_manifest(repo, self.environment_id)["id"])}
                pruned = prune_automatic(repo, self.environment_id, retention, protected=kept)
            self.baseline_changed()
            self.check_store()
            knowledge = self.refresh_knowledge(result.manifest)
            return result.to_json() | {"knowledge": knowledge, "pruned": pruned}

        what = "snapshot" + (" as the new baseline" if baseline else "")
        return self.jobs.submit("snapshot", what + (f": {note}" if note else ""), work)

    def refresh_knowledge(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Re-ingest what changed into the lab's knowledge base after a snapshot.

        A knowledge base that cannot be updated never fails the snapshot: the error is
        reported in the job's result instead.
        """
        if self.kb_index is None:
            return {"skipped": "no knowledge base configured"}
        from westtek_core.kb import KnowledgeIndexBackend

        try:
            backend = self.kb_backend or KnowledgeIndexBackend()
            kb = backend.open_knowledge_base(self.kb_index, self.environment_id)
            try:
                report = kb.ingest_everything(
                    self.root, [manifest], self.event_log.install_history(self.environment_id)
                )
            finally:
                kb.close()
        except Exception as e:  # noqa: BLE001 — reported, never fatal to the snapshot
            return {"error": f"{type(e).__name__}: {e}"}
        return report.to_json()

    def start_verify(self, id_or_prefix: str) -> Job:
        """Verify one snapshot's objects in the background."""
        snapshot_id = load_snapshot(self._store_with_snapshots(), id_or_prefix)["id"]

        def work(progress: Callable[[Progress], None]) -> dict[str, Any]:
            return verify_snapshots(self.repo(), [snapshot_id], progress=progress).to_json()

        return self.jobs.submit("verify", f"verify {snapshot_id[:12]}", work)

    def start_restore(self, id_or_prefix: str, target: str, mode: str = "files") -> Job:
        """Restore a snapshot into a new directory in the background."""
        manifest = load_snapshot(self._store_with_snapshots(), id_or_prefix)
        path = workspace_restore_target(self.root, target)
        ignore_in_workspace(self.root, path)

        def work(progress: Callable[[Progress], None]) -> dict[str, Any]:
            report = restore_snapshot(self.repo(), manifest, path, mode=mode, progress=progress)
            return report.to_json()

        return self.jobs.submit("restore", f"restore {manifest['id'][:12]} into {target}", work)

    def _rollback_target(self, to: str | None) -> dict[str, Any]:
        """The snapshot a rollback goes back to: ``to``, else the baseline."""
        if to:
            return load_snapshot(self._store_with_snapshots(), to)
        target = self._baseline() or {}
        if not target:
            raise SnapshotNotFound("no baseline to roll back to: take a snapshot first")
        return target

    def rollback_preview(self, to: str | None = None, only: str | None = None) -> dict[str, Any]:
        """Every step a rollback would take now (packages, kernels, config); changes nothing."""
        target = self._rollback_target(to)
        plan = preview_rollback(
            self.repo(), str(target["id"]), self.pythons, self.root, [only] if only else None
        )
        return plan.to_preview()

    def start_rollback(
        self, to: str | None = None, only: str | None = None, expected_plan: str | None = None
    ) -> Job:
        """Put the live environment back to a snapshot (the baseline by default), in place.

        With ``expected_plan`` (a preview's fingerprint) the job fails, changing nothing,
        when the rollback would no longer do exactly what was previewed.
        """
        target = self._rollback_target(to)

        def work(progress: Callable[[Progress], None]) -> dict[str, Any]:
            return self._roll_back(
                str(target["id"]), progress, only=[only] if only else None,
                expected_plan=expected_plan,
            ).to_json()  # fmt: skip

        what = f"roll back {'the ' + only if only else 'everything'} to {target['id'][:12]}"
        return self.jobs.submit("rollback", what, work)

    def resume_container_start(self, record: Path | None = None) -> Job | None:
        """Finish the restore this container's start left undone, once its packs are back.

        The pre-start step could not restore a snapshot whose packs were in archive storage
        (its ``record``, by default ``prestart.json``): this job waits for them, showing
        "waiting for archive, ready in about N hours", then rolls the environment back as
        the start would have, and marks the record done. None when nothing was left.

        Hours may have passed: the researcher's changes since the start are in the live
        environment, so the safety snapshot is an ordinary rollback's, kept like the ones
        their own rollbacks leave (not a container start's, of which only the latest is kept).
        """
        pending = pending_restore(record)
        if pending is None:
            return None
        short = pending.snapshot[:12]

        def work(progress: Callable[[Progress], None]) -> dict[str, Any]:
            repo = self.repo()
            target = load_snapshot(repo, pending.snapshot)
            # raises ArchiveWait (their restore requested) until they are back: a retry
            require_readable(repo, referenced_chunks(target, workspace=False), f"snapshot {short}")
            progress(Progress(0, 0, 0, 0, "the packs are back from archive storage: rolling back"))
            try:
                report = self._roll_back(pending.snapshot, progress, only=pending.areas)
            finally:
                pending.mark_done()  # done once, whatever came of it
            return report.to_json()

        every = set(pending.areas) == set(AREAS)
        areas = "everything" if every else "the " + " and ".join(pending.areas)
        what = f"roll back {areas} to {short}, as this container started"
        return self.jobs.submit("rollback", what, work)

    def _roll_back(
        self,
        target_id: str,
        progress: Callable[[Progress], None],
        *,
        only: Collection[str] | None = None,
        expected_plan: str | None = None,
    ) -> RollbackReport:
        """:func:`run_rollback` with the drift watcher held off the environment meanwhile."""

        def steps(state: RollbackProgress) -> None:
            progress(Progress(state.done, state.total, 0, 0))

        with self._lock:
            self._rollbacks_running += 1
        try:
            return run_rollback(
                self.repo(),
                target_id,
                self.pythons,
                self.root,
                only=only,
                progress=steps,
                expected_plan=expected_plan,
            )
        finally:
            with self._lock:
                self._rollbacks_running -= 1
            # the next watcher grades the rollback whole (and the new safety snapshot)
            self.baseline_changed()
            self.check_store()

    def start_take_over(
        self,
        environment_id: str,
        predecessor: str,
        snapshot: str | None = None,
        *,
        then: Callable[[], None] | None = None,
    ) -> Job:
        """Take over a predecessor's environment from the store, in the background.

        Their work goes into a folder of the workspace, their packages into a kernel of
        their own (:mod:`westtek_core.kb.take_over`), from ``snapshot`` when given, else
        the environment's latest; the job's result is its record. While the snapshot's
        packs are in archive storage the job waits for them, writing nothing; ``then`` runs
        once the take-over ran, whatever came of it.
        """
        from jupyter_core.paths import jupyter_data_dir

        from westtek_core.kb.take_over import take_over

        def work(progress: Callable[[Progress], None]) -> dict[str, Any]:
            kernels = Path(jupyter_data_dir()) / "kernels"
            waiting = False
            try:
                return take_over(self.repo(), environment_id, predecessor, self.root,
                                 kernels_dir=kernels, snapshot=snapshot).to_json()  # fmt: skip
            except ArchiveWait:
                waiting = True  # their restore requested, nothing written: the job runs again
                raise
            finally:
                if then is not None and not waiting:
                    then()

        return self.jobs.submit("take-over", f"take over {predecessor}'s {environment_id}", work)

    def resume_take_over(self, record: Path | None = None) -> Job | None:
        """Do the take-over this server's launch left undone, once the packs are back.

        A take-over launch could not bring in a snapshot whose packs were in archive storage
        (its ``record``, by default ``prestart.json``): this job waits for them, showing
        "waiting for archive, ready in about N hours", then takes over as the launch would
        have, and marks the record done. None when nothing was left.
        """
        pending = pending_take_over(record)
        if pending is None:
            return None
        return self.start_take_over(
            pending.environment_id, pending.predecessor, pending.snapshot, then=pending.mark_done
        )

    def check_store(self) -> None:
        """Announce this environment's snapshots not announced yet, and follow its baseline.

        Snapshots reach the store from this server's jobs, but also from the ``westtek``
        CLI in a terminal, a rollback's safety snapshot or another server of the same
        environment; each is announced once, however it was taken. The first listing of a
        store only learns what is already there.
        """
        repo = self._existing_repo()
        with self._store_lock:
            if repo is None:  # no store yet: every snapshot to come is new
                self._known_snapshots = set()
                return
            listed = set(repo.list_manifests())
            chosen = chosen_baseline(repo, self.environment_id)
            known, self._known_snapshots = self._known_snapshots, listed
            moved, self._chosen_baseline = chosen != self._chosen_baseline, chosen
            new = sorted(listed - known) if known is not None else []
            manifests = [load_snapshot(repo, sid) for sid in new]
        for manifest in sorted(manifests, key=lambda m: str(m.get("timestamp"))):
            if manifest.get("environment_id") == self.environment_id:
                report = snapshot_report(manifest, repo.backend.url)
                self._broadcast({"type": "snapshot", "snapshot": report})
        # the baseline is looked at again only when the listing or the choice moved
        if known is not None and (listed != known or moved):
            baseline = self._baseline()
            if (baseline["id"] if baseline else None) != self._watched_baseline:
                self.baseline_changed()

    def _poll_store_loop(self) -> None:
        self._check_store_logged()
        while not self._stopping.wait(self.store_poll_seconds):
            self._check_store_logged()

    def _check_store_logged(self) -> None:
        try:
            self.check_store()
        except Exception:  # noqa: BLE001 — an unreadable store is retried at the next poll
            log.warning("checking the store for new snapshots failed", exc_info=True)
