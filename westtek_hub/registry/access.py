"""Who is asking, and what they may see and do: lab isolation and shares' reach."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import Session

from westtek_core.labs import LabPolicy
from westtek_hub.models import Environment, Share, Snapshot
from westtek_hub.registry.errors import Denied, Hidden, NotFound
from westtek_hub.registry.views import environment_json, shared_environment_json


@dataclass(frozen=True)
class Caller:
    """Who is asking: a hub user, their labs and the labs they administer."""

    name: str
    admin: bool = False
    labs: frozenset[str] = frozenset()
    admin_labs: frozenset[str] = frozenset()

    @classmethod
    def from_model(cls, model: Mapping[str, Any], policy: LabPolicy) -> Caller:
        """From JupyterHub's user model (``name``, ``admin``, ``groups``).

        A hub admin is in the hub admins' group; a JupyterHub admin (IT's break-glass
        account) is one too.
        """
        groups = [str(g) for g in model.get("groups") or []]
        labs, admin_labs = policy.labs_of(groups)
        admin = bool(model.get("admin")) or policy.is_hub_admin(groups)
        return cls(str(model["name"]), admin, labs, admin_labs)

    def role_in(self, lab_id: str) -> str | None:
        """``admin``, ``lab-admin``, ``researcher`` or None for a lab."""
        if self.admin:
            return "admin"
        if lab_id in self.admin_labs:
            return "lab-admin"
        return "researcher" if lab_id in self.labs else None


def access_to(session: Session, caller: Caller, env: Environment) -> str | None:
    """How the caller reaches an environment: own, lab, lab-admin, admin, shared-*, or None."""
    if caller.admin:
        return "admin"
    if env.researcher_id == caller.name and env.lab_id in caller.labs:
        return "own"
    role = caller.role_in(env.lab_id)
    if role:
        return "lab-admin" if role == "lab-admin" else "lab"
    shared = list(
        session.scalars(
            select(Share.permission)
            .join(Snapshot, Snapshot.id == Share.snapshot_id)
            .where(
                Snapshot.environment_id == env.id,
                Share.to_lab.in_(list(caller.labs)),
                Share.revoked_at.is_(None),
            )
        )
    )
    if shared:
        return "shared-restore" if "restore" in shared else "shared-read"
    return None


def get_environment(
    session: Session,
    caller: Caller,
    env_id: str,
    *,
    act: bool = False,
    history: bool = False,
    missing: str | None = None,
) -> tuple[Environment, str]:
    """The environment and the caller's access.

    ``act`` needs own, lab-admin or admin access; ``history`` (drift, installs, every
    snapshot) needs the lab's: a share is not enough. An environment the caller may not
    see at all is answered as missing (``missing``, by default "no environment …").
    """
    env = session.get(Environment, env_id)
    missing = missing or f"no environment {env_id!r}"
    if env is None:
        raise NotFound(missing)
    access = access_to(session, caller, env)
    if access is None:
        raise Hidden(missing, env.lab_id)
    if act and access not in ("own", "lab-admin", "admin"):
        raise Denied(f"{caller.name} may not act on environment {env_id!r}", env.lab_id)
    if history and access.startswith("shared-"):
        raise Denied(
            f"{caller.name}'s lab was shared snapshots of environment {env_id!r}, not its history",
            env.lab_id,
        )
    return env, access


def _shared_snapshots(session: Session, caller: Caller) -> dict[str, list[tuple[Snapshot, str]]]:
    """Environment id → (snapshot, permission) of the caller's labs' active shares."""
    shared: dict[str, list[tuple[Snapshot, str]]] = {}
    rows = session.execute(
        select(Snapshot, Share.permission)
        .join(Share, Share.snapshot_id == Snapshot.id)
        .where(Share.to_lab.in_(list(caller.labs)), Share.revoked_at.is_(None))
    )
    for snap, permission in rows:
        shared.setdefault(snap.environment_id, []).append((snap, permission))
    return shared


def shared_with(session: Session, caller: Caller) -> dict[str, set[str]]:
    """Lab → ids of its snapshots actively shared with one of the caller's labs."""
    rows = session.execute(
        select(Share.from_lab, Share.snapshot_id).where(
            Share.to_lab.in_(list(caller.labs)), Share.revoked_at.is_(None)
        )
    )
    shared: dict[str, set[str]] = {}
    for lab, snapshot_id in rows:
        if lab not in caller.labs:
            shared.setdefault(lab, set()).add(snapshot_id)
    return shared


def _shared_access(session: Session, caller: Caller) -> dict[str, str]:
    """Environment id → shared-read/shared-restore for the caller's labs' active shares."""
    return {
        env_id: f"shared-{'restore' if any(p == 'restore' for _, p in found) else 'read'}"
        for env_id, found in _shared_snapshots(session, caller).items()
    }


def visibility(
    session: Session, caller: Caller, *, shared_too: bool = True
) -> tuple[ColumnElement[bool], Callable[[Environment], str]]:
    """A condition on ``Environment`` for what the caller may see, and the access to each one.

    One query for the caller's shares, however many rows the condition then filters. Drift
    events and install history ask without ``shared_too``: a share covers snapshots only.
    """
    if caller.admin:
        return true(), lambda _env: "admin"
    shared = _shared_access(session, caller) if shared_too else {}

    def access(env: Environment) -> str:
        if env.researcher_id == caller.name and env.lab_id in caller.labs:
            return "own"
        if env.lab_id in caller.labs:
            return "lab-admin" if env.lab_id in caller.admin_labs else "lab"
        return shared[env.id]

    return Environment.lab_id.in_(list(caller.labs)) | Environment.id.in_(list(shared)), access


def list_environments(
    session: Session, caller: Caller, lab: str | None = None, drift: str | None = None
) -> list[dict[str, Any]]:
    """The environments the caller may see, filtered by lab and drift status (three queries).

    A shared environment shows only its shared snapshots, and no drift status to filter by.
    """
    query = select(Environment).order_by(Environment.lab_id, Environment.id)
    if lab:
        query = query.where(Environment.lab_id == lab)
    visible, access = visibility(session, caller, shared_too=not drift)
    if drift:
        query = query.where(Environment.drift_status == drift)
    shared = {} if caller.admin or drift else _shared_snapshots(session, caller)
    rows = []
    for env in session.scalars(query.where(visible)):
        how = access(env)
        if how.startswith("shared-"):
            rows.append(shared_environment_json(env, how, [snap for snap, _ in shared[env.id]]))
        else:
            rows.append(environment_json(env, how))
    return rows
