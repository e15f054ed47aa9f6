"""The environment service's drift: the state graded against the baseline, events, watcher.

The watcher runs in a thread of its own and starts over whenever the baseline changes;
running kernels' stale imports (checked by the server extension) are graded with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from westtek_core.drift import (
    analyse_notebooks_cached,
    capture_live,
    detect_drift,
    grading_context,
    live_manifest,
)
from westtek_core.drift.baseline import set_baseline
from westtek_core.drift.report import Change, DriftReport
from westtek_core.drift.stale_kernels import LoadedDistribution
from westtek_core.drift.watch import DriftWatcher
from westtek_core.environment_service.state import ServiceState
from westtek_core.environment_view import describe_environment

NO_BASELINE = "NO_BASELINE"


class DriftOps(ServiceState):
    """The drift state, events and watcher of :class:`EnvironmentService`."""

    def set_baseline(self, id_or_prefix: str) -> dict[str, Any]:
        """Make a snapshot the baseline; returns the drift against it."""
        set_baseline(self._store_with_snapshots(), id_or_prefix)
        self.baseline_changed()
        return self.drift_state(fresh=True)

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
