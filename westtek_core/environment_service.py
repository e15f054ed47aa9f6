"""Everything the researcher's REST API does, as one object with no web server in it.

The server extension keeps one ``EnvironmentService`` per Jupyter server: it opens the
store, runs long operations as background jobs, keeps a drift watcher running against the
environment's baseline, and fans each drift event out to listeners (WebSocket clients,
the event sinks). Every method is synchronous and safe to call from a worker thread;
listeners are called from the watcher's thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from westtek_core.autosnapshot import prune_automatic, unchanged_since
from westtek_core.capture import ProbeError, SecretScanner, capture_environment
from westtek_core.drift import (
    analyse_notebooks_cached,
    capture_live,
    detect_drift,
    grading_context,
    live_manifest,
)
from westtek_core.drift.baseline import baseline_manifest, chosen_baseline, set_baseline
from westtek_core.drift.events import EventLog
from westtek_core.drift.live_capture import LiveCapture
from westtek_core.drift.report import Change, DriftReport
from westtek_core.drift.stale_kernels import LoadedDistribution, StaleKernelTracker
from westtek_core.drift.watch import DriftWatcher
from westtek_core.environment_view import describe_environment
from westtek_core.hub_reports import snapshot_report
from westtek_core.jobs import Job, JobRunner
from westtek_core.labs import lab_encryption_context
from westtek_core.rollback import (
    RollbackError,
    RollbackProgress,
    preview_rollback,
    run_rollback,
)
from westtek_core.snapshot import (
    ManifestError,
    Progress,
    RestoreError,
    create_snapshot,
    export_snapshot,
    load_snapshot,
    restore_snapshot,
    snapshot_summaries,
    verify_snapshots,
)
from westtek_core.snapshot.restore import ignore_in_workspace, workspace_restore_target
from westtek_core.snapshot.retention import RetentionPolicy
from westtek_core.store import ArchiveWait, Repository, SnapshotNotFound, StoreError, StoreNotFound

if TYPE_CHECKING:  # the knowledge base is imported only when it is used
    from westtek_core.kb.backend import KnowledgeIndexBackend

Message = dict[str, Any]
"""A message for stream listeners: ``{"type": "state", "drift": …}``, ``{"type": "event", …}``,
``{"type": "snapshot", …}``, ``{"type": "assessment", …}`` or ``{"type": "changed", "areas":
[…]}`` (the watcher graded changes on disk: running kernels are worth checking)."""

Listener = Callable[[Message], None]

# Errors that are the researcher's to act on: a job fails with their message alone.
USER_ERRORS: tuple[type[Exception], ...] = (
    StoreError,
    RestoreError,
    ManifestError,
    ProbeError,
    RollbackError,
    ValueError,
    OSError,
)

NO_BASELINE = "NO_BASELINE"

log = logging.getLogger(__name__)


class EnvironmentService:
    """The researcher's environment: its store, its drift, its background jobs."""

    def __init__(
        self,
        *,
        store: str,
        key_file: Path,
        root: Path,
        pythons: list[str] | None,
        environment_id: str,
        event_log: EventLog,
        debounce_ms: int = 300,
        kb_index: Path | None = None,
        kb_backend: KnowledgeIndexBackend | None = None,
        store_poll_seconds: float = 5.0,
        secret_scanner: SecretScanner | None = None,
        kms_key_id: str = "",
        lab_id: str = "",
        archive_poll_seconds: float = 900.0,
    ) -> None:
        self.store = store
        self.key_file = key_file
        # a store this server creates is encrypted with a KMS data key under the lab's
        # context when a key is given (on AWS: the stage's snapshot key)
        self.kms_key_id = kms_key_id
        self.lab_id = lab_id
        self.root = root.absolute()
        self.pythons = pythons
        self.environment_id = environment_id
        self.event_log = event_log
        self.debounce_ms = debounce_ms
        self.kb_index = kb_index
        # which index kb_index names (None: the default, an embedded SQLite file)
        self.kb_backend = kb_backend
        self.store_poll_seconds = store_poll_seconds
        # what snapshots leave out and redact (c.SecretScanner, from the server's config)
        self.secret_scanner = secret_scanner or SecretScanner()
        # a restore or verify of packs in archive storage re-runs every archive_poll_seconds
        self.jobs = JobRunner(
            expected_errors=USER_ERRORS, retry_on=(ArchiveWait,), retry_seconds=archive_poll_seconds
        )
        self._listeners: list[Listener] = []
        self._lock = threading.RLock()
        self._repo: Repository | None = None
        self._watcher: DriftWatcher | None = None
        self._stopping = threading.Event()
        self._baseline_changed = threading.Event()
        self._watch_thread: threading.Thread | None = None
        self._poll_thread: threading.Thread | None = None
        # the snapshots already announced (None: the store not listed yet) and the
        # baseline the watcher measures against
        self._known_snapshots: set[str] | None = None
        self._watched_baseline: str | None = None
        self._chosen_baseline: str | None = None
        self._store_lock = threading.Lock()
        self.live = LiveCapture(pythons, self.root)
        # rollbacks rewriting the environment now: the watcher grades none of it meanwhile
        self._rollbacks_running = 0
        # running kernels that run what an install replaced (checked by the server extension)
        self.stale_kernels = StaleKernelTracker()

    # -- the store -----------------------------------------------------------------------

    def repo(self, create: bool = False) -> Repository:
        """The store, opened once (created on the first snapshot)."""
        with self._lock:
            if self._repo is None:
                self._repo = Repository.open(
                    self.store,
                    create=create,
                    key_file=self.key_file,
                    kms_key_id=self.kms_key_id or None,
                    kms_context=lab_encryption_context(self.lab_id),
                )
            return self._repo

    def _existing_repo(self) -> Repository | None:
        """The store, or None before its first snapshot made it (a local or S3 store alike)."""
        try:
            return self.repo()
        except StoreNotFound:
            return None

    def _store_with_snapshots(self) -> Repository:
        repo = self._existing_repo()
        if repo is None:
            raise SnapshotNotFound("no snapshot yet: this environment's store is empty")
        return repo

    def _baseline(self) -> dict[str, Any] | None:
        repo = self._existing_repo()
        if repo is None:
            return None
        try:
            return baseline_manifest(repo, self.environment_id)
        except StoreError:
            return None

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
            def steps(state: RollbackProgress) -> None:
                progress(Progress(state.done, state.total, 0, 0))

            with self._lock:
                self._rollbacks_running += 1
            try:
                report = run_rollback(
                    self.repo(),
                    str(target["id"]),
                    self.pythons,
                    self.root,
                    only=[only] if only else None,
                    progress=steps,
                    expected_plan=expected_plan,
                )
            finally:
                with self._lock:
                    self._rollbacks_running -= 1
                # the next watcher grades the rollback whole (and the new safety snapshot)
                self.baseline_changed()
                self.check_store()
            return report.to_json()

        what = f"roll back {'the ' + only if only else 'everything'} to {target['id'][:12]}"
        return self.jobs.submit("rollback", what, work)

    def start_take_over(
        self, environment_id: str, predecessor: str, snapshot: str | None = None
    ) -> Job:
        """Take over a predecessor's environment from the store, in the background.

        Their work goes into a folder of the workspace, their packages into a kernel of
        their own (:mod:`westtek_core.kb.take_over`), from ``snapshot`` when given, else
        the environment's latest; the job's result is its record.
        """
        from jupyter_core.paths import jupyter_data_dir

        from westtek_core.kb.take_over import take_over

        def work(progress: Callable[[Progress], None]) -> dict[str, Any]:
            kernels = Path(jupyter_data_dir()) / "kernels"
            return take_over(self.repo(), environment_id, predecessor, self.root,
                             kernels_dir=kernels, snapshot=snapshot).to_json()  # fmt: skip

        return self.jobs.submit("take-over", f"take over {predecessor}'s {environment_id}", work)

    def set_baseline(self, id_or_prefix: str) -> dict[str, Any]:
        """Make a snapshot the baseline; returns the drift against it."""
        set_baseline(self._store_with_snapshots(), id_or_prefix)
        self.baseline_changed()
        return self.drift_state(fresh=True)

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

    # -- drift ---------------------------------------------------------------------------

    def _state(self, report: DriftReport | None, message: str | None = None) -> dict[str, Any]:
        stale = self.stale_kernels.current()
        report = self.stale_kernels.with_changes(report) if report else None
        return {
            "status": report.status.value if report else NO_BASELINE,
            "baseline": report.baseline if report else None,
            "environment_id": self.environment_id,
            "changes": [c.to_json() for c in report.changes] if report else [],
            "stale_kernels": [m.model_dump(mode="json") for m in stale],
            "watching": self.watching,
            "checked_at": time.time(),
            "message": message,
        }

    @property
    def watching(self) -> bool:
        """Whether a watcher is grading changes as they happen."""
        watcher = self._watcher
        return bool(watcher and watcher.ready.is_set() and not watcher.stop_event.is_set())

    def drift_state(self, fresh: bool = False) -> dict[str, Any]:
        """The live environment graded against its baseline (the watcher's, when it runs)."""
        watcher = self._watcher
        if watcher and self.watching and not fresh:
            return self._state(watcher.report)
        return self._graded(lambda: capture_live(self.pythons, self.root))

    def _graded(self, capture: Callable[[], Any]) -> dict[str, Any]:
        """The live environment (captured only if there is a baseline) against the baseline."""
        baseline = self._baseline()
        if baseline is None:
            return self._state(None, "no snapshot yet: take one to start measuring drift")
        return self._state(detect_drift(capture(), baseline, self.root, store=self.repo()))

    def environment_view(self) -> dict[str, Any]:
        """Interpreters, packages (with the notebooks importing each), kernels and config."""
        watcher = self._watcher
        analyses = None
        if watcher and self.watching:
            capture, drift = watcher.capture, self._state(watcher.report)
        else:
            with ThreadPoolExecutor(1, thread_name_prefix="westtek-notebooks") as pool:
                # the notebooks are analysed while the capture mostly waits on the
                # interpreter probe's subprocess
                analysing = pool.submit(analyse_notebooks_cached, self.root)
                capture = self.live.get()
                analyses = analysing.result()
            drift = self._graded(lambda: capture)
        live = live_manifest(capture)
        context = grading_context(self.root, live, analyses)
        return {
            "environment_id": self.environment_id,
            "root": str(self.root),
            **describe_environment(capture, live, context),
            "drift": drift["status"],
        }

    def check_kernel(
        self, kernel_id: str, notebook: str | None, loaded: Mapping[str, LoadedDistribution]
    ) -> dict[str, Any] | None:
        """Compare what a running kernel imported (its record, ``loaded``) with the disk now.

        A distribution installed at another version makes a stale-kernel change; the event
        of what appeared and went, if anything did.
        """
        return self._stale_event(*self.stale_kernels.check(kernel_id, notebook, loaded))

    def forget_kernel(self, kernel_id: str) -> dict[str, Any] | None:
        """A kernel restarted or stopped: its stale changes are resolved; the event, if any."""
        return self._stale_event([], self.stale_kernels.forget(kernel_id))

    def _stale_event(self, new: list[Change], resolved: list[Change]) -> dict[str, Any] | None:
        if not new and not resolved:
            return None
        watcher = self._watcher
        # without a baseline the kernels' own changes still grade the event
        report = self.stale_kernels.with_changes(watcher.report if watcher else DriftReport(""))
        event = self.event_log.append(self.environment_id, report.baseline, report.status.value,
                                      new, resolved, installed=False)  # fmt: skip
        self._broadcast({"type": "event", "event": event})
        # the state too: it carries the kernels' ids, which the sidebar restarts them by
        drift = self._state(watcher.report if watcher else None)
        self._broadcast({"type": "state", "drift": drift})
        return event

    def events(self, since_id: int = 0, limit: int = 100, days: float = 0) -> list[dict[str, Any]]:
        """Drift events of this environment, oldest first."""
        since_time = time.time() - days * 86400 if days else 0.0
        return [
            e
            for e in self.event_log.events(since_id, limit, since_time)
            if e["environment_id"] == self.environment_id
        ]

    def record_assessment(self, event_id: int, assessment: Mapping[str, Any]) -> None:
        """Store an agent's risk assessment with an event, then tell the listeners.

        Listeners get ``{"type": "assessment", "event_id": …, "assessment": …}``: the
        server extension reports it to the hub service, whose record of the event it updates.
        """
        self.event_log.record_assessment(event_id, assessment)
        event = {"event_id": event_id, "assessment": dict(assessment)}
        self._broadcast({"type": "assessment", "environment_id": self.environment_id, **event})

    # -- listeners and the watcher -------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with each state change and event; returns the unsubscribe."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _broadcast(self, message: Message) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(message)

    def baseline_changed(self) -> None:
        """A snapshot or baseline changed what drift is measured against: start over."""
        self._baseline_changed.set()
        watcher = self._watcher
        if watcher:
            watcher.stop_event.set()

    def start_watching(self) -> None:
        """Watch in a background thread until ``stop``."""
        self._watch_thread = threading.Thread(
            target=self._watch_loop, name="westtek-drift-watch", daemon=True
        )
        self._watch_thread.start()
        self._poll_thread = threading.Thread(
            target=self._poll_store_loop, name="westtek-store-poll", daemon=True
        )
        self._poll_thread.start()

    def wait_watching(self, timeout: float) -> bool:
        """Block until the watcher sees changes (for tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.watching:
                return True
            time.sleep(0.05)
        return False

    def _watch_loop(self) -> None:
        prefetched = False
        while not self._stopping.is_set():
            self._baseline_changed.clear()
            baseline = self._baseline()
            self._watched_baseline = baseline["id"] if baseline else None
            if baseline is None:
                # ready for the first look at the environment: captured, notebooks analysed;
                # afterwards the capture alone is kept fresh
                if prefetched:
                    self.live.get()
                else:
                    self.environment_view()
                    prefetched = True
                self._baseline_changed.wait(timeout=5.0)
                continue
            previous = self._watcher.report if self._watcher else None
            watcher = DriftWatcher(
                self.pythons,
                self.root,
                baseline,
                self.event_log,
                lambda event: self._broadcast({"type": "event", "event": event}),
                environment_id=self.environment_id,
                debounce_ms=self.debounce_ms,
                store=self.repo(),
                on_change=lambda areas: self._broadcast({"type": "changed", "areas": areas}),
                held=lambda: self._rollbacks_running > 0,
            )
            self._watcher = watcher
            if self._stopping.is_set() or self._baseline_changed.is_set():
                continue
            threading.Thread(
                target=self._announce_when_ready, args=(watcher, previous), daemon=True
            ).start()
            watcher.run()

    def _announce_when_ready(self, watcher: DriftWatcher, previous: DriftReport | None) -> None:
        if watcher.ready.wait(timeout=30):
            if previous is not None:
                watcher.take_over(previous)
            self._broadcast({"type": "state", "drift": self._state(watcher.report)})

    def change_stamp(self) -> Any:
        """What changes when the environment does (pip installs, kernels, config): cheap."""
        return self.live.stamped()[0]

    def stop(self) -> None:
        """Stop the watcher and the job runner."""
        self._stopping.set()
        self.baseline_changed()
        self.jobs.shutdown()
        for thread in (self._watch_thread, self._poll_thread):
            if thread:
                thread.join(timeout=5)
