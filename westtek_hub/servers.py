"""The hub service's requests that start or reach a researcher's server.

``environments/jupyter`` launches one (for an environment, or from a snapshot another lab
shared), ``environments/snapshot`` asks a running one for a snapshot, and
``environments/take-over`` brings a handed-over environment into its successor's
workspace: through their running server, or by launching one that opens on the
take-over's start page.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop

from westtek_core.kb.take_over import START_URL
from westtek_core.store import ArchiveWait
from westtek_hub import audit, registry
from westtek_hub.api_base import APIHandler
from westtek_hub.archived_launches import ACTION, record_waiting
from westtek_hub.launching import LaunchRefused, copy_shared_snapshot, start_user_server
from westtek_hub.models import Environment, Snapshot, Transfer
from westtek_hub.registry import Caller


class ServerHandler(APIHandler):
    """Starting a caller's server through the hub, and reaching a running one."""

    async def start_server(
        self, caller: Caller, env: Environment, lab: str, options: dict[str, Any], name: str
    ) -> dict[str, Any]:
        """Ask the hub to start ``caller``'s server ``name`` with ``options`` (audited)."""
        try:
            return await start_user_server(
                self.hub, self.registry, caller, env.id, lab, options, name
            )
        except LaunchRefused as e:
            raise web.HTTPError(e.status, e.message) from None

    async def running_server(self, owner: str) -> str | None:
        """The URL path of ``owner``'s default server when it is ready, else None."""
        model = await self.hub.user(owner, fresh=True)
        server = ((model or {}).get("servers") or {}).get("") or {}
        return str(server["url"]) if server.get("ready") else None

    async def server_post(self, owner: str, server: str, path: str, body: dict[str, Any]) -> Any:
        """POST to a running server's West Tek API with the service's token; its answer."""
        public = str(self.settings["westtek_public_url"]).rstrip("/")
        request = HTTPRequest(
            public + server + "westtek/api/" + path,
            method="POST",
            headers={"Authorization": f"token {self.settings['hub_auth'].api_token}"},
            body=json.dumps(body),
            request_timeout=30,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            raise web.HTTPError(502, f"{owner}'s server refused the {path} ({e.code})") from None
        except OSError as e:
            raise web.HTTPError(502, f"{owner}'s server did not answer: {e}") from None
        return json.loads(response.body)


class LaunchHandler(ServerHandler):
    """``POST environments/jupyter``: start a server for an environment, or from a snapshot.

    A snapshot another lab shared (with ``restore``) is first copied into the caller's lab's
    store, from which the new server restores it: a lab's servers only reach their own store.
    When its packs are in archive storage, the launch waits for them
    (:mod:`westtek_hub.archived_launches`): the answer carries ``waiting`` instead.
    """

    async def post(self) -> None:
        """Ask the hub to start the caller's server for it."""
        caller = await self.caller()
        body = self.body(caller, "server.launch")
        env_id = str(body.get("environment_id") or "")
        snapshot_id = str(body.get("snapshot_id") or "")
        server_name = str(body.get("server_name") or "")
        target_name = env_id or snapshot_id

        running = await self.running_servers()

        def check(session: Session) -> tuple[Environment, str, str]:
            """The environment, the caller's lab the server runs in, the snapshot's full id."""
            if snapshot_id:
                snap = registry.restorable_snapshot(session, caller, snapshot_id)
                found = session.get(Environment, snap.environment_id)
                assert found is not None  # found by the access check above
                env, restore = found, snap.id
            else:
                env, _ = registry.get_environment(session, caller, env_id, act=True)
                restore = ""
            # the server runs in the environment's lab when it is the caller's own
            own_lab = env.lab_id in caller.labs or not caller.labs
            lab = env.lab_id if own_lab else min(caller.labs)
            registry.check_server_quota(lab, running.get(lab, 0), self.registry.quota(lab))
            if lab != env.lab_id and not self.stores.configured:
                raise registry.StoreUnavailable(
                    "the hub service cannot reach the labs' snapshot stores to bring this "
                    "shared snapshot over: ask a hub admin to set LabStores.store_template"
                )
            return env, lab, restore

        env, lab, restore = self.run(caller, "server.launch", target_name, check)
        # a server started from another lab's snapshot is the caller's own environment
        options = {"westtek_environment": env.id} if lab == env.lab_id else {}
        if restore and lab != env.lab_id:
            try:
                restore = await IOLoop.current().run_in_executor(
                    None, copy_shared_snapshot, self.stores, self.registry, caller,
                    restore, env.lab_id, lab,
                )  # fmt: skip
            except ArchiveWait as wait:  # a year on: its packs are in archive storage
                self.reply(self.wait_for_archive(caller, env, restore, lab, server_name, wait), 202)
                return
            except registry.RegistryError as e:
                raise web.HTTPError(e.status, str(e)) from None
        if restore:
            options["westtek_restore_snapshot"] = restore
        self.reply(await self.start_server(caller, env, lab, options, server_name), 202)

    def wait_for_archive(
        self, caller: Caller, env: Environment, restore: str, lab: str, server: str,
        wait: ArchiveWait,
    ) -> dict[str, Any]:  # fmt: skip
        """Record the launch as waiting for the packs; the answer that says so."""

        def record(session: Session) -> dict[str, Any]:
            return record_waiting(session, caller, restore, env.id, env.lab_id, lab, server, wait)

        waiting = self.run(caller, ACTION, restore, record)
        return {"user": caller.name, "server_name": server, "waiting": waiting}


class SnapshotRequestHandler(ServerHandler):
    """``POST environments/snapshot``: snapshot an environment through its running server."""

    async def post(self) -> None:
        """Ask the environment's server to snapshot itself."""
        caller = await self.caller()
        body = self.body(caller, "snapshot.request")
        env_id = str(body.get("environment_id") or "")

        def work(session: Session) -> str:
            env, _ = registry.get_environment(session, caller, env_id, act=True)
            registry.check_snapshot_quota(session, env.lab_id, self.registry.quota(env.lab_id))
            audit.append(session, caller.name, "snapshot.request", env.id, lab_id=env.lab_id)
            return env.researcher_id

        owner = self.run(caller, "snapshot.request", env_id, work)
        server = await self.running_server(owner)
        if server is None:
            raise web.HTTPError(409, f"{owner}'s server is not running: launch it first")
        wanted = {"note": str(body.get("note") or ""), "labels": {}}
        job = await self.server_post(owner, server, "snapshots", wanted)
        self.reply({"environment_id": env_id, "job": job}, 202)


def _take_over_plan(
    session: Session, caller: Caller, env_id: str
) -> tuple[Environment, str, str | None]:
    """The environment the caller took over, whose it was, and the snapshot to take.

    The snapshot is the latest the registry holds when the environment stayed in its lab:
    a predecessor still working in the lab under the same id may have stored later ones,
    which the registry refused. After a move to another lab the store holds only the
    copies the move made, and their ids may differ: the server takes the latest there.
    """
    env, access = registry.get_environment(session, caller, env_id, act=True)
    if access != "own":
        raise registry.Denied(
            f"{env.id} is {env.researcher_id}'s: only its holder takes it over", env.lab_id
        )
    query = select(Transfer).where(
        Transfer.environment_id == env.id, Transfer.to_researcher == caller.name
    )
    handed = session.scalar(query.order_by(Transfer.id.desc()).limit(1))
    if handed is None:
        raise registry.Invalid(f"{env.id} was never handed to {caller.name}: nothing to take over")
    snapshots = select(Snapshot.id).where(Snapshot.environment_id == env.id)
    latest = session.scalar(snapshots.order_by(Snapshot.timestamp.desc()).limit(1))
    if latest is None:
        raise registry.Invalid(f"{env.id} has no snapshot to take over")
    snapshot = latest if handed.from_lab == handed.to_lab else None
    audit.append(session, caller.name, "environment.take_over", env.id, lab_id=env.lab_id,
                 detail={"from": handed.from_researcher, "snapshot": snapshot})  # fmt: skip
    return env, handed.from_researcher, snapshot


class TakeOverHandler(ServerHandler):
    """``POST environments/take-over``: a handed-over environment into its holder's workspace.

    The predecessor's notebooks and data come into a folder, their packages and kernels as
    a kernel of their own, from the environment's latest snapshot in the lab's store
    (``westtek_core.kb.take_over``). A running server does it as a job; otherwise the hub
    launches one that does it before JupyterLab opens, on the take-over's start page.
    """

    async def post(self) -> None:
        """Take over through the running server, or launch one that takes over."""
        caller = await self.caller()
        body = self.body(caller, "environment.take_over")
        env_id = str(body.get("environment_id") or "")
        if not env_id:
            raise web.HTTPError(400, "name the environment to take over: environment_id")
        server = await self.running_server(caller.name)
        running = {} if server else await self.running_servers()

        def plan(session: Session) -> tuple[Environment, str, str | None]:
            env, predecessor, snapshot = _take_over_plan(session, caller, env_id)
            if server is None:  # a server is launched for it
                quota = self.registry.quota(env.lab_id)
                registry.check_server_quota(env.lab_id, running.get(env.lab_id, 0), quota)
            return env, predecessor, snapshot

        env, predecessor, snapshot = self.run(caller, "environment.take_over", env_id, plan)
        wanted = {"environment_id": env.id, "predecessor": predecessor, "snapshot_id": snapshot}
        if server is not None:  # paths: the browser reaches the server through the proxy
            job = await self.server_post(caller.name, server, "take-over", wanted)
            answer = {"user": caller.name, "job": job, "server": server,
                      "open": server + START_URL.lstrip("/")}  # fmt: skip
            self.reply(answer | wanted, 202)
            return
        options = {"westtek_take_over": env.id, "westtek_predecessor": predecessor}
        if snapshot:
            options["westtek_take_over_snapshot"] = snapshot
        self.reply(await self.start_server(caller, env, env.lab_id, options, "") | wanted, 202)
