"""Succession: a successor's transfer package, reassignment, and a lab's memory of installs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from westtek_core.wire import readable_event
from westtek_hub import audit
from westtek_hub.models import DriftEvent, Environment, Lab, Researcher, Snapshot, Transfer
from westtek_hub.registry.access import Caller, get_environment
from westtek_hub.registry.errors import Denied, Invalid, checked_id
from westtek_hub.registry.reports import ensure, list_events
from westtek_hub.registry.views import environment_json, iso
from westtek_hub.snapshot_records import snapshot_json


def install_history(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every package change of drift events (as ``list_events`` shows them), oldest first."""
    return [
        {
            "time": e["time"],
            "environment_id": e.get("environment_id"),
            "package": c.get("name"),
            "change": c.get("change"),
            "before": c.get("before"),
            "after": c.get("after"),
        }
        for e in events
        for c in e.get("changes", [])
        if c.get("kind") == "package"
    ]


def environment_history(session: Session, env_id: str) -> list[dict[str, Any]]:
    """An environment's install history, for its lab's memory (no caller: the service's)."""
    query = select(DriftEvent).where(DriftEvent.environment_id == env_id)
    events = session.scalars(query.order_by(DriftEvent.time, DriftEvent.id))
    rows = install_history(readable_event(e.body, e.time, e.status) for e in events)
    return [row for row in rows if row["time"] is not None]  # a line of history needs a time


def memory_backlog(session: Session) -> list[tuple[str, str, str, str]]:
    """(lab, snapshot, environment, who took it) of every registered snapshot, oldest first."""
    query = (
        select(Environment.lab_id, Snapshot.id, Environment.id, Snapshot.created_by)
        .join(Environment, Environment.id == Snapshot.environment_id)
        .order_by(Snapshot.timestamp, Snapshot.id)
    )
    return [(lab, sid, env, who or env) for lab, sid, env, who in session.execute(query)]


def snapshot_origin(session: Session, snapshot_id: str) -> tuple[str, str, str] | None:
    """(lab, environment, who took it) of a registered snapshot."""
    snap = session.get(Snapshot, snapshot_id)
    env = session.get(Environment, snap.environment_id) if snap is not None else None
    if snap is None or env is None:
        return None
    return env.lab_id, env.id, snap.created_by or env.researcher_id


def transfer_package(session: Session, caller: Caller, env_id: str) -> dict[str, Any]:
    """Everything a successor needs: summary, snapshots, drift, installs, checklist."""
    env, access = get_environment(session, caller, env_id, history=True)
    snaps = list(
        session.scalars(
            select(Snapshot).where(Snapshot.environment_id == env.id).order_by(Snapshot.timestamp)
        )
    )
    events = list_events(session, caller, env.id)
    installs = install_history(events)
    latest = snaps[-1] if snaps else None
    notebooks = (latest.snap_metadata or {}).get("notebooks", []) if latest else []
    checklist = [
        f"Open environment {env.id} (lab {env.lab_id}) and read its latest snapshot"
        + (f" {latest.id[:12]} ({iso(latest.timestamp)})" if latest else " (none yet: take one)"),
        f"Review the {sum(1 for e in events if e['status'] == 'CRITICAL_DRIFT')} critical drift "
        "events and whether each was accepted or rolled back",
        "Re-run each notebook against the latest snapshot's kernel and compare outputs",
        "Ask the Knowledge Transfer agent why each pinned package is pinned",
        "Take a snapshot under your name once the environment reproduces",
    ]
    transfers = session.scalars(select(Transfer).where(Transfer.environment_id == env.id))
    return {
        "environment": environment_json(env, access),
        "summary": (
            f"Environment {env.id} of {env.researcher_id} in lab {env.lab_id}: "
            f"{len(snaps)} snapshot{'' if len(snaps) == 1 else 's'}, {len(events)} drift "
            f"event{'' if len(events) == 1 else 's'}, now {env.drift_status}."
        ),
        "snapshots": [snapshot_json(s) for s in snaps],
        "drift_history": events,
        "install_history": installs,
        "notebooks": notebooks,
        "transfers": [
            {
                "from": t.from_researcher,
                "to": t.to_researcher,
                "by": t.by,
                "from_lab": t.from_lab,
                "to_lab": t.to_lab,
                "at": iso(t.created_at),
            }
            for t in transfers
        ],
        "onboarding_checklist": checklist,
    }


def successor_lab(
    env: Environment, caller: Caller, successor: str, successor_labs: frozenset[str]
) -> str:
    """The lab an environment moves to with its successor (its own, if the successor is in it)."""
    if env.lab_id in successor_labs:
        return env.lab_id
    if caller.admin and len(successor_labs) == 1:
        return next(iter(successor_labs))  # a hub admin moves it to the successor's lab
    if caller.admin and not successor_labs:
        raise Invalid(f"{successor} is in no lab: add them to one first")
    raise Denied(f"{successor} is not in lab {env.lab_id}", env.lab_id)


def reassign(
    session: Session,
    caller: Caller,
    env_id: str,
    successor: str,
    successor_labs: frozenset[str],
) -> dict[str, Any]:
    """Hand an environment to a successor (lab admins within their lab, hub admins anywhere)."""
    env, access = get_environment(session, caller, env_id, act=True)
    successor = checked_id(successor, "to_researcher")
    if access == "own":
        raise Denied(
            f"{caller.name} may not reassign their own environment: ask a lab admin", env.lab_id
        )
    if successor == env.researcher_id:
        raise Invalid(f"{successor} already holds environment {env_id!r}")
    to_lab = successor_lab(env, caller, successor, successor_labs)
    ensure(session, Researcher, successor)
    ensure(session, Lab, to_lab)
    transfer = Transfer(
        environment_id=env.id,
        from_researcher=env.researcher_id,
        to_researcher=successor,
        from_lab=env.lab_id,
        to_lab=to_lab,
        by=caller.name,
    )
    session.add(transfer)
    audit.append(
        session,
        caller.name,
        "environment.reassign",
        env.id,
        lab_id=env.lab_id,
        detail={"from": env.researcher_id, "to": successor, "to_lab": to_lab},
    )
    env.researcher_id, env.lab_id = successor, to_lab
    session.flush()
    return environment_json(env, access)
