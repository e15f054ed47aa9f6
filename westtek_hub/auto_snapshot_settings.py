"""Each lab's automatic-snapshot settings: ``GET|PUT api/labs/{lab}/auto-snapshots`` and its page.

The members of a lab read its settings (their servers' spawner asks with the server's
token, before each start); the lab's admins and the hub admins change them. What a lab
did not set is the default (``westtek_core.autosnapshot_settings.DEFAULTS``), so only what
was set is stored. A change is checked whole before anything is written, and audited with
the settings before and after. Servers take the settings at their next start: the spawner
passes them on as environment variables, which the server extension's traits default from.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import String, select
from sqlalchemy.orm import Session
from tornado import web

from westtek_core.autosnapshot_settings import (
    DEFAULTS,
    LIMITS,
    SETTINGS,
    checked_settings,
    effective,
)
from westtek_core.request_input import BadInput
from westtek_hub import audit, registry
from westtek_hub.api_base import APIHandler
from westtek_hub.models import Lab, LabAutoSnapshots, utcnow
from westtek_hub.panel import PanelHandler
from westtek_hub.registry import Caller
from westtek_hub.snapshot_records import iso

READ = "auto_snapshots.read"
UPDATE = "auto_snapshots.update"
LAB_ID_LENGTH = cast(String, Lab.__table__.c.id.type).length or 0
EDITORS = ("admin", "lab-admin")


def _lab(session: Session, caller: Caller, lab_id: str, configured: frozenset[str]) -> str:
    """``lab_id``, when the caller may read its settings: its members, its admins, hub admins.

    A hub admin names any lab the registry or the configuration knows; anyone else is
    refused (403, audited) for a lab they are not in, known or not.
    """
    if not lab_id or len(lab_id) > LAB_ID_LENGTH:
        raise registry.Invalid(f"a lab id is 1 to {LAB_ID_LENGTH} characters")
    if caller.role_in(lab_id) is None:
        raise registry.Denied(f"{caller.name} is not in lab {lab_id!r}", lab_id)
    known = lab_id in configured or lab_id in caller.labs | caller.admin_labs
    if not known and session.get(Lab, lab_id) is None:
        raise registry.NotFound(f"no lab {lab_id!r}", lab_id)
    return lab_id


def _stored(row: LabAutoSnapshots | None) -> dict[str, Any]:
    """What the lab set (its unset settings left out)."""
    if row is None:
        return {}
    return checked_settings({name: getattr(row, name) for name in SETTINGS})


def settings_json(lab_id: str, row: LabAutoSnapshots | None, editable: bool) -> dict[str, Any]:
    """A lab's settings on the wire: what it set, what its servers get, and the defaults."""
    own = _stored(row)
    return {
        "lab_id": lab_id,
        "settings": own,
        "effective": effective(own).to_json(),
        "defaults": DEFAULTS.to_json(),
        "updated_by": row.updated_by if row else None,
        "updated_at": iso(row.updated_at) if row else None,
        "editable": editable,
    }


def read_settings(
    session: Session, caller: Caller, lab_id: str, configured: frozenset[str]
) -> dict[str, Any]:
    """The lab's settings, for a member, a lab admin or a hub admin."""
    lab_id = _lab(session, caller, lab_id, configured)
    editable = caller.role_in(lab_id) in EDITORS
    return settings_json(lab_id, session.get(LabAutoSnapshots, lab_id), editable)


def write_settings(
    session: Session,
    caller: Caller,
    lab_id: str,
    body: dict[str, Any],
    configured: frozenset[str],
) -> dict[str, Any]:
    """Replace the lab's settings with ``body``'s (an absent or null setting: the default).

    Lab admins and hub admins only; the whole body is checked before anything is written.
    """
    lab_id = _lab(session, caller, lab_id, configured)
    if caller.role_in(lab_id) not in EDITORS:
        raise registry.Denied(
            f"{caller.name} is not an admin of lab {lab_id!r}: its admins set its automatic "
            "snapshots",
            lab_id,
        )
    try:
        new = checked_settings(body)
    except BadInput as e:
        raise registry.Invalid(str(e), lab_id) from None
    if session.get(Lab, lab_id) is None:
        session.add(Lab(id=lab_id))
        session.flush()
    row = session.get(LabAutoSnapshots, lab_id)
    old = _stored(row)
    if row is None:
        row = LabAutoSnapshots(lab_id=lab_id)
        session.add(row)
    for name in SETTINGS:
        setattr(row, name, new.get(name))
    row.updated_by, row.updated_at = caller.name, utcnow()
    session.flush()
    audit.append(session, caller.name, UPDATE, lab_id, lab_id=lab_id,
                 detail={"old": old, "new": new})  # fmt: skip
    return settings_json(lab_id, row, True)


def readable_labs(session: Session, caller: Caller, configured: frozenset[str]) -> list[str]:
    """The labs whose settings the caller sees: hub admins every known one, others theirs."""
    if caller.admin:
        return sorted(set(session.scalars(select(Lab.id))) | configured)
    return sorted(caller.labs | caller.admin_labs)


class AutoSnapshotSettingsHandler(APIHandler):
    """``GET|PUT labs/{lab}/auto-snapshots``: a lab's automatic-snapshot settings."""

    @property
    def configured_labs(self) -> frozenset[str]:
        """The labs the service's configuration names."""
        return self.registry.policy.named

    async def get(self, lab_id: str) -> None:
        """The lab's settings (its members, its admins, hub admins)."""
        caller = await self.caller()
        labs = self.configured_labs
        self.reply(self.run(caller, READ, lab_id, lambda s: read_settings(s, caller, lab_id, labs)))

    async def put(self, lab_id: str) -> None:
        """Replace them (its admins, hub admins); servers use them from their next start."""
        caller = await self.caller()
        body = self.body(caller, UPDATE)
        labs = self.configured_labs
        self.reply(
            self.run(
                caller, UPDATE, lab_id, lambda s: write_settings(s, caller, lab_id, body, labs)
            )
        )


class AutoSnapshotsPage(PanelHandler):
    """``/services/westtek/auto-snapshots``: each visible lab's settings, a form where editable."""

    async def get(self) -> None:
        """The page."""
        caller = await self.require_caller()
        configured = self.registry.policy.named

        def work(session: Session) -> list[dict[str, Any]]:
            return [
                read_settings(session, caller, lab, configured)
                for lab in readable_labs(session, caller, configured)
            ]

        labs = self.run(caller, "panel.auto_snapshots", "", work)
        await self.render_page(
            "westtek/auto-snapshots.html",
            caller,
            labs=labs,
            defaults=DEFAULTS,
            limits=LIMITS,
            active="auto-snapshots",
        )


def auto_snapshot_routes(prefix: str) -> list[tuple[str, type[web.RequestHandler]]]:
    """The settings' API route and panel page under the service prefix."""
    return [
        (rf"{prefix}/api/labs/(?P<lab_id>[^/]+)/auto-snapshots", AutoSnapshotSettingsHandler),
        (rf"{prefix}/auto-snapshots", AutoSnapshotsPage),
    ]
