"""The drift report: the JSON shape every comparison of two environments produces.

Severity, the overall status and the report itself, as values. Nothing of the suite is
imported here, so the wire module, the notifiers and the agents can name a status or a
change without pulling in capture or the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from packaging.version import InvalidVersion, Version

STALE_KERNEL = "stale_kernel"
"""The ``kind`` of a change about a running kernel that runs a version no longer installed
(:mod:`westtek_core.drift.stale_kernels`); the other kinds are listed on :class:`Change`."""


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

    kind: (
        str  # interpreter | package | kernel | config | extension | notebook | data | STALE_KERNEL
    )
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


def fails_at(report: DriftReport, level: str) -> bool:
    """Whether a report reaches ``--fail-on`` level ``minor`` or ``critical``."""
    order: Sequence[str] = ("STABLE", "MINOR_DRIFT", "CRITICAL_DRIFT")
    threshold = {"minor": "MINOR_DRIFT", "critical": "CRITICAL_DRIFT"}[level]
    return order.index(report.status.value) >= order.index(threshold)


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
