"""Retention: which snapshots a policy keeps, and a safe prune of the rest.

The policy is restic's ``forget`` model: keep the last N, and the newest snapshot of each of
the last D days, W weeks and M months, per environment. Some snapshots are never deleted,
whatever the policy says: an environment's baseline, and any snapshot protected by a label
(``westtek.keep``, a share with another lab, a transfer to a successor, a rollback's safety
snapshot). One kind of safety snapshot is the exception: the one a server takes when it
restores the researcher's environment at a container start holds only the image's
environment, and a server takes one at every such start, so only each environment's latest
is kept; they never take the policy's places from other snapshots. Deleting is then a plain
``delete_snapshot`` per id and one prune of the objects nothing references any more, under
the store's exclusive lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from westtek_core.snapshot.catalog import load_snapshot
from westtek_core.snapshot.manifest import referenced_chunks
from westtek_core.store import Repository

SAFETY_LABEL = "westtek.rollback"
"""The label of a rollback's safety snapshot: the environment as it was before the rollback."""

SAFETY_ORIGIN_LABEL = f"{SAFETY_LABEL}.origin"
"""Which rollback took a safety snapshot; :data:`CONTAINER_START` is the only value set."""

CONTAINER_START = "container-start"
"""A server's restore of the researcher's latest snapshot as its container starts."""

# labels that keep a snapshot whatever the policy says
PROTECTING_LABELS = ("westtek.keep", "westtek.shared", "westtek.transferred", SAFETY_LABEL)


def is_container_start_safety(labels: Mapping[str, Any] | None) -> bool:
    """Whether a snapshot is the safety snapshot of a restore at a container start."""
    return (labels or {}).get(SAFETY_ORIGIN_LABEL) == CONTAINER_START


@dataclass(frozen=True)
class RetentionPolicy:
    """How many snapshots to keep, per environment."""

    keep_last: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0

    def __post_init__(self) -> None:
        for name in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name.replace('_', '-')} must not be negative")

    @property
    def empty(self) -> bool:
        """A policy keeping nothing would delete everything: refused by ``plan_retention``."""
        return not (self.keep_last or self.keep_daily or self.keep_weekly or self.keep_monthly)


@dataclass
class RetentionPlan:
    """What a policy keeps (with why) and deletes."""

    keep: dict[str, list[str]] = field(default_factory=dict)  # id → reasons
    delete: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``snapshot prune --json`` plan."""
        return {"keep": self.keep, "delete": self.delete}


def _when(row: Mapping[str, Any]) -> datetime:
    value = datetime.fromisoformat(str(row["timestamp"]))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def plan_retention(
    snapshots: Iterable[Mapping[str, Any]],
    policy: RetentionPolicy,
    protected: Iterable[str] = (),
) -> RetentionPlan:
    """Decide, per environment, what ``policy`` keeps; no I/O.

    ``snapshots`` carry ``id``, ``timestamp``, ``environment_id`` and ``labels``;
    ``protected`` are ids kept regardless (baselines, shared or transferred snapshots).
    """
    if policy.empty:
        raise ValueError("a retention policy must keep something: give at least one --keep-*")
    plan = RetentionPlan()
    always = set(protected)
    by_env: dict[str, list[Mapping[str, Any]]] = {}
    for row in snapshots:
        by_env.setdefault(str(row.get("environment_id")), []).append(row)
    buckets = (
        ("daily", policy.keep_daily, "%Y-%m-%d"),
        ("weekly", policy.keep_weekly, "%G-W%V"),
        ("monthly", policy.keep_monthly, "%Y-%m"),
    )
    for rows in by_env.values():
        rows.sort(key=_when, reverse=True)
        reasons: dict[str, list[str]] = {str(r["id"]): [] for r in rows}
        restores = [r for r in rows if is_container_start_safety(r.get("labels"))]
        if restores:
            reasons[str(restores[0]["id"])].append("latest container-start safety snapshot")
        ranked = [r for r in rows if not is_container_start_safety(r.get("labels"))]
        for row in ranked[: policy.keep_last]:
            reasons[str(row["id"])].append("last")
        for name, count, pattern in buckets:
            seen: list[str] = []
            for row in ranked:  # newest first: the first of each period is its newest
                period = _when(row).strftime(pattern)
                if period not in seen and len(seen) < count:
                    seen.append(period)
                    reasons[str(row["id"])].append(f"{name} {period}")
        for row in ranked:
            labels = row.get("labels") or {}
            reasons[str(row["id"])] += [f"label {k}" for k in PROTECTING_LABELS if k in labels]
        for row in rows:
            sid = str(row["id"])
            if sid in always:
                reasons[sid].append("protected")
            if reasons[sid]:
                plan.keep[sid] = reasons[sid]
            else:
                plan.delete.append(sid)
    return plan


def superseded_container_start_safeties(
    snapshots: Iterable[Mapping[str, Any]], environment_id: str, protected: Iterable[str] = ()
) -> list[str]:
    """The container-start safety snapshots of ``environment_id`` a newer one supersedes.

    Each container start that restores the environment leaves one (the bare image's
    environment); only the latest is worth keeping, and ``protected`` ones (the baseline).
    """
    rows = [
        row
        for row in snapshots
        if row.get("environment_id") == environment_id
        and is_container_start_safety(row.get("labels"))
    ]
    return plan_retention(rows, RetentionPolicy(keep_last=1), protected).delete if rows else []


def reclaimable_bytes(repo: Repository, plan: RetentionPlan) -> int:
    """What deleting the plan's snapshots would free: chunks only they reference."""
    doomed: set[str] = set()
    kept: set[str] = set()
    for sid in repo.list_manifests():
        chunks = referenced_chunks(repo.load_manifest(sid))
        (doomed if sid in plan.delete else kept).update(chunks)
    return repo.stored_size(doomed - kept)


def apply_retention(repo: Repository, plan: RetentionPlan) -> dict[str, Any]:
    """Delete the plan's snapshots, then prune once what nothing references."""
    for sid in plan.delete:
        repo.delete_manifest(load_snapshot(repo, sid)["id"])

    def still_referenced() -> set[str]:
        keep: set[str] = set()
        for other in repo.list_manifests():
            keep |= referenced_chunks(repo.load_manifest(other))
        return keep

    stats = repo.prune(still_referenced) if plan.delete else None
    return {"deleted": plan.delete, "prune": stats.__dict__ if stats else None}


__all__ = [
    "CONTAINER_START",
    "superseded_container_start_safeties",
    "PROTECTING_LABELS",
    "SAFETY_LABEL",
    "SAFETY_ORIGIN_LABEL",
    "RetentionPlan",
    "RetentionPolicy",
    "apply_retention",
    "is_container_start_safety",
    "plan_retention",
    "reclaimable_bytes",
]
