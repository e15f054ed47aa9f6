"""Real-time drift: watch the environment and turn each change into a drift event.

The watcher (watchfiles) covers every captured interpreter's site-packages, the kernelspec
directories, the Jupyter config directories and the workspace. Changes are debounced, and
only the part that changed is captured again — one interpreter's packages (a probe, no
walk), the kernels, the config or the workspace — never the whole world. Each new drift
report is compared with the previous one: what appeared or went away becomes an event.
"""

from __future__ import annotations

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
    capture_config,
    capture_kernels,
    probe_interpreter,
    walk_tree,
)
from westtek_core.drift import capture_live, detect_drift, grading_context
from westtek_core.drift_report import Change, DriftReport
from westtek_core.events import EventLog

EventCallback = Callable[[dict[str, Any]], None]


def _key(change: Change) -> tuple[str, str, str, str | None, str | None]:
    return (change.kind, change.name, change.change, change.before, change.after)


def _site_dirs(info: Mapping[str, Any]) -> list[str]:
    paths = info.get("paths") or {}
    return sorted({str(paths[k]) for k in ("purelib", "platlib") if paths.get(k)})


def environment_dirs(capture: Capture, root: Path) -> dict[str, list[str]]:
    """Area → the directories whose changes change it (those that exist)."""
    areas: dict[str, list[str]] = {
        f"interpreter:{i}": _site_dirs(interp.info) for i, interp in enumerate(capture.interpreters)
    }
    areas["kernels"] = [os.path.join(p, "kernels") for p in jupyter_path()]
    areas["config"] = list(jupyter_config_path())
    areas["workspace"] = [str(root)]
    return {area: [p for p in paths if os.path.isdir(p)] for area, paths in areas.items()}


def environment_stamp(capture: Capture, root: Path) -> tuple[tuple[str, int], ...]:
    """Modification times of what a pip install, a kernel or a config change touches.

    Site-packages directories change when a distribution comes or goes; kernel and config
    directories are read one level deep, so an edited ``kernel.json`` or config file shows.
    The workspace is left out: notebooks are analysed from their own stats.
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
                            if area == "kernels" and entry.is_dir():
                                for spec in os.scandir(entry.path):
                                    stamps.append((spec.path, spec.stat().st_mtime_ns))
            except OSError:
                stamps.append((directory, -1))
    return tuple(sorted(stamps))


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
    ) -> None:
        self.root = root.absolute()
        self.baseline = baseline
        self.events = events
        self.on_event = on_event
        self.environment_id = environment_id or str(baseline.get("environment_id", ""))
        self.debounce_ms = debounce_ms
        self.capture: Capture = capture_live(pythons, root)
        self.report: DriftReport = detect_drift(self.capture, baseline, self.root)
        self.stop_event = threading.Event()
        # set once the file watches are in place: changes before that are not seen
        self.ready = threading.Event()

    def watched_paths(self) -> dict[str, list[str]]:
        """Area → directories watched for it."""
        return environment_dirs(self.capture, self.root)

    def _areas_of(self, changed: set[str], watched: Mapping[str, list[str]]) -> set[str]:
        touched = set()
        for path in changed:
            for area, roots in watched.items():
                if any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots):
                    touched.add(area)
        # a venv inside the workspace touches both: its packages are what matter
        if any(a.startswith("interpreter:") for a in touched):
            touched.discard("workspace")
        return touched

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
        # as capture_environment does: a captured venv inside the workspace is not data
        prefixes = [
            Path(str(i.info.get("prefix")))
            for i in self.capture.interpreters
            if i.info.get("prefix") and str(i.info["prefix"]).startswith(str(self.root) + "/")
        ]
        return walk_tree(self.root, exclude=prefixes)[0]

    def refresh(self, areas: set[str]) -> dict[str, Any] | None:
        """Re-capture ``areas``, re-grade, and emit an event if the drift changed."""
        self.recapture(areas)
        context = grading_context(self.root, self.baseline)
        report = detect_drift(self.capture, self.baseline, self.root, context=context)
        before = {_key(c): c for c in self.report.changes}
        after = {_key(c): c for c in report.changes}
        new = [c for k, c in after.items() if k not in before]
        resolved = [c for k, c in before.items() if k not in after]
        self.report = report
        if not new and not resolved:
            return None
        installs = {path: use.pip_installs for path, use in context.notebooks.items()}
        event = self.events.append(
            self.environment_id, report.baseline, report.status.value, new, resolved, installs
        )
        self.on_event(event)
        return event

    def run(self) -> None:
        """Watch until ``stop_event`` is set."""
        watched = self.watched_paths()
        roots = sorted({p for paths in watched.values() for p in paths})
        for batch in watchfiles.watch(
            *roots,
            debounce=self.debounce_ms,
            step=50,
            stop_event=self.stop_event,
            rust_timeout=200,
            yield_on_timeout=True,  # an empty batch after each quiet 200 ms: watching is live
            recursive=True,
        ):
            self.ready.set()
            areas = self._areas_of({path for _, path in batch}, watched)
            if areas:
                self.refresh(areas)
