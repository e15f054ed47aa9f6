"""The registry's rules: who sees and does what, and what each action records.

Plain functions over a SQLAlchemy session and a ``Caller`` (who is asking, from the hub's
user model), so every rule is testable without a server. Labs are JupyterHub groups:
``lab-<id>`` (or a name the configuration lists) makes a researcher of the lab, and the
group ``<group>-admins`` a lab admin; hub admins see everything. A denial raises
``Denied`` after nothing was changed; ``Registry.run`` then writes its audit entry.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from westtek_core.labs import LabPolicy, environment_id_of, in_namespace_of, namespace_owner
from westtek_core.request_input import MAX_INT
from westtek_core.snapshot.retention import RetentionPolicy, plan_retention
from westtek_core.wire import (
    MAX_ID,
    DriftEventReport,
    InvalidReport,
    ReportT,
    SnapshotReport,
    parse_report,
    readable_event,
)
from westtek_hub import audit
from westtek_hub.models import (
    DriftEvent,
    Environment,
    Lab,
    Researcher,
    Share,
    Snapshot,
    Transfer,
    utcnow,
)
from westtek_hub.snapshot_records import container_record, image_digest_at, snapshot_json

T = TypeVar("T")
PERMISSIONS = ("read", "restore")


class RegistryError(Exception):
    """A request the registry refuses; ``str()`` is the message for the person."""

    status = 400

    def __init__(self, message: str, lab_id: str | None = None) -> None:
        super().__init__(message)
        self.lab_id = lab_id


class Invalid(RegistryError):
    """Malformed or inconsistent input (400)."""


class Denied(RegistryError):
    """Not allowed for this caller (403, and an audit entry)."""

    status = 403


class NotFound(RegistryError):
    """No such environment, snapshot or share (404)."""

    status = 404


class Hidden(NotFound):
    """Exists, but not for this caller: answered as missing, audited as denied.

    The same 404 and message as :class:`NotFound`, so nobody learns another lab's ids or
    owners by probing.
    """


class TooLarge(RegistryError):
    """A body over the size limit (413)."""

    status = 413


class OverQuota(RegistryError):
    """The lab's quota would be exceeded (403); nothing was started."""

    status = 403


class RateLimited(RegistryError):
    """Too many requests this minute (429)."""

    status = 429


class StoreUnavailable(RegistryError):
    """A lab's snapshot store could not be read or written (502); nothing was started."""

    status = 502


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
                    "timestamp": _iso(snap.timestamp),
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


def refuse(error: RegistryError) -> Any:
    """Raise ``error`` (for ``Registry.run`` to audit a refusal found outside the registry)."""
    raise error


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


# -- views -------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return aware.isoformat()


def environment_json(env: Environment, access: str) -> dict[str, Any]:
    """The design document's Environment, plus how the caller may reach it."""
    return {
        "id": env.id,
        "lab_id": env.lab_id,
        "researcher_id": env.researcher_id,
        "name": env.name or env.id,
        "created_at": _iso(env.created_at),
        "last_snapshot": _iso(env.last_snapshot),
        "last_snapshot_id": env.last_snapshot_id,
        "drift_status": env.drift_status,
        "configuration_hash": env.configuration_hash,
        "container_info": env.container_info or {},
        "metadata": env.env_metadata or {},
        "access": access,
    }


def shared_environment_json(
    env: Environment, access: str, shared: Iterable[Snapshot]
) -> dict[str, Any]:
    """What a share shows of an environment: whose it is, and the shared snapshots.

    Nothing of its live state or history: drift, installs, other snapshots, where it runs.
    """
    snaps = sorted(shared, key=lambda snap: _iso(snap.timestamp) or "")
    newest = snaps[-1] if snaps else None
    return environment_json(env, access) | {
        "last_snapshot": _iso(newest.timestamp) if newest else None,
        "last_snapshot_id": newest.id if newest else None,
        "drift_status": None,
        "configuration_hash": newest.checksum if newest else None,
        "container_info": {},
        "metadata": {},
        "shared_snapshots": [snapshot_json(snap) for snap in snaps],
    }


# -- access ------------------------------------------------------------------------------


def _active_shares(session: Session, labs: Iterable[str]) -> list[Share]:
    return list(
        session.scalars(
            select(Share).where(Share.to_lab.in_(list(labs)), Share.revoked_at.is_(None))
        )
    )


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


# -- what single-user servers report ---------------------------------------------------


def _checked_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID:
        raise Invalid(f"'{what}' must be a non-empty string of at most {MAX_ID} characters")
    return value


def _reporting_lab(caller: Caller, claimed: Any) -> str:
    if claimed is not None:
        lab = _checked_id(claimed, "lab_id")
        if lab not in caller.labs and not caller.admin:
            raise Denied(f"{caller.name} is not in lab {lab!r}", lab)
        return lab
    if len(caller.labs) == 1:
        return next(iter(caller.labs))
    if not caller.labs:
        raise Denied(f"{caller.name} is in no lab: an admin must add them to one")
    raise Invalid(f"{caller.name} is in several labs: say which one with 'lab_id'")


def _ensure(session: Session, model: type[Any], key: str) -> None:
    if session.get(model, key) is None:
        session.add(model(**{"id" if model is Lab else "name": key}))
        session.flush()


def reporting_environment(session: Session, caller: Caller, body: Mapping[str, Any]) -> Environment:
    """The environment a server reports for, registered on first report.

    Only its owner's server (or a hub admin) registers or reports for an id: ids are
    namespaced by owner (``labs.environment_id_of``), so nobody can claim another's first.
    """
    env_id = _checked_id(body.get("environment_id"), "environment_id")
    env = session.get(Environment, env_id)
    if env is not None and env.researcher_id != caller.name and not caller.admin:
        if not in_namespace_of(caller.name, env_id) or _handed_over(session, env):
            raise Denied(f"environment {env_id!r} is not {caller.name}'s", env.lab_id)
        _move_aside(session, caller, env)
        env = None
    if env is not None:
        if body.get("lab_id") is not None and body["lab_id"] != env.lab_id:
            raise Denied(f"environment {env_id!r} is in lab {env.lab_id}", env.lab_id)
        return env
    owner = namespace_owner(env_id) if caller.admin else caller.name
    if not in_namespace_of(owner, env_id):
        raise Denied(
            f"environment id {env_id!r} is {namespace_owner(env_id)}'s, not {caller.name}'s: "
            f"a server reports as {caller.name!r} or "
            f"{environment_id_of(caller.name, '<server name>')!r}"
        )
    lab = _reporting_lab(caller, body.get("lab_id"))
    _ensure(session, Lab, lab)
    _ensure(session, Researcher, owner)
    env = Environment(id=env_id, lab_id=lab, researcher_id=owner, name=env_id)
    session.add(env)
    session.flush()
    audit.append(session, caller.name, "environment.register", env_id, lab_id=lab)
    return env


def _handed_over(session: Session, env: Environment) -> bool:
    """Whether the environment's holder got it from a reassignment (not by claiming it)."""
    query = select(Transfer.id).where(
        Transfer.environment_id == env.id, Transfer.to_researcher == env.researcher_id
    )
    return session.scalar(query.limit(1)) is not None


def _move_aside(session: Session, caller: Caller, env: Environment) -> None:
    """Move an environment claimed in the caller's namespace to its holder's namespace.

    Only ids claimed before they were namespaced get here; the snapshots, events and
    transfers move with it, and the id is free for the caller.
    """
    new_id = environment_id_of(env.researcher_id, env.id)
    if session.get(Environment, new_id) is not None:
        raise Denied(
            f"environment {env.id!r} is held by {env.researcher_id} and {new_id!r} exists: "
            "a hub admin must reassign it",
            env.lab_id,
        )
    columns = {c.key: getattr(env, c.key) for c in Environment.__mapper__.column_attrs}
    session.add(Environment(**columns | {"id": new_id, "name": new_id}))
    session.flush()
    for model in (Snapshot, DriftEvent, Transfer):
        session.execute(
            update(model).where(model.environment_id == env.id).values(environment_id=new_id)
        )
    session.delete(env)
    session.flush()
    audit.append(
        session,
        caller.name,
        "environment.reclaim",
        env.id,
        lab_id=env.lab_id,
        detail={"holder": env.researcher_id, "moved_to": new_id},
    )


def event_key(body: Mapping[str, Any]) -> str:
    """A server's event id, or the content's hash when it sends none."""
    if body.get("id") is not None:
        return str(body["id"])[:64]
    canonical = json.dumps(body, sort_keys=True, default=str).encode()
    return hashlib.sha256(canonical).hexdigest()


def _parsed(model: type[ReportT], body: Mapping[str, Any]) -> ReportT:
    """A server's report in the shape both ends share (westtek_core.wire), or 400."""
    try:
        return parse_report(model, body)
    except InvalidReport as exc:
        raise Invalid(str(exc)) from None


def record_event(session: Session, caller: Caller, body: Mapping[str, Any]) -> bool:
    """Store a forwarded drift event once; the environment takes its status."""
    report = _parsed(DriftEventReport, body)
    env = reporting_environment(session, caller, body)
    key = event_key(body)
    exists = session.scalar(
        select(DriftEvent.id).where(
            DriftEvent.environment_id == env.id,
            DriftEvent.reported_by == caller.name,
            DriftEvent.event_key == key,
        )
    )
    if exists is not None:
        return False
    session.add(
        DriftEvent(
            environment_id=env.id,
            reported_by=caller.name,
            event_key=key,
            time=float(report.time),
            status=report.status.value,
            body=dict(body),
        )
    )
    latest = session.scalar(
        select(func.max(DriftEvent.time)).where(DriftEvent.environment_id == env.id)
    )
    if latest is None or float(report.time) >= latest:
        env.drift_status = report.status.value
    try:
        session.flush()
    except IntegrityError:  # the same event from a concurrent retry
        session.rollback()
        return False
    return True


def list_events(
    session: Session, caller: Caller, environment_id: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Drift events the caller may see, oldest first (at most ``limit``)."""
    query = (
        select(DriftEvent)
        .join(Environment, Environment.id == DriftEvent.environment_id)
        .order_by(DriftEvent.time, DriftEvent.id)
        .limit(limit)
    )
    if environment_id:
        get_environment(session, caller, environment_id, history=True)
        query = query.where(DriftEvent.environment_id == environment_id)
    else:
        query = query.where(visibility(session, caller, shared_too=False)[0])
    return [
        readable_event(event.body, event.time, event.status)
        | {"reported_by": event.reported_by, "risk_assessment": event.risk_assessment}
        for event in session.scalars(query)
    ]


def _parse_time(value: Any) -> datetime:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise Invalid(f"'timestamp' {value!r} is not an ISO 8601 time") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise Invalid("'timestamp' must be an ISO 8601 time or epoch seconds")


def record_snapshot(session: Session, caller: Caller, body: Mapping[str, Any]) -> bool:
    """Store a snapshot's metadata once; the environment's last snapshot follows it."""
    report = _parsed(SnapshotReport, body)
    env = reporting_environment(session, caller, body)
    snap_id = report.id
    existing = session.get(Snapshot, snap_id)
    if existing is not None:
        if existing.environment_id != env.id:
            raise Denied(f"snapshot {snap_id[:12]} belongs to another environment", env.lab_id)
        return False
    metadata = dict(report.metadata)
    size = report.size_bytes
    when = _parse_time(report.timestamp)
    session.add(
        Snapshot(
            id=snap_id,
            environment_id=env.id,
            created_by=(report.created_by or caller.name)[:MAX_ID],
            timestamp=when,
            s3_location=report.s3_location,
            size_bytes=size,
            checksum=report.checksum,
            container_image=report.container_image,
            image_digest=image_digest_at(env, when),
            efs_snapshot_id=report.efs_snapshot_id,
            ebs_snapshot_id=report.ebs_snapshot_id,
            snap_metadata=metadata,
        )
    )
    last = env.last_snapshot
    if last is None or when >= (last if last.tzinfo else last.replace(tzinfo=timezone.utc)):
        env.last_snapshot, env.last_snapshot_id = when, snap_id
        env.configuration_hash = body.get("checksum") or env.configuration_hash
        packages = metadata.get("installed_packages")
        if isinstance(packages, list):
            env.env_metadata = dict(env.env_metadata or {}) | {"jupyter_packages": packages}
    session.flush()
    audit.append(
        session,
        caller.name,
        "snapshot.report",
        snap_id,
        lab_id=env.lab_id,
        detail={"environment_id": env.id},
    )
    return True


def record_container(
    session: Session, caller: Caller, env_id: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    """The spawner's report of where the environment's server runs."""
    info = body.get("container_info")
    if not isinstance(info, dict):
        raise Invalid("'container_info' must be an object")
    digest = body.get("image_digest")
    if digest is not None and (not isinstance(digest, str) or len(digest) > MAX_ID):
        raise Invalid(f"'image_digest' must be a string of at most {MAX_ID} characters")
    env = reporting_environment(session, caller, {**body, "environment_id": env_id})
    env.container_info = container_record(info, digest or "", utcnow())
    audit.append(
        session,
        caller.name,
        "environment.container",
        env.id,
        lab_id=env.lab_id,
        detail={"container_info": env.container_info},
    )
    return environment_json(env, "own")


# -- sharing and succession -------------------------------------------------------------


def share_snapshot(
    session: Session,
    caller: Caller,
    snapshot_id: str,
    to_lab: str,
    permission: str,
    configured_labs: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Share a snapshot with another lab (``read`` or ``restore``).

    The lab must exist: one the registry knows, or one the configuration names. A typo
    must not create a lab that whoever later gets that group would inherit the share of.
    """
    if permission not in PERMISSIONS:
        raise Invalid(f"'permission' must be one of {', '.join(PERMISSIONS)}")
    to_lab = _checked_id(to_lab, "to_lab")
    snap = session.get(Snapshot, _checked_id(snapshot_id, "snapshot_id"))
    missing = f"no snapshot {snapshot_id!r}"
    if snap is None:
        raise NotFound(missing)
    env, access = get_environment(session, caller, snap.environment_id, missing=missing)
    if access not in ("own", "lab-admin", "admin"):
        raise Denied(f"{caller.name} may not share lab {env.lab_id}'s snapshots", env.lab_id)
    if to_lab == env.lab_id:
        raise Invalid(f"snapshot {snapshot_id[:12]} is already lab {to_lab}'s")
    if session.get(Lab, to_lab) is None:
        if to_lab not in configured_labs:
            raise NotFound(f"no lab {to_lab!r}: share with a lab the hub knows", env.lab_id)
        _ensure(session, Lab, to_lab)
    share = Share(
        snapshot_id=snap.id,
        from_lab=env.lab_id,
        to_lab=to_lab,
        permission=permission,
        created_by=caller.name,
    )
    session.add(share)
    session.flush()
    detail = {"to_lab": to_lab, "permission": permission, "share": share.id}
    audit.append(session, caller.name, "share.create", snap.id, lab_id=env.lab_id, detail=detail)
    return share_json(share)


def share_json(share: Share) -> dict[str, Any]:
    """A share's wire form."""
    return {
        "id": share.id,
        "snapshot_id": share.snapshot_id,
        "from_lab": share.from_lab,
        "to_lab": share.to_lab,
        "permission": share.permission,
        "created_by": share.created_by,
        "created_at": _iso(share.created_at),
        "revoked_at": _iso(share.revoked_at),
        "copy_id": share.copy_id,
        "copy_removed_at": _iso(share.copy_removed_at),
    }


def list_shares(session: Session, caller: Caller) -> list[dict[str, Any]]:
    """Shares from or to the caller's labs (all for hub admins) that are not done with.

    The active ones, and the revoked ones whose copy is still in the recipient lab's store
    (revoking again retries removing it).
    """
    unfinished = Share.revoked_at.is_(None) | (
        Share.copy_id.is_not(None) & Share.copy_removed_at.is_(None)
    )
    query = select(Share).where(unfinished).order_by(Share.id)
    if not caller.admin:
        labs = list(caller.labs)
        query = query.where(Share.from_lab.in_(labs) | Share.to_lab.in_(labs))
    return [share_json(share) for share in session.scalars(query)]


def _copy_left(session: Session, share: Share, env: Environment) -> tuple[str, str] | None:
    """``(copy id, lab)`` of the copy revoking a share leaves in the recipient lab's store.

    None when there is none, or another active restore share still covers it: that share
    then holds the copy, to remove when it is revoked in turn.
    """
    if share.copy_id is None or share.copy_removed_at is not None or env.lab_id == share.to_lab:
        return None  # never copied, already removed, or the environment moved to that lab
    still_shared = session.scalars(
        select(Share).where(
            Share.id != share.id,
            Share.snapshot_id == share.snapshot_id,
            Share.to_lab == share.to_lab,
            Share.permission == "restore",
            Share.revoked_at.is_(None),
        )
    ).all()
    for other in still_shared:
        other.copy_id, other.copy_removed_at = share.copy_id, None
    return None if still_shared else (share.copy_id, share.to_lab)


def revoke_share(
    session: Session, caller: Caller, share_id: int
) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """Revoke a share (its lab's admins, the snapshot's owner, hub admins).

    Returns the share and the copy ``(id, lab)`` the caller must then remove from the
    recipient lab's store (see ``record_copy_removed``). A revoked share whose copy is still
    there may be revoked again, to retry removing it.
    """
    share = session.get(Share, share_id) if share_id <= MAX_INT else None
    snap = session.get(Snapshot, share.snapshot_id) if share is not None else None
    if share is None or snap is None:
        raise NotFound(f"no active share {share_id}")
    missing = f"no active share {share_id}"
    env, _ = get_environment(session, caller, snap.environment_id, act=True, missing=missing)
    if share.revoked_at is not None and (share.copy_id is None or share.copy_removed_at):
        raise NotFound(f"no active share {share_id}")
    left = _copy_left(session, share, env)
    if share.revoked_at is None:
        share.revoked_at = datetime.now(timezone.utc)
        audit.append(
            session, caller.name, "share.revoke", share.snapshot_id, lab_id=share.from_lab,
            detail={"share": share.id, "to_lab": share.to_lab, "copy_to_remove": left},
        )  # fmt: skip
    return share_json(share), left


def record_copy_removed(session: Session, caller: Caller, share_id: int) -> dict[str, Any]:
    """Record that a revoked share's copy is gone from the recipient lab's store.

    Every share that held that copy (one revoked earlier left it to this one) says so.
    """
    share = session.get(Share, share_id)
    assert share is not None and share.copy_id is not None  # found by revoke_share
    session.execute(
        update(Share)
        .where(
            Share.copy_id == share.copy_id,
            Share.to_lab == share.to_lab,
            Share.copy_removed_at.is_(None),
        )
        .values(copy_removed_at=datetime.now(timezone.utc))
    )
    detail = {"share": share.id, "copy": share.copy_id}
    audit.append(
        session, caller.name, "share.copy_remove", share.snapshot_id, lab_id=share.to_lab,
        detail=detail,
    )  # fmt: skip
    return share_json(share)


def record_copy(session: Session, snapshot_id: str, to_lab: str, copy_id: str) -> None:
    """Note on the active restore shares of a snapshot with a lab the copy a launch made."""
    shares = session.scalars(
        select(Share).where(
            Share.snapshot_id == snapshot_id,
            Share.to_lab == to_lab,
            Share.permission == "restore",
            Share.revoked_at.is_(None),
        )
    )
    for share in shares:
        share.copy_id, share.copy_removed_at = copy_id, None


def restorable_snapshot(session: Session, caller: Caller, snapshot_id: str) -> Snapshot:
    """A snapshot the caller may start a server from (own lab, or shared with ``restore``)."""
    snap = session.get(Snapshot, snapshot_id)
    missing = f"no snapshot {snapshot_id!r}"
    if snap is None:
        raise NotFound(missing)
    env, access = get_environment(session, caller, snap.environment_id, missing=missing)
    if access == "shared-read" or (
        access == "shared-restore"
        and not any(
            s.snapshot_id == snap.id and s.permission == "restore"
            for s in _active_shares(session, caller.labs)
        )
    ):
        raise Denied(
            f"snapshot {snapshot_id[:12]} is shared with {caller.name}'s lab read-only", env.lab_id
        )
    return snap


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
        + (f" {latest.id[:12]} ({_iso(latest.timestamp)})" if latest else " (none yet: take one)"),
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
                "at": _iso(t.created_at),
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
    successor = _checked_id(successor, "to_researcher")
    if access == "own":
        raise Denied(
            f"{caller.name} may not reassign their own environment: ask a lab admin", env.lab_id
        )
    if successor == env.researcher_id:
        raise Invalid(f"{successor} already holds environment {env_id!r}")
    to_lab = successor_lab(env, caller, successor, successor_labs)
    _ensure(session, Researcher, successor)
    _ensure(session, Lab, to_lab)
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


# -- running operations with their audit -----------------------------------------------


@dataclass
class Registry:
    """Run registry operations in a transaction; a refusal still writes its audit entry."""

    sessions: sessionmaker[Session]
    policy: LabPolicy = field(default_factory=LabPolicy)
    quotas: Mapping[str, Quota] = field(default_factory=dict)
    default_quota: Quota = field(default_factory=Quota)

    rate: RateLimiter = field(default_factory=RateLimiter)
    retention: RetentionPolicy = field(
        default_factory=lambda: RetentionPolicy(
            keep_last=10, keep_daily=7, keep_weekly=8, keep_monthly=12
        )
    )

    def quota(self, lab: str) -> Quota:
        """A lab's quota (the default when it has none of its own)."""
        return self.quotas.get(lab, self.default_quota)

    def check_rate(self, caller: Caller) -> None:
        """Refuse (429, audited) a caller over their labs' API rate; hub admins are not limited."""
        if caller.admin:
            return
        limits = [self.quota(lab).requests_per_minute for lab in caller.labs] or [
            self.default_quota.requests_per_minute
        ]
        limit = 0 if 0 in limits else max(limits)
        if not self.rate.allow(caller.name, limit):
            error = RateLimited(
                f"{caller.name} is over the API rate of {limit} requests a minute: slow down"
            )
            self.run(caller, "api.rate", "", lambda _: refuse(error))

    def run(self, caller: Caller, action: str, target: str, work: Callable[[Session], T]) -> T:
        """``work`` in one transaction; a ``RegistryError`` rolls it back and is audited."""
        with self.sessions() as session:
            try:
                result = work(session)
                session.commit()
                return result
            except RegistryError as e:
                session.rollback()
                refused = "denied" if e.status == 403 or isinstance(e, Hidden) else "refused"
                audit.append(
                    session,
                    caller.name,
                    action,
                    target,
                    lab_id=e.lab_id,
                    outcome=refused,
                    detail={"reason": str(e), "status": e.status},
                )
                session.commit()
                raise
