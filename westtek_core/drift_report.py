"""The drift report: the JSON shape every comparison of two environments produces.

``drift.diff_manifests`` compares two snapshot manifests with it; the live drift detector compares a
baseline with a fresh capture the same way. Severity here is by kind of change only;
grading by what the notebooks import refines it (see the drift module).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from packaging.version import InvalidVersion, Version

from westtek_core.snapshot.manifest import first_by_name


class Severity(str, Enum):
    """How much a change matters to the notebooks."""

    INFO = "info"
    MINOR = "minor"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Order of severity: info < minor < critical."""
        return ("info", "minor", "critical").index(self.value)


class DriftStatus(str, Enum):
    """The overall status, from the most severe change."""

    STABLE = "STABLE"
    MINOR_DRIFT = "MINOR_DRIFT"
    CRITICAL_DRIFT = "CRITICAL_DRIFT"


_STATUS_OF = {
    Severity.INFO: DriftStatus.STABLE,
    Severity.MINOR: DriftStatus.MINOR_DRIFT,
    Severity.CRITICAL: DriftStatus.CRITICAL_DRIFT,
}


@dataclass(frozen=True)
class Change:
    """One difference between the baseline and the other side."""

    kind: str  # interpreter | package | kernel | config | extension | notebook | data
    name: str
    change: str  # added | removed | upgraded | downgraded | modified
    before: str | None
    after: str | None
    severity: Severity
    reason: str
    affected_notebooks: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The wire form of one change."""
        return {
            "kind": self.kind,
            "name": self.name,
            "change": self.change,
            "before": self.before,
            "after": self.after,
            "severity": self.severity.value,
            "affected_notebooks": list(self.affected_notebooks),
            "reason": self.reason,
        }


@dataclass
class DriftReport:
    """Every change from a baseline snapshot, and the status they add up to."""

    baseline: str
    changes: list[Change] = field(default_factory=list)

    @property
    def status(self) -> DriftStatus:
        """STABLE unless some change is minor or critical."""
        worst = max((c.severity for c in self.changes), key=lambda s: s.rank, default=None)
        return _STATUS_OF[worst] if worst else DriftStatus.STABLE

    def to_json(self) -> dict[str, Any]:
        """The wire form (ARCHITECTURE.md, "Drift report")."""
        return {
            "status": self.status.value,
            "baseline": self.baseline,
            "changes": [c.to_json() for c in self.changes],
        }


def version_direction(before: str, after: str) -> str:
    """``upgraded``, ``downgraded`` or ``modified`` (versions that do not parse)."""
    try:
        return "upgraded" if Version(after) > Version(before) else "downgraded"
    except InvalidVersion:
        return "modified"


def is_breaking(before: str, after: str) -> bool:
    """A major version change, or a minor one in 0.x releases (SemVer's breaking changes)."""
    try:
        old, new = Version(before), Version(after)
    except InvalidVersion:
        return True
    if old.major != new.major:
        return True
    return old.major == 0 and old.minor != new.minor


@dataclass(frozen=True)
class RawChange:
    """A difference before grading: what changed, not yet how much it matters."""

    kind: str
    name: str
    change: str
    before: str | None
    after: str | None
    interpreter: str = ""  # the interpreter label, for packages and interpreters


def _digest(entry: Mapping[str, Any], by: str) -> str:
    if entry.get("kind") == "symlink":
        return f"-> {entry.get('link_target')}"
    if by == "content" and entry.get("content") is not None:
        return ",".join(entry.get("content") or ()) or "empty"
    return f"{entry.get('size', 0)}:{entry.get('mtime_ns', 0)}"


def _kernel_digest(kernel: Mapping[str, Any]) -> str:
    spec = kernel.get("spec", {})
    return " ".join(spec.get("argv", [])) + f" [{spec.get('display_name', '')}]"


def manifest_facets(manifest: Mapping[str, Any], by: str = "content") -> dict[str, dict[Any, str]]:
    """Reduce a manifest to key → comparable value, per kind of change.

    ``by="content"`` compares files by their content ids (two snapshots); ``by="stat"`` by
    size and mtime (a snapshot against a live capture, whose files were not hashed).
    Packages are keyed by (interpreter label, name).
    """
    interpreters: dict[Any, str] = {}
    packages: dict[Any, str] = {}
    for interp in manifest.get("interpreters", []):
        label = str(interp.get("label") or interp.get("path", "?"))
        interpreters[label] = str(interp.get("version", "?")).split()[0]
        for pkg in first_by_name(interp.get("packages", [])).values():
            packages[(label, pkg["name"])] = pkg["version"]
    kernels: dict[Any, str] = {k["name"]: _kernel_digest(k) for k in manifest.get("kernels", [])}
    config: dict[Any, str] = {
        f"{c['dir']}/{e['path']}": _digest(e, by)
        for c in manifest.get("jupyter", {}).get("config", [])
        for e in c.get("files", [])
        if e.get("kind") != "dir"
    }
    extensions: dict[Any, str] = {
        x["name"]: str(x.get("version", "?")) for x in manifest.get("labextensions", [])
    }
    notebooks: dict[Any, str] = {}
    data: dict[Any, str] = {}
    for entry in manifest.get("workspace", {}).get("files", []):
        if entry.get("kind") == "dir":
            continue
        target = notebooks if entry["path"].endswith(".ipynb") else data
        target[entry["path"]] = _digest(entry, by)
    return {
        "interpreter": interpreters,
        "package": packages,
        "kernel": kernels,
        "config": config,
        "extension": extensions,
        "notebook": notebooks,
        "data": data,
    }


_VERSIONED = {"interpreter", "package", "extension"}
_SHOW_VALUES = {"interpreter", "package", "extension", "kernel"}


def raw_changes(
    before: Mapping[str, Mapping[Any, str]], after: Mapping[str, Mapping[Any, str]]
) -> list[RawChange]:
    """Every difference between two environments reduced by ``manifest_facets``."""
    changes = []
    for kind in ("interpreter", "package", "kernel", "config", "extension", "notebook", "data"):
        old_side, new_side = before.get(kind, {}), after.get(kind, {})
        for key in sorted(old_side.keys() | new_side.keys(), key=str):
            old, new = old_side.get(key), new_side.get(key)
            if old == new:
                continue
            interpreter, name = key if isinstance(key, tuple) else ("", str(key))
            if kind == "interpreter":
                interpreter = name
            if old is None:
                change = "added"
            elif new is None:
                change = "removed"
            elif kind in _VERSIONED:
                change = version_direction(old, new)
            else:
                change = "modified"
            if kind not in _SHOW_VALUES:  # content ids and stat digests mean nothing to a reader
                old = new = None
            changes.append(RawChange(kind, name, change, old, new, interpreter))
    return changes
