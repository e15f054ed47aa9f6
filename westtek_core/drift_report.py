"""The drift report: the JSON shape every comparison of two environments produces.

``diff_manifests`` compares two snapshot manifests; the live drift detector compares a
baseline with a fresh capture the same way. Severity here is by kind of change only;
grading by what the notebooks import refines it (see the drift module).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from packaging.version import InvalidVersion, Version


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


def _version_change(before: str, after: str) -> str:
    try:
        return "upgraded" if Version(after) > Version(before) else "downgraded"
    except InvalidVersion:
        return "modified"


def _package_severity(before: str, after: str) -> Severity:
    try:
        old, new = Version(before), Version(after)
    except InvalidVersion:
        return Severity.MINOR
    return Severity.CRITICAL if old.major != new.major else Severity.MINOR


def _compare(
    kind: str,
    before: Mapping[str, str],
    after: Mapping[str, str],
    *,
    versioned: bool,
    show_values: bool,
    removed_severity: Severity,
    added_severity: Severity,
    modified_severity: Severity,
) -> Iterator[Change]:
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if old is None:
            yield Change(kind, name, "added", None, new, added_severity, f"{kind} {name} added")
        elif new is None:
            reason = f"{kind} {name} removed"
            yield Change(kind, name, "removed", old, None, removed_severity, reason)
        elif versioned:
            direction = _version_change(old, new)
            severity = _package_severity(old, new)
            reason = f"{name} {direction} from {old} to {new}"
            if severity is Severity.CRITICAL:
                reason += " (major version change)"
            yield Change(kind, name, direction, old, new, severity, reason)
        else:
            reason = f"{kind} {name} changed"
            if not show_values:  # content ids mean nothing to a reader
                old = new = None
            yield Change(kind, name, "modified", old, new, modified_severity, reason)


def _content_digest(entry: Mapping[str, Any]) -> str:
    if entry.get("kind") == "symlink":
        return f"-> {entry.get('link_target')}"
    return ",".join(entry.get("content") or ()) or f"size:{entry.get('size', 0)}"


def manifest_facets(manifest: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Reduce a manifest to name → comparable value, per kind of change."""
    interpreters: dict[str, str] = {}
    packages: dict[str, str] = {}
    several = len(manifest.get("interpreters", [])) > 1
    for interp in manifest.get("interpreters", []):
        label = str(interp.get("label") or interp.get("path", "?"))
        interpreters[label] = str(interp.get("version", "?"))
        for pkg in interp.get("packages", []):
            # with several interpreters, the same package in two of them are two facts
            packages[f"{label}:{pkg['name']}" if several else pkg["name"]] = pkg["version"]
    kernels = {k["name"]: _kernel_digest(k) for k in manifest.get("kernels", [])}
    config = {
        f"{c['dir']}/{e['path']}": _content_digest(e)
        for c in manifest.get("jupyter", {}).get("config", [])
        for e in c.get("files", [])
        if e.get("kind") != "dir"
    }
    extensions = {x["name"]: str(x.get("version", "?")) for x in manifest.get("labextensions", [])}
    notebooks: dict[str, str] = {}
    data: dict[str, str] = {}
    for entry in manifest.get("workspace", {}).get("files", []):
        if entry.get("kind") == "dir":
            continue
        target = notebooks if entry["path"].endswith(".ipynb") else data
        target[entry["path"]] = _content_digest(entry)
    return {
        "interpreter": interpreters,
        "package": packages,
        "kernel": kernels,
        "config": config,
        "extension": extensions,
        "notebook": notebooks,
        "data": data,
    }


def _kernel_digest(kernel: Mapping[str, Any]) -> str:
    spec = kernel.get("spec", {})
    return " ".join(spec.get("argv", [])) + f" [{spec.get('display_name', '')}]"


def diff_facets(
    baseline_id: str,
    before: Mapping[str, Mapping[str, str]],
    after: Mapping[str, Mapping[str, str]],
) -> DriftReport:
    """Compare two environments reduced by ``manifest_facets``."""
    report = DriftReport(baseline=baseline_id)
    # kind: (versioned, show values, severity if removed, if added, if modified)
    rules = {
        "interpreter": (True, True, Severity.CRITICAL, Severity.MINOR, Severity.CRITICAL),
        "package": (True, True, Severity.CRITICAL, Severity.MINOR, Severity.MINOR),
        "kernel": (False, True, Severity.CRITICAL, Severity.INFO, Severity.MINOR),
        "config": (False, False, Severity.MINOR, Severity.MINOR, Severity.MINOR),
        "extension": (True, True, Severity.MINOR, Severity.INFO, Severity.INFO),
        "notebook": (False, False, Severity.INFO, Severity.INFO, Severity.INFO),
        "data": (False, False, Severity.MINOR, Severity.INFO, Severity.INFO),
    }
    for kind, (versioned, show_values, removed, added, modified) in rules.items():
        report.changes.extend(
            _compare(
                kind,
                before.get(kind, {}),
                after.get(kind, {}),
                versioned=versioned,
                show_values=show_values,
                removed_severity=removed,
                added_severity=added,
                modified_severity=modified,
            )
        )
    return report


def diff_manifests(before: Mapping[str, Any], after: Mapping[str, Any]) -> DriftReport:
    """The drift report from snapshot ``before`` (the baseline) to snapshot ``after``."""
    return diff_facets(str(before.get("id", "")), manifest_facets(before), manifest_facets(after))
