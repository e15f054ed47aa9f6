"""Sharing snapshots between labs: shares, their revocation, and the copies they leave."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from westtek_core.request_input import MAX_INT
from westtek_hub import audit
from westtek_hub.models import Environment, Lab, Share, Snapshot
from westtek_hub.registry.access import Caller, get_environment
from westtek_hub.registry.errors import Denied, Invalid, NotFound, checked_id
from westtek_hub.registry.reports import ensure
from westtek_hub.registry.views import iso

PERMISSIONS = ("read", "restore")


def _active_shares(session: Session, labs: Iterable[str]) -> list[Share]:
    return list(
        session.scalars(
            select(Share).where(Share.to_lab.in_(list(labs)), Share.revoked_at.is_(None))
        )
    )


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
    to_lab = checked_id(to_lab, "to_lab")
    snap = session.get(Snapshot, checked_id(snapshot_id, "snapshot_id"))
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
        ensure(session, Lab, to_lab)
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
        "created_at": iso(share.created_at),
        "revoked_at": iso(share.revoked_at),
        "copy_id": share.copy_id,
        "copy_removed_at": iso(share.copy_removed_at),
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
