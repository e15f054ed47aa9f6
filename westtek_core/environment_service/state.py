"""What every job of the environment service shares: its settings, the store, the listeners.

:class:`ServiceState` is set up in one ``__init__``; the snapshot and drift operations are
subclasses of it, so a type checker sees every attribute each one uses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from westtek_core.capture import ProbeError, SecretScanner
from westtek_core.drift.baseline import baseline_or_none
from westtek_core.drift.events import EventLog
from westtek_core.drift.live_capture import LiveCapture
from westtek_core.drift.stale_kernels import StaleKernelTracker
from westtek_core.drift.watch import DriftWatcher
from westtek_core.jobs import JobRunner
from westtek_core.labs import lab_encryption_context
from westtek_core.rollback import RollbackError
from westtek_core.snapshot import ManifestError, RestoreError
from westtek_core.snapshot.archive import ARCHIVE_POLL_SECONDS
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


class ServiceState:
    """The researcher's environment: its settings, its store, its listeners."""

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
        archive_poll_seconds: float = ARCHIVE_POLL_SECONDS,
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
        return baseline_or_none(self._existing_repo(), self.environment_id)

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
