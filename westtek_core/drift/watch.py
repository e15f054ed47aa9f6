"""Real-time drift: watch the environment and turn each change into a drift event.

The watcher (watchfiles) covers every captured interpreter's site-packages, the kernelspec
directories, the Jupyter config directories and the workspace. A batch of file changes is
graded once it has settled (a pip install is one batch, not one per file), and only the
part that changed is captured again — one interpreter's packages (a probe, no walk), the
kernels, the config or the workspace — never the whole world. Each new drift report is
compared with the previous one: what appeared or went away becomes an event.

Which file changes count is decided by :class:`EnvironmentChangeFilter`, never by
watchfiles' default filter: that one drops every path with a ``.venv`` component, so every
install into a venv of the most common name (the demo's among them) went unseen.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import watchfiles
from jupyter_core.paths import jupyter_config_path, jupyter_path

from westtek_core.capture import (
    Capture,
    ProbeError,
    WorkspaceIgnores,
    capture_config,
    capture_kernels,
    install_dirs,
    is_lab_layout,
    probe_interpreter,
    walk_tree,
    workspace_exclusions,
)
from westtek_core.capture.jupyter_env import is_config_subdir
from westtek_core.drift import capture_live, detect_drift, grading_context
from westtek_core.drift.events import EventLog
from westtek_core.drift.facets import live_manifest
from westtek_core.drift.report import Change, DriftReport
from westtek_core.paths import is_within
from westtek_core.store import Repository

log = logging.getLogger(__name__)

EventCallback = Callable[[dict[str, Any]], None]
ChangeCallback = Callable[[list[str]], None]

# a change that keeps going (a long install) is still graded this often
MAX_BATCH_MS = 5000


def _key(change: Change) -> tuple[str, str, str, str | None, str | None]:
    return (change.kind, change.name, change.change, change.before, change.after)


def drift_delta(before: DriftReport, after: DriftReport) -> tuple[list[Change], list[Change]]:
    """The changes ``after`` has that ``before`` had not, and those it no longer has."""
    was = {_key(c): c for c in before.changes}
    now = {_key(c): c for c in after.changes}
    return [c for k, c in now.items() if k not in was], [c for k, c in was.items() if k not in now]


def is_interpreter_area(area: str) -> bool:
    """Whether an area (of :func:`environment_dirs`) is an interpreter's packages."""
    return area.startswith("interpreter:")


def environment_dirs(capture: Capture, root: Path) -> dict[str, list[str]]:
    """Area → the directories whose changes change it (some may not exist yet)."""
    areas: dict[str, list[str]] = {
        f"interpreter:{i}": install_dirs(interp.info)
        for i, interp in enumerate(capture.interpreters)
    }
    areas["kernels"] = [os.path.join(p, "kernels") for p in jupyter_path()]
    areas["config"] = list(jupyter_config_path())
    areas["workspace"] = [str(root)]
    return areas


def environment_stamp(capture: Capture, root: Path) -> tuple[tuple[str, int], ...]:
    """Modification times of what a pip install, a kernel or a config change touches.

    Site-packages directories change when a distribution comes or goes; kernel and config
    directories are read one level deep, and a kernelspec's or config subdirectory's files
    (``jupyter_server_config.d/``, ``nbconfig/``…) too, so an edited ``kernel.json`` or
    config file shows even when written in place. JupyterLab's ``lab/`` (its settings and
    layout, saved as the researcher works) is left out, and so is the workspace: notebooks
    are analysed from their own stats.
    """
    stamps: list[tuple[str, int]] = []
    for area, dirs in environment_dirs(capture, root).items():
        if area == "workspace":
            continue
        for directory in dirs:
            try:
                stamps.append((directory, os.stat(directory).st_mtime_ns))
                if area in ("kernels", "config"):
                    with os.scandir(directory) as entries:
                        for entry in entries:
                            stamps.append((entry.path, entry.stat().st_mtime_ns))
                            if entry.is_dir() and (
                                area == "kernels" or is_config_subdir(entry.name)
                            ):
                                stamps.extend(_file_stamps(entry.path))
            except OSError:
                stamps.append((directory, -1))
    return tuple(sorted(stamps))


def _file_stamps(directory: str) -> list[tuple[str, int]]:
    """Modification times of everything under ``directory`` (a few small files)."""
    stamps: list[tuple[str, int]] = []
    for parent, subdirs, files in os.walk(directory):
        for name in (*subdirs, *files):
            path = os.path.join(parent, name)
            try:
                stamps.append((path, os.lstat(path).st_mtime_ns))
            except OSError:
                stamps.append((path, -1))
    return stamps


def _is_bytecode(path: str) -> bool:
    # written by merely importing a module: never a change to what is installed
    return (
        path.endswith((".pyc", ".pyo")) or "/__pycache__/" in path or path.endswith("/__pycache__")
    )


class EnvironmentChangeFilter:
    """Which changed paths can change the environment: a watchfiles ``watch_filter``.

    Anything under an interpreter's site-packages, a kernelspec or a config directory
    counts, bytecode caches aside. In the workspace, only what a snapshot would capture
    counts: never the prefixes of captured interpreters, the Jupyter runtime directory or
    West Tek's own state (``exclusions``), nor what the ignore rules leave out (the
    session's churn: autosaves, histories, caches).
    """

    def __init__(
        self, watched: Mapping[str, list[str]], root: Path, exclusions: list[Path]
    ) -> None:
        self.watched = watched
        self.exclusions = [str(p) for p in exclusions]
        self.ignores = WorkspaceIgnores(root)

    def areas(self, path: str) -> set[str]:
        """The areas a change of ``path`` touches (empty: none that matters)."""
        if _is_bytecode(path):
            return set()
        touched = {
            area for area, roots in self.watched.items() if any(is_within(path, r) for r in roots)
        }
        # a venv inside the workspace touches both: its packages are what matter
        if any(a.startswith("interpreter:") for a in touched):
            touched.discard("workspace")
        # JupyterLab's layout autosave lives in the config dir but is not configuration
        if "config" in touched and is_lab_layout(path):
            touched.discard("config")
        if "workspace" in touched and (
            any(is_within(path, d) for d in self.exclusions) or self.ignores.ignored(path)
        ):
            touched.discard("workspace")
        return touched

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        """Keep the change (watchfiles' filter protocol)."""
        return bool(self.areas(path))


class DriftWatcher:
    """Watch an environment against its baseline; call ``on_event`` with each drift event."""

    def __init__(
        self,
        pythons: list[str] | None,
        root: Path,
        baseline: Mapping[str, Any],
        events: EventLog,
        on_event: EventCallback,
        *,
        environment_id: str = "",
        debounce_ms: int = 300,
        store: Repository | None = None,
        on_change: ChangeCallback | None = None,
        held: Callable[[], bool] = lambda: False,
    ) -> None:
        """``debounce_ms`` is how long changes must have settled before they are graded.

        With the baseline's ``store``, a file rewritten with the same bytes is no change.
        ``on_change`` is called with the areas of each graded batch, event or not (an
        install may leave the grade as it was yet change what running kernels would import).
        While ``held()`` is true (the server's own rollback is rewriting the environment)
        changes are kept and graded together once it is false: half a rollback is no event.
        """
        self.root = root.absolute()
        self.baseline = baseline
        self.events = events
        self.on_event = on_event
        self.environment_id = environment_id or str(baseline.get("environment_id", ""))
        self.debounce_ms = debounce_ms
        self.store = store
        self.on_change = on_change
        self.held = held
        self.capture: Capture = capture_live(pythons, root)
        self.report: DriftReport = detect_drift(self.capture, baseline, self.root, store=store)
        self.stop_event = threading.Event()
        # set once the file watches are in place: changes before that are not seen
        self.ready = threading.Event()

    def watched_paths(self) -> dict[str, list[str]]:
        """Area → directories whose changes change it (watched where they exist)."""
        return environment_dirs(self.capture, self.root)

    def exclusions(self) -> list[Path]:
        """Directories of the workspace that are never its data (see workspace_exclusions)."""
        return workspace_exclusions(self.root, [i.info for i in self.capture.interpreters])

    def recapture(self, areas: set[str]) -> None:
        """Capture again only the areas that changed."""
        interpreters = list(self.capture.interpreters)
        for area in sorted(a for a in areas if a.startswith("interpreter:")):
            index = int(area.split(":", 1)[1])
            try:
                info = probe_interpreter(interpreters[index].python)
                interpreters[index] = replace(interpreters[index], info=info)
            except (ProbeError, IndexError):
                interpreters[index] = replace(interpreters[index], info={"vanished": True})
        live = [i for i in interpreters if not i.info.get("vanished")]
        self.capture = replace(
            self.capture,
            interpreters=live,
            kernels=capture_kernels() if "kernels" in areas else self.capture.kernels,
            config=capture_config() if "config" in areas else self.capture.config,
            workspace=self._walk_workspace() if "workspace" in areas else self.capture.workspace,
        )

    def _walk_workspace(self) -> Any:
        return walk_tree(self.root, exclude=self.exclusions())[0]

    def refresh(self, areas: set[str]) -> dict[str, Any] | None:
        """Re-capture ``areas``, re-grade, and emit an event if the drift changed."""
        self.recapture(areas)
        context = grading_context(self.root, self.baseline, live=live_manifest(self.capture))
        report = detect_drift(
            self.capture, self.baseline, self.root, context=context, store=self.store
        )
        new, resolved = drift_delta(self.report, report)
        self.report = report
        if not new and not resolved:
            return None
        installs = {path: use.pip_installs for path, use in context.notebooks.items()}
        event = self.events.append(
            self.environment_id, report.baseline, report.status.value, new, resolved, installs
        )
        self.on_event(event)
        return event

    def take_over(self, previous: DriftReport) -> dict[str, Any] | None:
        """Emit what changed in the drift since ``previous``, the replaced watcher's report.

        Accepting the drift as the new baseline changes the grade with no file changed, and
        a rollback's changes are graded by the watcher that follows it: without this event
        the hub service, which knows drift only by its events, would keep the old grade. The
        install history is left as it is.
        """
        report = self.report
        new, resolved = drift_delta(previous, report)
        if not new and not resolved:
            return None
        event = self.events.append(
            self.environment_id, report.baseline, report.status.value, new, resolved,
            installed=False,
        )  # fmt: skip
        self.on_event(event)
        return event

    def run(self) -> None:
        """Watch until ``stop_event`` is set.

        A refresh that fails (a file vanishing mid-capture, a probe timing out) is logged
        and the watching goes on: the next change is graded afresh.
        """
        watched = self.watched_paths()
        changes_filter = EnvironmentChangeFilter(watched, self.root, self.exclusions())
        # a directory made later (a first `pip install --user`) is seen where an existing
        # parent is watched: the workspace, when it is the home
        roots = sorted({p for paths in watched.values() for p in paths if os.path.isdir(p)})
        pending: set[str] = set()  # areas changed and not graded yet
        for batch in watchfiles.watch(
            *roots,
            watch_filter=changes_filter,
            debounce=max(MAX_BATCH_MS, self.debounce_ms),
            step=self.debounce_ms,  # graded once nothing changed for this long
            stop_event=self.stop_event,
            # an empty batch after each quiet second: watching is live (stop_event is checked
            # every step); an idle server wakes about four times a second, no more
            rust_timeout=1000,
            yield_on_timeout=True,
            recursive=True,
        ):
            self.ready.set()
            pending |= {area for _, path in batch for area in changes_filter.areas(path)}
            # an empty batch comes each quiet second: what was held is graded then
            if not pending or self.held():
                continue
            areas, pending = pending, set()
            if self.on_change is not None:
                # first: what listens (the kernels' check) need not wait for the grading
                self.on_change(sorted(areas))
            try:
                self.refresh(areas)
            except Exception:  # noqa: BLE001 — one failed grading must not end the watching
                log.exception("grading the changes to %s failed", ", ".join(sorted(areas)))
