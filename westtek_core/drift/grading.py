"""Grading: how much each change matters, by what the notebooks import, run and read.

A change matters as much as the notebooks it can break: an upgrade of a package no
notebook imports is noise; a major-version change of one the analysis notebook imports is
critical. ``SeverityPolicy`` holds those rules; ``grading_context`` gathers what the
notebooks import, which kernels they run and which data files they read.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blake3
from packaging.utils import canonicalize_name
from traitlets import Bool
from traitlets.config import LoggingConfigurable

from westtek_core.capture.jupyter_env import is_lab_preference
from westtek_core.drift.facets import RawChange, kernel_interpreters
from westtek_core.drift.report import Change, DriftReport, Severity, is_breaking
from westtek_core.notebooks import ImportMap, NotebookAnalysis, analyse_notebook, find_notebooks
from westtek_core.paths import data_dir, write_atomic


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
    and lab extension changes, a read data file modified. INFO: notebook edits, new files,
    JupyterLab's user settings (the interface's, not the results').
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
        if is_lab_preference(raw.name):
            return Severity.INFO, f"JupyterLab setting {raw.name} {raw.change}", []
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


def analyse_notebooks_cached(root: Path, cache_file: Path | None = None) -> list[Any]:
    """The workspace's notebook analyses, re-analysing only notebooks changed since last time.

    The cache (JSON in the user's data directory) is keyed by absolute path and validated by
    size and mtime, so an unchanged workspace costs one ``stat`` per notebook.
    """
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
        # the drift watch and an automatic snapshot's comparison may write it at once
        write_atomic(cache_file, json.dumps(cache))
    return results


def _package_key(package: Mapping[str, Any]) -> str:
    return f"{package.get('name')} {package.get('version')}"


def _provides_digest(package: Mapping[str, Any]) -> str:
    """A digest of what a distribution record provides to ``import``: files and top_level."""
    provided = json.dumps([package.get("files"), package.get("top_level")], sort_keys=True)
    return blake3.blake3(provided.encode()).hexdigest()


@dataclass(frozen=True)
class BaselineImports:
    """Which distributions provide each module in the baseline's interpreters, by label.

    ``provides`` holds, per label and ``"name version"``, a digest of what that distribution
    provides: a live one with the same digest maps to the same modules, so only the
    distributions installed or changed since the baseline are mapped on top of ``maps``.
    """

    maps: dict[str, ImportMap]
    provides: dict[str, dict[str, str]]

    @classmethod
    def of(cls, baseline: Mapping[str, Any]) -> BaselineImports:
        """Map the baseline manifest's distributions (from their RECORD file lists)."""
        maps, provides = {}, {}
        for interp in baseline.get("interpreters", []):
            label, packages = str(interp.get("label")), list(interp.get("packages", []))
            maps[label] = ImportMap.from_packages(packages)
            provides[label] = {_package_key(p): _provides_digest(p) for p in packages}
        return cls(maps, provides)

    def to_json(self) -> dict[str, Any]:
        """As JSON, in the baseline's order of interpreters (:meth:`from_json` reads it)."""
        return {
            "interpreters": [
                {"label": label, "map": m.to_json(), "provides": self.provides.get(label, {})}
                for label, m in self.maps.items()
            ]
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> BaselineImports:
        """What :meth:`to_json` wrote; ``ValueError`` if ``doc`` is not that."""
        try:
            entries = [(str(e["label"]), e) for e in doc["interpreters"]]
            return cls(
                {label: ImportMap.from_json(e["map"]) for label, e in entries},
                {label: {str(k): str(v) for k, v in e["provides"].items()} for label, e in entries},
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a baseline's imports ({exc!r})") from None

    def with_live(
        self, baseline: Mapping[str, Any], live: Mapping[str, Any]
    ) -> dict[str, ImportMap]:
        """The maps extended by the ``live`` manifest's distributions the baseline lacks.

        A notebook importing a package added after the baseline is affected by it.
        """
        maps = dict(self.maps)
        label_of = {
            str(i.get("path")): str(i.get("label")) for i in baseline.get("interpreters", [])
        }
        for interp in live.get("interpreters", []):
            label = label_of.get(str(interp.get("path")))
            if label is None or label not in maps:
                continue
            known = self.provides.get(label, {})
            added = [
                p
                for p in interp.get("packages", [])
                if known.get(_package_key(p)) != _provides_digest(p)
            ]
            if added:
                maps[label] = maps[label].extended(added)
        return maps


def grading_context(
    root: Path,
    baseline: Mapping[str, Any],
    analyses: Sequence[Any] | None = None,
    live: Mapping[str, Any] | None = None,
    imports: BaselineImports | None = None,
) -> GradingContext:
    """Analyse the workspace's notebooks (unless given) and resolve their imports.

    Imports resolve against the baseline's packages (``imports``, when the caller kept
    them, else mapped from ``baseline``) and, given the ``live`` manifest, the packages
    installed since: a notebook importing a package added after the baseline is affected
    by it.
    """
    imports = imports if imports is not None else BaselineImports.of(baseline)
    maps = imports.with_live(baseline, live) if live is not None else imports.maps
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
