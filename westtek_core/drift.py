"""Drift: how the live environment differs from its baseline, graded by what notebooks use.

A change matters as much as the notebooks it can break: an upgrade of a package no
notebook imports is noise; a major-version change of one the analysis notebook imports is
critical. ``SeverityPolicy`` holds those rules; ``detect_drift`` gathers what the
notebooks import, which kernels they run and which data files they read.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from traitlets import Bool
from traitlets.config import LoggingConfigurable

from westtek_core.drift_report import (
    Change,
    DriftReport,
    RawChange,
    Severity,
    is_breaking,
    manifest_facets,
    raw_changes,
)
from westtek_core.paths import is_within
from westtek_core.snapshot.create import package_records
from westtek_core.store import FileContent, Repository, StoreError


@dataclass
class NotebookUse:
    """What one notebook depends on, resolved against the baseline environment."""

    kernel: str | None
    interpreter: str | None  # label of the interpreter the notebook's kernel runs
    distributions: set[str] = field(default_factory=set)  # canonical names it imports
    data_files: set[str] = field(default_factory=set)
    pip_installs: list[str] = field(default_factory=list)  # from `%pip install` cells


@dataclass
class GradingContext:
    """Every analysed notebook's use of the environment, by workspace-relative path."""

    notebooks: dict[str, NotebookUse] = field(default_factory=dict)
    unanalysable: list[str] = field(default_factory=list)


def _version_key(version: str | None) -> tuple[str, ...]:
    return tuple((version or "").split(".")[:2])


class SeverityPolicy(LoggingConfigurable):
    """Grade each change by what it can break (defaults as the drift issue specifies).

    CRITICAL: the interpreter's major.minor changed or it vanished; an imported package
    removed or changed in a breaking way; a kernel a notebook uses removed or repointed;
    a data file a notebook reads removed. MINOR: any other package change, Jupyter config
    and lab extension changes, a read data file modified. INFO: notebook edits, new files.
    """

    zero_minor_is_breaking = Bool(
        True,
        config=True,
        help="Treat a minor-version change of a 0.x package as breaking (SemVer), like a "
        "major-version change of a 1.x+ package.",
    )
    unknown_imports_are_imported = Bool(
        True,
        config=True,
        help="When what the notebooks import is unknown (comparing two snapshots), grade "
        "every package as if a notebook imported it: the cautious reading.",
    )

    def _breaking(self, before: str | None, after: str | None) -> bool:
        if before is None or after is None:
            return True
        if not self.zero_minor_is_breaking and before.startswith("0."):
            return before.split(".")[:1] != after.split(".")[:1]
        return is_breaking(before, after)

    def grade(
        self, baseline: str, changes: Iterable[RawChange], context: GradingContext | None
    ) -> DriftReport:
        """Turn raw changes into the drift report."""
        return DriftReport(baseline=baseline, changes=[self.grade_one(c, context) for c in changes])

    def grade_one(self, raw: RawChange, context: GradingContext | None) -> Change:
        """Grade one change, naming the notebooks it affects and why."""
        notebooks = context.notebooks if context else {}
        severity, reason, affected = getattr(self, f"_grade_{raw.kind}")(raw, notebooks, context)
        return Change(
            raw.kind,
            raw.name,
            raw.change,
            raw.before,
            raw.after,
            severity,
            reason,
            tuple(sorted(affected)),
        )

    def _grade_interpreter(
        self, raw: RawChange, notebooks: Mapping[str, NotebookUse], context: Any
    ) -> tuple[Severity, str, list[str]]:
        affected = [p for p, use in notebooks.items() if use.interpreter == raw.name]
        if raw.change == "removed":
            return Severity.CRITICAL, f"interpreter {raw.name} ({raw.before}) vanished", affected
        if raw.change == "added":
            return Severity.MINOR, f"interpreter {raw.name} ({raw.after}) appeared", affected
        if _version_key(raw.before) != _version_key(raw.after):
            reason = (
                f"Python {raw.before} → {raw.after}: a new minor version breaks compiled packages"
            )
            return Severity.CRITICAL, reason, affected
        return Severity.MINOR, f"Python {raw.before} → {raw.after} (patch release)", affected

    def _grade_package(
        self, raw: RawChange, notebooks: Mapping[str, NotebookUse], context: Any
    ) -> tuple[Severity, str, list[str]]:
        dist = canonicalize_name(raw.name)
        affected = [
            path
            for path, use in notebooks.items()
            if dist in use.distributions and use.interpreter in (None, raw.interpreter)
        ]
        imported = bool(affected) or (context is None and self.unknown_imports_are_imported)
        what = f"{raw.name} {raw.change}"
        if raw.change in ("upgraded", "downgraded", "modified"):
            what = f"{raw.name} {raw.change} from {raw.before} to {raw.after}"
        users = (
            f"imported by {len(affected)} notebook(s)" if affected else "imported by no notebook"
        )
        if context is None:
            users = "imports unknown"
        if imported and raw.change == "removed":
            return Severity.CRITICAL, f"{what}; {users}", affected
        if imported and raw.change != "added" and self._breaking(raw.before, raw.after):
            return Severity.CRITICAL, f"{what}: a breaking version change; {users}", affected
        return Severity.MINOR, f"{what}; {users}", affected

    def _grade_kernel(
        self, raw: RawChange, notebooks: Mapping[str, NotebookUse], context: Any
    ) -> tuple[Severity, str, list[str]]:
        affected = [p for p, use in notebooks.items() if use.kernel == raw.name]
        used = bool(affected) or context is None
        if raw.change == "removed" and used:
            return Severity.CRITICAL, f"kernel {raw.name} removed", affected
        if raw.change == "modified" and used:
            return Severity.CRITICAL, f"kernel {raw.name} now runs {raw.after}", affected
        return Severity.MINOR, f"kernel {raw.name} {raw.change}", affected

    def _grade_config(
        self, raw: RawChange, notebooks: Mapping[str, NotebookUse], context: Any
    ) -> tuple[Severity, str, list[str]]:
        return Severity.MINOR, f"Jupyter config {raw.name} {raw.change}", []

    def _grade_extension(
        self, raw: RawChange, notebooks: Mapping[str, NotebookUse], context: Any
    ) -> tuple[Severity, str, list[str]]:
        return Severity.MINOR, f"lab extension {raw.name} {raw.change}", []

    def _grade_notebook(
        self, raw: RawChange, notebooks: Mapping[str, NotebookUse], context: Any
    ) -> tuple[Severity, str, list[str]]:
        return Severity.INFO, f"notebook {raw.name} {raw.change}", [raw.name]

    def _grade_data(
        self, raw: RawChange, notebooks: Mapping[str, NotebookUse], context: Any
    ) -> tuple[Severity, str, list[str]]:
        readers = [p for p, use in notebooks.items() if raw.name in use.data_files]
        if readers and raw.change == "removed":
            return Severity.CRITICAL, f"data file {raw.name} removed; notebooks read it", readers
        if readers and raw.change == "modified":
            return Severity.MINOR, f"data file {raw.name} modified; notebooks read it", readers
        return Severity.INFO, f"data file {raw.name} {raw.change}", readers


def live_manifest(capture: Any) -> dict[str, Any]:
    """A capture in the manifest's shape, files described by stat only (nothing is read)."""

    def entries(tree: Any) -> list[dict[str, Any]]:
        return [e.to_json() for e in tree.entries]

    return {
        "id": "live",
        "interpreters": [
            {
                "label": f"env{index}",
                "path": interp.python,
                "executable": interp.info.get("executable"),
                "prefix": interp.info.get("prefix"),
                "version": interp.info.get("version_string") or interp.info.get("version"),
                "packages": package_records(interp.info),
            }
            for index, interp in enumerate(capture.interpreters)
        ],
        "kernels": [{"name": k.name, "spec": k.spec} for k in capture.kernels],
        "jupyter": {"config": [{"dir": c.dir, "files": entries(c.tree)} for c in capture.config]},
        "labextensions": capture.labextensions,
        "workspace": {"files": entries(capture.workspace)},
    }


def kernel_interpreters(manifest: Mapping[str, Any]) -> dict[str, str]:
    """Kernel name → label of the manifest interpreter it runs."""
    result: dict[str, str] = {}
    for kernel in manifest.get("kernels", []):
        argv = kernel.get("spec", {}).get("argv") or [""]
        for interp in manifest.get("interpreters", []):
            prefix = str(interp.get("prefix") or "")
            if argv[0] in (interp.get("path"), interp.get("executable")) or (
                prefix and argv[0].startswith(prefix.rstrip("/") + "/")
            ):
                result[kernel["name"]] = str(interp.get("label"))
                break
    return result


def analyse_notebooks_cached(root: Path, cache_file: Path | None = None) -> list[Any]:
    """The workspace's notebook analyses, re-analysing only notebooks changed since last time.

    The cache (JSON in the user's data directory) is keyed by absolute path and validated by
    size and mtime, so an unchanged workspace costs one ``stat`` per notebook.
    """
    import json
    import os

    from westtek_core.notebook_imports import NotebookAnalysis, analyse_notebook, find_notebooks
    from westtek_core.paths import data_dir

    cache_file = cache_file or data_dir() / "notebook-analyses.json"
    try:
        cache: dict[str, Any] = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    results, changed = [], False
    for relative in find_notebooks(root):
        path = root / relative
        try:
            st = path.stat()
        except OSError:
            continue
        key, stamp = str(path.absolute()), [st.st_size, st.st_mtime_ns]
        hit = cache.get(key)
        if isinstance(hit, dict) and hit.get("stamp") == stamp:
            fields = hit["analysis"]
            for name in ("imports", "data_files", "pip_installs"):
                fields[name] = tuple(fields[name])
            results.append(NotebookAnalysis(**fields))
            continue
        analysis = analyse_notebook(path, root)
        cache[key] = {"stamp": stamp, "analysis": dataclasses.asdict(analysis)}
        results.append(analysis)
        changed = True
    if changed:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        tmp.replace(cache_file)
    return results


def grading_context(
    root: Path, baseline: Mapping[str, Any], analyses: Sequence[Any] | None = None
) -> GradingContext:
    """Analyse the workspace's notebooks (unless given) and resolve their imports."""
    from westtek_core.notebook_imports import ImportMap

    maps = {
        str(i.get("label")): ImportMap.from_packages(i.get("packages", []))
        for i in baseline.get("interpreters", [])
    }
    kernels = kernel_interpreters(baseline)
    default = next(iter(maps), None)
    context = GradingContext()
    for analysis in analyses if analyses is not None else analyse_notebooks_cached(root):
        if analysis.error:
            context.unanalysable.append(analysis.path)
            continue
        label = kernels.get(analysis.kernel or "", default if len(maps) == 1 else None)
        import_map = maps.get(label or "")
        dists: set[str] = set()
        for module in analysis.imports:
            if import_map is not None:
                dists |= {canonicalize_name(d) for d in import_map.distributions_for(module)}
        context.notebooks[analysis.path] = NotebookUse(
            kernel=analysis.kernel,
            interpreter=label,
            distributions=dists,
            data_files=set(analysis.data_files),
            pip_installs=list(analysis.pip_installs),
        )
    return context


def detect_drift(
    capture: Any,
    baseline: Mapping[str, Any],
    root: Path,
    policy: SeverityPolicy | None = None,
    context: GradingContext | None = None,
    store: Repository | None = None,
) -> DriftReport:
    """Compare a live capture with its baseline snapshot, graded by the notebooks' use.

    ``context`` is the notebooks' use when the caller already has it (else it is analysed).
    Files are compared by size and modification time; with the baseline's ``store``, a
    small file whose time alone changed is compared by content, so one rewritten with the
    same bytes (an editor's save, a reinstall of the suite) is no change.
    """
    from westtek_core.capture import is_lab_layout

    live = live_manifest(capture)
    # the live interpreters take the baseline's labels where the same interpreter is meant
    by_path = {str(i.get("path")): str(i.get("label")) for i in baseline.get("interpreters", [])}
    for interp in live["interpreters"]:
        interp["label"] = by_path.get(str(interp["path"]), str(interp["path"]))
    changes = raw_changes(manifest_facets(baseline, by="stat"), manifest_facets(live, by="stat"))
    # files of packages installed inside the workspace (a user site in the home) are
    # stored with it, but as drift they are the package change, not one per file
    installed = _install_dirs_in(root, capture)
    changes = [
        c
        for c in changes
        if not (c.kind in ("data", "notebook") and any(is_within(c.name, d) for d in installed))
        and not (c.kind == "config" and is_lab_layout(c.name))  # a baseline from before
    ]
    if store is not None:
        same = _rewritten_unchanged(store, baseline, root, changes)
        changes = [c for c in changes if (c.kind, c.name) not in same]
    if context is None:
        context = grading_context(root, baseline)
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
    from westtek_core.capture import install_dirs

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
    from westtek_core.capture import capture_environment

    present = None if pythons is None else [p for p in pythons if Path(p).exists()]
    return capture_environment(present, root, walk_prefixes=False)


def fails_at(report: DriftReport, level: str) -> bool:
    """Whether a report reaches ``--fail-on`` level ``minor`` or ``critical``."""
    order: Sequence[str] = ("STABLE", "MINOR_DRIFT", "CRITICAL_DRIFT")
    threshold = {"minor": "MINOR_DRIFT", "critical": "CRITICAL_DRIFT"}[level]
    return order.index(report.status.value) >= order.index(threshold)


def diff_manifests(before: Mapping[str, Any], after: Mapping[str, Any]) -> DriftReport:
    """The drift report from snapshot ``before`` (the baseline) to snapshot ``after``.

    Without knowing what the notebooks import, packages are graded as if every notebook
    imported them (the cautious reading); the drift detector grades with the imports.
    """
    changes = raw_changes(manifest_facets(before), manifest_facets(after))
    return SeverityPolicy().grade(str(before.get("id", "")), changes, context=None)
