"""What single-user servers and spawners report: environments, drift events, snapshots."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from westtek_core.labs import environment_id_of, in_namespace_of, namespace_owner
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
from westtek_hub.models import DriftEvent, Environment, Lab, Researcher, Snapshot, Transfer, utcnow
from westtek_hub.registry.access import Caller, get_environment, visibility
from westtek_hub.registry.errors import Denied, Invalid, checked_id
from westtek_hub.registry.views import environment_json
from westtek_hub.snapshot_records import container_record, image_digest_at


def _reporting_lab(caller: Caller, claimed: Any) -> str:
    if claimed is not None:
        lab = checked_id(claimed, "lab_id")
        if lab not in caller.labs and not caller.admin:
            raise Denied(f"{caller.name} is not in lab {lab!r}", lab)
        return lab
    if len(caller.labs) == 1:
        return next(iter(caller.labs))
    if not caller.labs:
        raise Denied(f"{caller.name} is in no lab: an admin must add them to one")
    raise Invalid(f"{caller.name} is in several labs: say which one with 'lab_id'")


def ensure(session: Session, model: type[Any], key: str) -> None:
    """Register a lab or researcher the registry sees for the first time."""
    if session.get(model, key) is None:
        session.add(model(**{"id" if model is Lab else "name": key}))
        session.flush()


def reporting_environment(session: Session, caller: Caller, body: Mapping[str, Any]) -> Environment:
    """The environment a server reports for, registered on first report.

    Only its owner's server (or a hub admin) registers or reports for an id: ids are
    namespaced by owner (``labs.environment_id_of``), so nobody can claim another's first.
    """
    env_id = checked_id(body.get("environment_id"), "environment_id")
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
    ensure(session, Lab, lab)
    ensure(session, Researcher, owner)
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
