"""Labs' limits: quotas on servers and snapshot bytes, the API rate, and storage reports."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from westtek_core.snapshot.retention import RetentionPolicy, plan_retention
from westtek_hub.models import Environment, Lab, Share, Snapshot, Transfer
from westtek_hub.registry.access import Caller
from westtek_hub.registry.errors import OverQuota
from westtek_hub.registry.views import iso


@dataclass(frozen=True)
class Quota:
    """A lab's limits; 0 means unlimited."""

    servers: int = 0
    snapshot_bytes: int = 0
    requests_per_minute: int = 0

    @classmethod
    def from_config(cls, values: Mapping[str, Any]) -> Quota:
        """From a configuration dict, refusing unknown keys and negative limits."""
        unknown = set(values) - {"servers", "snapshot_bytes", "requests_per_minute"}
        if unknown:
            raise ValueError(f"unknown quota keys: {', '.join(sorted(unknown))}")
        quota = cls(**{k: int(v) for k, v in values.items()})
        if min(quota.servers, quota.snapshot_bytes, quota.requests_per_minute) < 0:
            raise ValueError("quotas must not be negative")
        return quota


class RateLimiter:
    """Requests per caller in a sliding minute."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}

    def allow(self, key: str, per_minute: int) -> bool:
        """Count a request; False when it is over ``per_minute`` (0: no limit)."""
        if per_minute <= 0:
            return True
        now = self.clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - 60:
            hits.popleft()
        if len(hits) >= per_minute:
            return False
        hits.append(now)
        return True


def lab_snapshot_bytes(session: Session, lab: str) -> int:
    """Bytes of the snapshots of a lab's environments, as their servers reported them."""
    total = session.scalar(
        select(func.coalesce(func.sum(Snapshot.size_bytes), 0))
        .join(Environment, Environment.id == Snapshot.environment_id)
        .where(Environment.lab_id == lab)
    )
    return int(total or 0)


def lab_storage(
    session: Session, caller: Caller, policy: RetentionPolicy, quotas: Callable[[str], Quota]
) -> list[dict[str, Any]]:
    """Per lab the caller administers: bytes, dedup savings, and what a prune would free.

    Sizes are as servers reported them: ``size_bytes`` the snapshot's files, and
    ``metadata.stored_bytes`` the new bytes it added to the store, so a prune frees what the
    retention policy drops of the latter. A lab's latest snapshot per environment, and its
    shared ones and transferred environments' ones, are never dropped.
    """
    labs = sorted(session.scalars(select(Lab.id))) if caller.admin else sorted(caller.admin_labs)
    report = []
    for lab in labs:
        rows = session.execute(
            select(Snapshot, Environment.last_snapshot_id)
            .join(Environment, Environment.id == Snapshot.environment_id)
            .where(Environment.lab_id == lab)
        ).all()
        shared = set(session.scalars(select(Share.snapshot_id).where(Share.from_lab == lab)))
        moved = set(session.scalars(select(Transfer.environment_id)))
        protected = shared | {last for _, last in rows if last}
        protected |= {snap.id for snap, _ in rows if snap.environment_id in moved}
        stored = {
            snap.id: int((snap.snap_metadata or {}).get("stored_bytes") or 0) for snap, _ in rows
        }
        logical = sum(snap.size_bytes for snap, _ in rows)
        plan = plan_retention(
            [
                {
                    "id": snap.id,
                    "timestamp": iso(snap.timestamp),
                    "environment_id": snap.environment_id,
                    "labels": {},
                }
                for snap, _ in rows
            ],
            policy,
            protected,
        )
        quota = quotas(lab)
        report.append(
            {
                "lab": lab,
                "snapshots": len(rows),
                "logical_bytes": logical,
                "stored_bytes": sum(stored.values()),
                "dedup_savings_bytes": max(0, logical - sum(stored.values())),
                "quota_bytes": quota.snapshot_bytes or None,
                "prune_would_delete": len(plan.delete),
                "prune_would_free_bytes": sum(stored[sid] for sid in plan.delete),
            }
        )
    return report


def check_snapshot_quota(session: Session, lab: str, quota: Quota) -> None:
    """Refuse a new snapshot when the lab's stored snapshots reach its quota."""
    used = lab_snapshot_bytes(session, lab)
    if quota.snapshot_bytes and used >= quota.snapshot_bytes:
        raise OverQuota(
            f"lab {lab} is at its snapshot storage quota ({used} of {quota.snapshot_bytes} "
            "bytes): prune old snapshots or ask a hub admin for more",
            lab,
        )


def check_server_quota(lab: str, running: int, quota: Quota) -> None:
    """Refuse a new server when the lab already runs its quota of them."""
    if quota.servers and running >= quota.servers:
        raise OverQuota(
            f"lab {lab} already runs {running} of its {quota.servers} servers: stop one first",
            lab,
        )
