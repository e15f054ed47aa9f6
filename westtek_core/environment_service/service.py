"""The researcher's environment service, assembled from its snapshot and drift operations."""

from __future__ import annotations

import threading

from westtek_core.environment_service.drift import DriftOps
from westtek_core.environment_service.snapshots import SnapshotOps


class EnvironmentService(SnapshotOps, DriftOps):
    """The researcher's environment: its store, its drift, its background jobs."""

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

    def stop(self) -> None:
        """Stop the watcher and the job runner."""
        self._stopping.set()
        self.baseline_changed()
        self.jobs.shutdown()
        for thread in (self._watch_thread, self._poll_thread):
            if thread:
                thread.join(timeout=5)
