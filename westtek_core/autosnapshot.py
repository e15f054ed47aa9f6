"""Automatic snapshots: nothing installed is lost because nobody remembered to snapshot.

A server's environment is snapshotted by itself, each snapshot labelled ``westtek.auto``
with why it was taken (:class:`AutoReason`):

- ``after-change``: a pip install, a removed kernel, an edited config — once the
  environment has settled (no further change for ``settle_seconds``);
- ``scheduled``: every ``interval_seconds`` (workspace edits too);
- ``before-stop``: when the server stops — the spawner's stop, the idle culler's, a SIGTERM —
  within the stop's grace period (the server extension's ``stop_extension``), when the
  environment changed since the server started (its home outlives the container; installs
  do not).

An environment unchanged since its latest snapshot writes nothing new (:func:`unchanged_since`
compares the live capture with it, as drift detection does). After each automatic snapshot
the environment's automatic snapshots beyond ``retention`` are deleted and their data pruned;
snapshots a researcher took, baselines and protected ones are never touched.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from westtek_core.snapshot.retention import (
    RetentionPolicy,
    apply_retention,
    is_container_start_safety,
    plan_retention,
)

if TYPE_CHECKING:
    from westtek_core.jobs import Job, JobRunner
    from westtek_core.store import Repository

AUTO_LABEL = "westtek.auto"
"""The label of an automatic snapshot; its value is the :class:`AutoReason`."""

DEFAULT_AUTO_RETENTION = RetentionPolicy(keep_last=10, keep_daily=7, keep_weekly=4, keep_monthly=6)
"""Which automatic snapshots of an environment are kept when neither a lab nor a server says."""

DEFAULT_SETTLE_SECONDS = 60.0
"""How long an environment stays unchanged after a change before its automatic snapshot."""

DEFAULT_INTERVAL_HOURS = 24.0
"""Hours between scheduled automatic snapshots."""


class AutoReason(str, enum.Enum):
    """Why an automatic snapshot was taken (its ``westtek.auto`` label)."""

    CHANGE = "after-change"
    SCHEDULE = "scheduled"
    STOP = "before-stop"

    @property
    def note(self) -> str:
        """The snapshot's note."""
        return {
            AutoReason.CHANGE: "automatic: after an environment change",
            AutoReason.SCHEDULE: "automatic: scheduled",
            AutoReason.STOP: "automatic: before the server stopped",
        }[self]


def unchanged_since(repo: Repository, capture: Any, environment_id: str, root: Path) -> str | None:
    """The latest snapshot's id when ``capture`` shows nothing changed since it, else None.

    JupyterLab's own settings (a theme, a dismissed news prompt) are no reason for a
    snapshot: they live in the home, which outlives the container, and the next snapshot
    takes them along.
    """
    from westtek_core.capture.jupyter_env import is_lab_preference
    from westtek_core.drift.detect import detect_drift
    from westtek_core.rollback import latest_snapshot

    latest = latest_snapshot(repo, environment_id)
    if latest is None:
        return None
    report = detect_drift(capture, latest, root, store=repo)
    changed = [c for c in report.changes if not (c.kind == "config" and is_lab_preference(c.name))]
    return None if changed else str(latest["id"])


def prune_automatic(
    repo: Repository,
    environment_id: str,
    retention: RetentionPolicy,
    protected: set[str] | None = None,
) -> list[str]:
    """Delete ``environment_id``'s automatic snapshots ``retention`` does not keep; their ids.

    Only automatic snapshots are candidates, and the safety snapshots of the restores at
    container starts (taken automatically too, one at each start; only the latest is kept):
    a researcher's own snapshots, and ``protected`` ones (the baseline), are kept whatever
    the policy says.
    """
    from westtek_core.snapshot import snapshot_summaries

    automatic = [
        summary
        for summary in snapshot_summaries(repo)
        if summary.get("environment_id") == environment_id
        and (
            AUTO_LABEL in (summary.get("labels") or {})
            or is_container_start_safety(summary.get("labels"))
        )
    ]
    plan = plan_retention(automatic, retention, protected=protected or set())
    if plan.delete:
        apply_retention(repo, plan)
    return list(plan.delete)


class SnapshottingService(Protocol):
    """What :class:`AutoSnapshotter` needs of ``EnvironmentService`` (which imports this)."""

    jobs: JobRunner

    def start_snapshot(
        self,
        note: str = "",
        labels: Mapping[str, str] | None = None,
        baseline: bool = False,
        skip_unchanged: bool = False,
        retention: RetentionPolicy | None = None,
    ) -> Job:
        """Snapshot in the background (skipping an unchanged environment, pruning)."""
        ...

    def change_stamp(self) -> Any:
        """What changes when the environment does."""
        ...


class AutoSnapshotter:
    """Takes a server's automatic snapshots: after changes settle, on a schedule, at stop.

    A background thread checks the environment's change stamp (the modification times of
    its site-packages, kernel and config directories) every ``check_seconds``.
    """

    def __init__(
        self,
        service: SnapshottingService,
        *,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        interval_seconds: float = DEFAULT_INTERVAL_HOURS * 3600,
        retention: RetentionPolicy = DEFAULT_AUTO_RETENTION,
        check_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.settle_seconds = settle_seconds
        self.interval_seconds = interval_seconds
        self.retention = retention
        self.check_seconds = check_seconds
        self.clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_stamp: Any = None
        self.ready = threading.Event()  # set once the starting environment is known
        self.taken: list[Job] = []

    def take(self, reason: AutoReason) -> Job:
        """Start an automatic snapshot (skipped when nothing changed since the latest)."""
        job = self.service.start_snapshot(
            note=reason.note,
            labels={AUTO_LABEL: reason.value},
            skip_unchanged=True,
            retention=self.retention,
        )
        self.taken.append(job)
        return job

    def start(self) -> None:
        """Start watching for changes and the schedule."""
        self._thread = threading.Thread(
            target=self._loop, name="westtek-auto-snapshots", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        last_stamp = self._start_stamp = self._stamp()
        self.ready.set()
        changed_at: float | None = None
        last_taken = self.clock()
        while not self._stopping.wait(self.check_seconds):
            now = self.clock()
            stamp = self._stamp()
            if stamp != last_stamp:
                last_stamp, changed_at = stamp, now
            if changed_at is not None and now - changed_at >= self.settle_seconds:
                self.take(AutoReason.CHANGE)
                changed_at, last_taken = None, now
            elif self.interval_seconds and now - last_taken >= self.interval_seconds:
                self.take(AutoReason.SCHEDULE)
                last_taken = now

    def _stamp(self) -> Any:
        try:
            return self.service.change_stamp()
        except Exception:  # a stamp that cannot be read is no change; the next one says
            return None

    def changed_since_start(self) -> bool:
        """Whether the environment changed since this server started (False before known).

        A server stopping with its environment as it started (the image's, or the one the
        pre-start restore brought back) has nothing a container's end could lose.
        """
        return self._start_stamp is not None and self._stamp() != self._start_stamp

    def stop(self, final_snapshot: bool = True, timeout: float = 25.0) -> BeforeStop:
        """Stop the thread; with ``final_snapshot``, take the before-stop snapshot and wait.

        The snapshot is taken only when the environment changed since the server started,
        and waited for at most ``timeout`` seconds.
        """
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.check_seconds + 1)
        if not final_snapshot:
            return BeforeStop(why_not="not asked for")
        if not self.changed_since_start():
            return BeforeStop(why_not="the environment is as the server started")
        job = self.take(AutoReason.STOP)
        done = self.service.jobs.wait(job.id, timeout)
        if done is None or done.finished is None:
            return BeforeStop(why_not=f"it did not finish within {timeout:g} s")
        if done.state != "succeeded" or done.result is None:
            return BeforeStop(why_not=f"it failed: {done.error}")
        return BeforeStop(result=done.result)


@dataclass(frozen=True)
class BeforeStop:
    """What came of the before-stop snapshot: the job's result, or why there is none."""

    result: Mapping[str, Any] | None = None
    why_not: str = ""

    def __str__(self) -> str:
        """One line for the server's log."""
        if self.result is None:
            return f"none: {self.why_not}"
        if same := self.result.get("unchanged_since"):
            return f"not needed: the environment is as snapshot {str(same)[:12]}"
        return f"{str(self.result['id'])[:12]} ({self.result.get('files', 0)} files)"
