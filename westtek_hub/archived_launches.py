"""Launches from a shared snapshot whose packs are in archive storage: asked back, then started.

A year on, the lifecycle has moved a lab store's packs to S3 Glacier Deep Archive
(infra/lib/storage-stack.ts). A launch from another lab's shared snapshot copies it into the
caller's lab's store first, and archived packs cannot be read until S3 restores them, which
takes hours. So the copy asks for them back (:mod:`westtek_core.snapshot.archive`), the
launch is recorded here as waiting, and the panel shows it: "waiting for archive, ready in
about N hours". Every ``LabStores.archive_poll_seconds`` the service tries each waiting
launch again; once the packs are back it checks that the researcher still may launch from
the snapshot (the share may have been revoked meanwhile) and that the lab has a server
place left in its quota (else it waits on for one), copies it and starts their server.
A launch that cannot go on keeps its reason until the researcher dismisses it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from tornado import web
from tornado.httpclient import HTTPClientError
from tornado.ioloop import IOLoop, PeriodicCallback

from westtek_core.store import ArchiveWait
from westtek_hub import audit, registry
from westtek_hub.api_base import APIHandler, HubClient
from westtek_hub.launching import LaunchRefused, copy_shared_snapshot, start_user_server
from westtek_hub.models import ArchivedLaunch, utcnow
from westtek_hub.registry import Caller, Registry
from westtek_hub.stores import LabStores

ACTION = "server.launch.archived"


def launch_json(launch: ArchivedLaunch) -> dict[str, Any]:
    """A waiting launch on the wire (and in the panel)."""
    return {
        "id": launch.id,
        "user": launch.user,
        "environment_id": launch.environment_id,
        "snapshot_id": launch.snapshot_id,
        "from_lab": launch.from_lab,
        "to_lab": launch.to_lab,
        "server_name": launch.server_name,
        "requested_at": launch.requested_at.isoformat(),
        "checked_at": launch.checked_at.isoformat(),
        "state": "failed" if launch.failure else "waiting",
        "waiting": launch.waiting,
        "ready_in_hours": launch.ready_in_hours,
        "failure": launch.failure,
    }


def record_waiting(
    session: Session,
    caller: Caller,
    snapshot_id: str,
    environment_id: str,
    from_lab: str,
    to_lab: str,
    server_name: str,
    wait: ArchiveWait,
) -> dict[str, Any]:
    """Record (or refresh) ``caller``'s launch waiting for archived packs, audited."""
    launch = session.scalar(
        select(ArchivedLaunch).where(
            ArchivedLaunch.user == caller.name,
            ArchivedLaunch.snapshot_id == snapshot_id,
            ArchivedLaunch.to_lab == to_lab,
            ArchivedLaunch.server_name == server_name,
        )
    )
    if launch is None:
        launch = ArchivedLaunch(
            user=caller.name,
            environment_id=environment_id,
            snapshot_id=snapshot_id,
            from_lab=from_lab,
            to_lab=to_lab,
            server_name=server_name,
        )
        session.add(launch)
    launch.waiting, launch.ready_in_hours = wait.message, wait.ready_in_hours
    launch.checked_at, launch.failure = utcnow(), None
    session.flush()
    audit.append(session, caller.name, ACTION, snapshot_id, lab_id=to_lab,
                 detail={"launch": launch.id, "waiting": wait.message})  # fmt: skip
    return launch_json(launch)


def visible_launches(session: Session, caller: Caller) -> list[dict[str, Any]]:
    """The waiting launches ``caller`` sees: their own, their labs' as a lab admin, or all."""
    query = select(ArchivedLaunch).order_by(ArchivedLaunch.requested_at)
    if not caller.admin:
        query = query.where(
            or_(ArchivedLaunch.user == caller.name, ArchivedLaunch.to_lab.in_(caller.admin_labs))
        )
    return [launch_json(launch) for launch in session.scalars(query)]


def dismiss(session: Session, caller: Caller, launch_id: int) -> dict[str, Any]:
    """Cancel a waiting launch (or dismiss a failed one) that ``caller`` sees; audited."""
    launch = session.get(ArchivedLaunch, launch_id)
    if launch is None or not (
        caller.admin or launch.user == caller.name or launch.to_lab in caller.admin_labs
    ):
        raise registry.NotFound(f"no waiting launch {launch_id}")
    gone = launch_json(launch)
    session.delete(launch)
    detail = {"launch": launch_id, "user": launch.user}
    audit.append(session, caller.name, "server.launch.cancel", launch.snapshot_id,
                 lab_id=launch.to_lab, detail=detail)  # fmt: skip
    return gone


class WaitingLaunches:
    """Tries each waiting launch again, every ``LabStores.archive_poll_seconds``."""

    def __init__(self, hub: HubClient, registry: Registry, stores: LabStores) -> None:
        self.hub, self.registry, self.stores = hub, registry, stores
        self._poll: PeriodicCallback | None = None
        self._busy = False

    def start(self) -> None:
        """Try now (launches waiting across a restart of the service), then periodically."""
        self._poll = PeriodicCallback(self._tick, self.stores.archive_poll_seconds * 1000)
        self._poll.start()
        IOLoop.current().add_callback(self._tick)

    def stop(self) -> None:
        """No more tries (the service is stopping)."""
        if self._poll is not None:
            self._poll.stop()

    async def _tick(self) -> None:
        if self._busy:  # a slow round (many copies) must not overlap the next
            return
        self._busy = True
        try:
            await self.resume()
        except Exception:  # the next round tries again; the service keeps serving
            self.stores.log.exception("waiting launches: a round failed")
        finally:
            self._busy = False

    async def resume(self) -> int:
        """Try every waiting launch once; how many servers it started."""
        with self.registry.sessions() as session:
            waiting = list(
                session.scalars(select(ArchivedLaunch).where(ArchivedLaunch.failure.is_(None)))
            )
        started = 0
        for launch in waiting:
            started += await self._resume_one(launch)
        return started

    async def _resume_one(self, launch: ArchivedLaunch) -> int:
        try:
            model = await self.hub.user(launch.user, fresh=True)
        except (HTTPClientError, OSError) as e:  # the hub is down: try again next round
            self.stores.log.warning("waiting launch %d: the hub did not answer: %s", launch.id, e)
            return 0
        if model is None:
            self._fail(Caller(launch.user), launch, f"{launch.user} is no longer a hub user")
            return 0
        caller = Caller.from_model(model, self.registry.policy)
        try:  # the share may have been revoked, or the caller left the lab, while it waited
            self.registry.run(
                caller, ACTION, launch.snapshot_id,
                lambda s: registry.restorable_snapshot(s, caller, launch.snapshot_id),
            )  # fmt: skip
        except registry.RegistryError as e:
            self._fail(caller, launch, f"{caller.name} may no longer launch from it: {e}")
            return 0
        try:  # the lab may run its quota of servers now: wait for a place, copy nothing yet
            running = await self.hub.running_servers(self.registry.policy)
            lab, quota = launch.to_lab, self.registry.quota(launch.to_lab)
            registry.check_server_quota(lab, running.get(lab, 0), quota)
        except (HTTPClientError, OSError) as e:
            self.stores.log.warning("waiting launch %d: the hub did not answer: %s", launch.id, e)
            return 0
        except registry.RegistryError as e:
            self._still_waiting(launch, f"waiting for a server place: {e}")
            return 0
        try:
            copied = await IOLoop.current().run_in_executor(
                None, copy_shared_snapshot, self.stores, self.registry, caller,
                launch.snapshot_id, launch.from_lab, launch.to_lab,
            )  # fmt: skip
        except ArchiveWait as wait:
            self._still_waiting(launch, wait.message, wait.ready_in_hours)
            return 0
        except registry.RegistryError as e:
            self._fail(caller, launch, str(e))
            return 0
        options = {"westtek_restore_snapshot": copied}
        try:
            await start_user_server(
                self.hub, self.registry, caller, launch.environment_id, launch.to_lab,
                options, launch.server_name,
            )  # fmt: skip
        except LaunchRefused as e:
            self._fail(caller, launch, f"{e.message}; the snapshot is in lab {launch.to_lab}'s "
                       "store now: launch it again to start at once")  # fmt: skip
            return 0
        with self.registry.sessions() as session:
            found = session.get(ArchivedLaunch, launch.id)
            if found is not None:
                session.delete(found)
                session.commit()
        self.stores.log.info("waiting launch %d: %s's server started from snapshot %s",
                             launch.id, launch.user, copied[:12])  # fmt: skip
        return 1

    def _still_waiting(self, launch: ArchivedLaunch, why: str, hours: int = 0) -> None:
        """Keep it waiting, saying what for (``hours``: the archive's estimate, 0 once back)."""
        with self.registry.sessions() as session:
            found = session.get(ArchivedLaunch, launch.id)
            if found is not None:
                found.waiting, found.ready_in_hours, found.checked_at = why, hours, utcnow()
                session.commit()

    def _fail(self, caller: Caller, launch: ArchivedLaunch, reason: str) -> None:
        self.stores.log.warning("waiting launch %d cannot go on: %s", launch.id, reason)

        def record(session: Session) -> None:
            found = session.get(ArchivedLaunch, launch.id)
            if found is not None:
                found.failure, found.checked_at = reason, utcnow()
            detail = {"launch": launch.id, "reason": reason}
            audit.append(session, caller.name, ACTION, launch.snapshot_id, lab_id=launch.to_lab,
                         outcome="error", detail=detail)  # fmt: skip

        self.registry.run(caller, ACTION, launch.snapshot_id, record)


class WaitingLaunchesHandler(APIHandler):
    """``GET environments/launches``: the launches waiting for archive storage one sees."""

    async def get(self) -> None:
        """Answer them, oldest first."""
        caller = await self.caller()
        found = self.run(caller, "launches.list", "", lambda s: visible_launches(s, caller))
        self.reply({"launches": found})


class WaitingLaunchHandler(APIHandler):
    """``DELETE environments/launches/{id}``: cancel a waiting launch, or dismiss a failed one."""

    async def delete(self, launch_id: str) -> None:
        """Remove it (404 for one the caller does not see)."""
        caller = await self.caller()
        gone = self.run(caller, "server.launch.cancel", launch_id,
                        lambda s: dismiss(s, caller, int(launch_id)))  # fmt: skip
        self.reply(gone)


def waiting_launches_of(app: web.Application) -> WaitingLaunches:
    """The app's waiting launches (``westtek_waiting_launches`` in its settings)."""
    found: WaitingLaunches = app.settings["westtek_waiting_launches"]
    return found
