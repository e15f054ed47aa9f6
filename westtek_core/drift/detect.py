"""Detection: the live environment, or a later snapshot, against its baseline.

``detect_drift`` compares a live capture with the baseline snapshot and grades the changes
by the notebooks' use; ``diff_manifests`` compares two snapshots, grading cautiously.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from westtek_core.capture import capture_environment, install_dirs, is_lab_layout
from westtek_core.drift.facets import live_manifest, manifest_facets, raw_changes
from westtek_core.drift.grading import (
    BaselineImports,
    GradingContext,
    SeverityPolicy,
    grading_context,
)
from westtek_core.drift.report import DriftReport
from westtek_core.paths import is_within
from westtek_core.store import FileContent, Repository, StoreError


def detect_drift(
    capture: Any,
    baseline: Mapping[str, Any],
    root: Path,
    policy: SeverityPolicy | None = None,
    context: GradingContext | None = None,
    store: Repository | None = None,
    imports: BaselineImports | None = None,
) -> DriftReport:
    """Compare a live capture with its baseline snapshot, graded by the notebooks' use.

    ``context`` is the notebooks' use when the caller already has it (else it is analysed,
    resolving imports with the baseline's ``imports`` when the caller kept them: then
    ``baseline`` may be a :class:`~westtek_core.drift.baseline_view.BaselineView`'s
    manifest, without RECORD lists).
    Files are compared by size and modification time; with the baseline's ``store``, a
    small file whose time alone changed is compared by content, so one rewritten with the
    same bytes (an editor's save, a reinstall of the suite) is no change.
    """
    live = live_manifest(capture)
    # the live interpreters take the baseline's labels where the same interpreter is meant
    by_path = {str(i.get("path")): str(i.get("label")) for i in baseline.get("interpreters", [])}
    for interp in live["interpreters"]:
        interp["label"] = by_path.get(str(interp["path"]), str(interp["path"]))
    changes = raw_changes(manifest_facets(baseline, by="stat"), manifest_facets(live, by="stat"))
    # files of packages installed inside the workspace (a user site in the home) are
    # stored with it, but as drift they are the package change, not one per file
    installed = _install_dirs_in(root, capture)
    # files the baseline left out for the secrets in them: a live capture reads no content
    left_out = {
        str(s.get("path"))
        for s in baseline.get("secrets", [])
        if s.get("area") == "workspace" and s.get("action") == "excluded"
    }
    changes = [
        c
        for c in changes
        if not (c.kind in ("data", "notebook") and any(is_within(c.name, d) for d in installed))
        and not (c.kind == "config" and is_lab_layout(c.name))  # a baseline from before
        and not (c.kind in ("data", "notebook") and c.change == "added" and c.name in left_out)
    ]
    if store is not None:
        same = _rewritten_unchanged(store, baseline, root, changes)
        changes = [c for c in changes if (c.kind, c.name) not in same]
    if context is None:
        context = grading_context(root, baseline, live=live, imports=imports)
    return (policy or SeverityPolicy()).grade(str(baseline.get("id", "")), changes, context)


# above this a file's content is not read back from the store to confirm a change
_CONFIRM_MAX_BYTES = 1 << 20


def _rewritten_unchanged(
    store: Repository, baseline: Mapping[str, Any], root: Path, changes: Sequence[Any]
) -> set[tuple[str, str]]:
    """``(kind, name)`` of the "modified" files that are byte for byte what the baseline stored."""
    modified = [
        c for c in changes if c.change == "modified" and c.kind in ("config", "notebook", "data")
    ]
    if not modified:
        return set()
    config = {
        f"{c['dir']}/{e['path']}": e
        for c in baseline.get("jupyter", {}).get("config", [])
        for e in c.get("files", [])
    }
    workspace = {e["path"]: e for e in baseline.get("workspace", {}).get("files", [])}
    same = set()
    for change in modified:
        if change.kind == "config":
            entry, live = config.get(change.name), Path(change.name)
        else:
            entry, live = workspace.get(change.name), Path(root) / change.name
        if entry and _same_bytes(store, entry, live):
            same.add((change.kind, change.name))
    return same


def _same_bytes(store: Repository, entry: Mapping[str, Any], live: Path) -> bool:
    """Whether ``live`` holds the bytes the store keeps for the manifest ``entry``."""
    if entry.get("content") is None or "stored_size" in entry:
        return False  # a redacted file is stored as other bytes than the live ones
    try:
        if live.stat().st_size != entry.get("size") or entry.get("size", 0) > _CONFIRM_MAX_BYTES:
            return False
        content = FileContent(int(entry["size"]), tuple(entry["content"]))
        return b"".join(store.iter_file(content)) == live.read_bytes()
    except (OSError, StoreError):
        return False


def _install_dirs_in(root: Path, capture: Any) -> list[str]:
    """The interpreters' install directories inside ``root``, relative to it."""
    base = str(Path(root).absolute())
    return [
        os.path.relpath(d, base)
        for interp in capture.interpreters
        for d in install_dirs(interp.info)
        if d.startswith(base.rstrip("/") + "/")
    ]


def capture_live(pythons: Sequence[str] | None, root: Path) -> Any:
    """Capture the live environment, leaving out interpreters that no longer exist.

    The comparison then reports such an interpreter removed (CRITICAL) instead of failing.
    """
    present = None if pythons is None else [p for p in pythons if Path(p).exists()]
    return capture_environment(present, root, walk_prefixes=False)


def diff_manifests(before: Mapping[str, Any], after: Mapping[str, Any]) -> DriftReport:
    """The drift report from snapshot ``before`` (the baseline) to snapshot ``after``.

    Without knowing what the notebooks import, packages are graded as if every notebook
    imported them (the cautious reading); the drift detector grades with the imports.
    """
    changes = raw_changes(manifest_facets(before), manifest_facets(after))
    return SeverityPolicy().grade(str(before.get("id", "")), changes, context=None)
