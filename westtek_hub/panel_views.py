"""What the panel's pages show: pure functions of the registry and the caller."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from westtek_core.wire import epoch_time
from westtek_hub import audit, registry
from westtek_hub.models import AuditEntry, Environment, Lab, Researcher, Share, Snapshot
from westtek_hub.registry import Caller
from westtek_hub.snapshot_records import snapshot_json

AUDIT_PAGE_SIZE = 200
ACTING = ("own", "lab-admin", "admin")


def researcher_of(row: Mapping[str, Any]) -> str:
    """An environment row's researcher."""
    return str(row["researcher_id"])


def visible_environments(
    session: Session,
    caller: Caller,
    lab: str | None = None,
    drift: str | None = None,
    researcher: str | None = None,
) -> list[dict[str, Any]]:
    """What ``GET api/environments`` shows the caller, also filtered by researcher."""
    rows = registry.list_environments(session, caller, lab or None, drift or None)
    return [r for r in rows if not researcher or researcher_of(r) == researcher]


def group_by_lab(rows: Iterable[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Rows grouped by lab, labs in name order, rows in their given order."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[str(row["lab_id"])].append(row)
    return sorted(groups.items())


def restorable_shares(session: Session, caller: Caller) -> dict[str, list[str]]:
    """Per environment, the snapshots shared with the caller's labs for restoring."""
    found: dict[str, list[str]] = defaultdict(list)
    if not caller.labs:
        return found
    query = (
        select(Snapshot.environment_id, Share.snapshot_id)
        .join(Snapshot, Snapshot.id == Share.snapshot_id)
        .where(
            Share.to_lab.in_(sorted(caller.labs)),
            Share.revoked_at.is_(None),
            Share.permission == "restore",
        )
        .order_by(Snapshot.timestamp.desc())
    )
    for env_id, snap_id in session.execute(query):
        if snap_id not in found[env_id]:
            found[env_id].append(snap_id)
    return found


def server_name_of(container_info: Mapping[str, Any], user: str) -> str:
    """The hub server an environment's container runs as (from its reported Jupyter URL)."""
    named = container_info.get("server_name")
    if isinstance(named, str):
        return named
    path = urlparse(str(container_info.get("jupyter_url") or "")).path
    match = re.search(r"/user/([^/]+)/([^/]*)/?$", path)
    if match and unquote(match.group(1)) == user:
        return unquote(match.group(2))
    return ""


def http_url(value: Any) -> str:
    """``value`` if it is an http(s) URL or an absolute path, else "" (never ``javascript:``)."""
    text = str(value or "")
    parsed = urlparse(text)
    if parsed.scheme in ("http", "https") and parsed.netloc:
        return text
    return text if text.startswith("/") and not text.startswith("//") else ""


def from_epoch(value: Any) -> str | None:
    """Epoch seconds as an ISO 8601 UTC time (None if not a time a report may carry)."""
    when = epoch_time(value)
    return when.isoformat() if when else None


def server_state(server: Mapping[str, Any] | None) -> str:
    """``running``, ``starting``, ``stopping`` or ``stopped`` from a hub server model."""
    if not server:
        return "stopped"
    pending = server.get("pending")
    if pending == "spawn":
        return "starting"
    if pending == "stop":
        return "stopping"
    return "running" if server.get("ready") else "stopped"


def environment_actions(row: Mapping[str, Any], shared: Sequence[str]) -> dict[str, Any]:
    """What the panel offers on a row, mirroring what the API allows for its access."""
    access = row["access"]
    acting = access in ACTING
    launch_snapshot = None
    if access == "lab":
        launch_snapshot = row.get("last_snapshot_id")
    elif access == "shared-restore" and shared:
        launch_snapshot = shared[0]
    return {
        "launch": acting,
        "launch_snapshot": launch_snapshot,
        "stop": acting and row["server_state"] in ("running", "starting"),
        "snapshot": acting and row["server_state"] == "running",
        "share": acting and bool(row.get("last_snapshot_id")),
    }


def can_reassign(caller: Caller, env: Mapping[str, Any]) -> bool:
    """Whether the caller may hand the environment to a successor (lab or hub admins)."""
    return caller.admin or (env["lab_id"] in caller.admin_labs and env["access"] != "own")


def visible_shares(session: Session, caller: Caller) -> list[dict[str, Any]]:
    """Active shares from or to the caller's labs (all for hub admins), newest first."""
    query = select(Share).where(Share.revoked_at.is_(None)).order_by(Share.id.desc())
    rows = []
    for share in session.scalars(query):
        if caller.admin or share.from_lab in caller.labs or share.to_lab in caller.labs:
            snap = session.get(Snapshot, share.snapshot_id)
            env = session.get(Environment, snap.environment_id) if snap else None
            access = registry.access_to(session, caller, env) if env else None
            rows.append(
                registry.share_json(share)
                | {
                    "environment_id": snap.environment_id if snap else None,
                    "can_revoke": access in ACTING,
                }
            )
    return rows


def shareable_snapshots(session: Session, caller: Caller) -> list[dict[str, Any]]:
    """Snapshots of environments the caller may act on (own, lab-admin, admin), newest first."""
    acting = {
        str(r["id"]): r
        for r in registry.list_environments(session, caller)
        if r["access"] in ACTING
    }
    if not acting:
        return []
    query = (
        select(Snapshot)
        .where(Snapshot.environment_id.in_(sorted(acting)))
        .order_by(Snapshot.timestamp.desc())
    )
    return [
        snapshot_json(s) | {"lab_id": acting[s.environment_id]["lab_id"]}
        for s in session.scalars(query)
    ]


def known_labs(session: Session) -> list[str]:
    """Every lab the registry knows (targets for a share)."""
    return list(session.scalars(select(Lab.id).order_by(Lab.id)))


def known_researchers(session: Session) -> list[str]:
    """Every researcher the registry knows (candidates for a successor)."""
    return list(session.scalars(select(Researcher.name).order_by(Researcher.name)))


@dataclass(frozen=True)
class AuditFilters:
    """The audit view's filters (empty: any)."""

    actor: str = ""
    action: str = ""
    outcome: str = ""
    lab: str = ""


def audit_view(
    session: Session, caller: Caller, filters: AuditFilters, limit: int = AUDIT_PAGE_SIZE
) -> dict[str, Any]:
    """The chain's verification and the newest matching entries (hub admins only)."""
    if not caller.admin:
        raise registry.Denied(f"{caller.name} is not a hub admin: the audit log is theirs")
    entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    ok, checked, problem = audit.verify_chain(entries, audit.chain_of(session))
    matching = [
        e
        for e in reversed(entries)
        if (not filters.actor or e.actor == filters.actor)
        and (not filters.action or e.action == filters.action)
        and (not filters.outcome or e.outcome == filters.outcome)
        and (not filters.lab or e.lab_id == filters.lab)
    ]
    return {
        "verified": ok,
        "checked": checked,
        "problem": None if ok else problem,
        "entries": [audit.to_json(e) for e in matching[:limit]],
        "matching": len(matching),
        "actions": sorted({e.action for e in entries}),
        "actors": sorted({e.actor for e in entries}),
        "labs": sorted({e.lab_id for e in entries if e.lab_id}),
    }


def predecessor_of(caller: Caller, package: dict[str, Any]) -> str | None:
    """Who handed the package's environment to the caller, if they hold it and may take it over.

    ``environments/take-over`` decides; this only offers the button.
    """
    if package["environment"]["researcher_id"] != caller.name or not package["snapshots"]:
        return None
    handed = [t for t in package.get("transfers") or [] if t.get("to") == caller.name]
    return str(handed[-1]["from"]) if handed else None
