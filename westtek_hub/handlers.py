"""The hub service's REST API under ``/services/westtek/api/``: thin over the registry.

Each handler is an ``APIHandler`` (api_base.py: the caller, JSON, audit); the routes are at
the bottom.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import select
from sqlalchemy.orm import Session
from tornado import web
from tornado.ioloop import IOLoop

from westtek_core.request_input import BadInput, parse_count
from westtek_core.store import ArchiveWait, StoreError
from westtek_core.wire import DRIFT_STATUSES
from westtek_hub import audit, registry
from westtek_hub.api_base import APIHandler
from westtek_hub.archived_launches import WaitingLaunchesHandler, WaitingLaunchHandler
from westtek_hub.assessments import is_assessment, record_assessment
from westtek_hub.environment_ids import handed_over_from, own_environment_id
from westtek_hub.knowledge import CellNotFound
from westtek_hub.metrics import WestTekMetrics
from westtek_hub.models import AuditEntry, Snapshot
from westtek_hub.registry import Caller
from westtek_hub.servers import LaunchHandler, SnapshotRequestHandler, TakeOverHandler


class EnvironmentsHandler(APIHandler):
    """``GET environments``: what the caller may see (``?lab=``, ``?drift=``)."""

    async def get(self) -> None:
        """List environments."""
        caller = await self.caller()
        lab, drift = self.get_argument("lab", None), self.get_argument("drift", None)
        if drift and drift not in DRIFT_STATUSES:
            raise web.HTTPError(400, f"drift must be one of {', '.join(DRIFT_STATUSES)}")

        def work(session: Session) -> dict[str, Any]:
            return {
                "environments": registry.list_environments(session, caller, lab, drift),
                # what is no longer the caller's: their servers' lists leave it out
                "handed_over": handed_over_from(session, caller.name),
            }

        self.reply(self.run(caller, "environment.list", lab or "", work))


class OwnEnvironmentIdHandler(APIHandler):
    """``GET environments/own-id?server_name=``: the id the caller's server reports as."""

    async def get(self) -> None:
        """The caller's id for that server, past any environment handed over from it."""
        caller = await self.caller()
        server_name = self.get_argument("server_name", "")
        if "/" in server_name or len(server_name) > 200:
            raise web.HTTPError(400, "server_name is not a JupyterHub server name")
        found = self.run(
            caller,
            "environment.own_id",
            server_name,
            lambda s: own_environment_id(s, caller.name, server_name),
        )
        self.reply({"environment_id": found})


class EnvironmentDriftHandler(APIHandler):
    """``GET environments/{id}/drift``: its status and drift events."""

    async def get(self, env_id: str) -> None:
        """Answer the drift of one environment."""
        caller = await self.caller()

        def work(session: Session) -> dict[str, Any]:
            env, access = registry.get_environment(session, caller, env_id, history=True)
            return {
                "environment": registry.environment_json(env, access),
                "drift_status": env.drift_status,
                "events": registry.list_events(session, caller, env_id),
            }

        self.reply(self.run(caller, "environment.drift", env_id, work))


class ContainerHandler(APIHandler):
    """``PUT environments/{id}/container``: the spawner reports where the server runs."""

    async def put(self, env_id: str) -> None:
        """Record the container info."""
        caller = await self.caller()
        body = self.body(caller, "environment.container")
        self.reply(
            self.run(
                caller,
                "environment.container",
                env_id,
                lambda s: registry.record_container(s, caller, env_id, body),
            )
        )


class ReportedEventsHandler(APIHandler):
    """``POST|GET events``: drift events reported by single-user servers."""

    async def post(self) -> None:
        """Store one event (201 when new, 200 when it was stored already), or an assessment.

        An assessment (``"report": "assessment"``) updates an event stored before (200).
        """
        caller = await self.caller()
        body = self.body(caller, "event.report")
        target = str(body.get("environment_id"))
        if is_assessment(body):
            self.reply(
                self.run(
                    caller,
                    "event.assessment",
                    target,
                    lambda s: record_assessment(s, caller, body),
                )
            )
            return
        stored = self.run(
            caller, "event.report", target, lambda s: registry.record_event(s, caller, body)
        )
        if stored and self.metrics is not None:
            self.metrics.event_ingested(str(body["status"]))
        self.reply(
            {"stored": stored, "environment_id": body.get("environment_id"), "id": body.get("id")},
            201 if stored else 200,
        )

    async def get(self) -> None:
        """Events the caller may see (``?environment_id=``, ``?limit=``, 1000 by default)."""
        caller = await self.caller()
        env_id = self.get_argument("environment_id", None)
        try:
            limit = parse_count(
                self.get_argument("limit", "1000"), "limit", minimum=1, maximum=100_000
            )
        except BadInput as e:
            raise web.HTTPError(400, str(e)) from None
        events = self.run(
            caller,
            "event.list",
            env_id or "",
            lambda s: registry.list_events(s, caller, env_id, limit),
        )
        self.reply({"events": events})


class ReportedSnapshotsHandler(APIHandler):
    """``POST snapshots``: a single-user server reports a new snapshot's metadata."""

    async def post(self) -> None:
        """Store the snapshot's metadata once."""
        caller = await self.caller()
        body = self.body(caller, "snapshot.report")
        stored = self.run(
            caller,
            "snapshot.report",
            str(body.get("id")),
            lambda s: registry.record_snapshot(s, caller, body),
        )
        if stored:
            self.remember(str(body["id"]))
        self.reply({"stored": stored, "id": body.get("id")}, 201 if stored else 200)


class ShareHandler(APIHandler):
    """``POST collaboration/share`` shares; ``GET`` lists the caller's labs' shares."""

    async def post(self) -> None:
        """Share a snapshot with a lab."""
        caller = await self.caller()
        body = self.body(caller, "share.create")
        snapshot_id = str(body.get("snapshot_id") or "")
        share = self.run(
            caller,
            "share.create",
            snapshot_id,
            lambda s: registry.share_snapshot(
                s,
                caller,
                snapshot_id,
                str(body.get("to_lab") or ""),
                str(body.get("permission") or "read"),
                self.registry.policy.named,
            ),
        )
        self.reply(share, 201)

    async def get(self) -> None:
        """Shares from or to the caller's labs (all for admins) that are not done with."""
        caller = await self.caller()
        shares = self.run(caller, "share.list", "", lambda s: registry.list_shares(s, caller))
        self.reply({"shares": shares})


class ShareRevokeHandler(APIHandler):
    """``DELETE collaboration/share/{id}``: revoke a share.

    The share ends at once; then the copy a launch made in the recipient lab's store is
    removed. When it cannot be (502, audited), the share says so (``copy_id`` without
    ``copy_removed_at``) and revoking it again retries.
    """

    async def delete(self, share_id: str) -> None:
        """Revoke it."""
        caller = await self.caller()
        number = int(share_id)
        share, copy = self.run(
            caller, "share.revoke", share_id, lambda s: registry.revoke_share(s, caller, number)
        )
        if copy is not None:
            copy_id, lab = copy
            try:
                await IOLoop.current().run_in_executor(None, self.stores.remove, copy_id, lab)
            except (StoreError, OSError) as e:
                failed = registry.StoreUnavailable(
                    f"share {number} is revoked, but its copy {copy_id[:12]} could not be "
                    f"removed from lab {lab}'s store ({e}): revoke it again to retry",
                    lab,
                )
                self.run(caller, "share.copy_remove", share_id, lambda _: registry.refuse(failed))
            share = self.run(
                caller,
                "share.copy_remove",
                share_id,
                lambda s: registry.record_copy_removed(s, caller, number),
            )
        self.reply(share)


class KnowledgeSearchHandler(APIHandler):
    """``GET knowledge/search?q=&k=``: cited passages of the caller's labs' memories."""

    async def get(self) -> None:
        """Search the memories of the caller's labs (``?lab_id=`` one of them)."""
        caller = await self.caller()
        query = self.get_argument("q", "").strip()
        if not query:
            raise web.HTTPError(400, "say what to search for: ?q=")
        try:
            k = parse_count(self.get_argument("k", "5"), "k", minimum=1,
                            maximum=self.knowledge.max_results)  # fmt: skip
        except BadInput as e:
            raise web.HTTPError(400, str(e)) from None
        wanted = self.get_argument("lab_id", "")
        labs = set(caller.labs)
        if wanted:
            if wanted not in labs and not caller.admin:
                denied = registry.Denied(f"{caller.name} is not in lab {wanted!r}", wanted)
                self.run(caller, "knowledge.search", wanted, lambda _: registry.refuse(denied))
            labs = {wanted}
        with self.registry.sessions() as session:
            shared = {} if wanted else registry.shared_with(session, caller)
        results = await IOLoop.current().run_in_executor(
            None, self.knowledge.search, labs, query, k, shared
        )
        self.reply({"query": query, "labs": sorted(labs), "results": results})


class KnowledgeCellHandler(APIHandler):
    """``GET knowledge/cell?environment_id=&snapshot_id=&path=&cell=``: a cited cell."""

    async def get(self) -> None:
        """The cell as the snapshot holds it, for a member of the environment's lab."""
        caller = await self.caller()
        env_id = self.get_argument("environment_id", "")
        snapshot_id = self.get_argument("snapshot_id", "")
        path = self.get_argument("path", "")
        try:
            index = parse_count(self.get_argument("cell", "0"), "cell", maximum=100_000)
        except BadInput as e:
            raise web.HTTPError(400, str(e)) from None

        def check(session: Session) -> str:
            missing = f"no snapshot {snapshot_id!r} of {env_id!r}"
            env, access = registry.get_environment(session, caller, env_id, missing=missing)
            snap = session.get(Snapshot, snapshot_id)
            known = snap is not None and snap.environment_id == env.id
            if not known and not access.startswith("shared-"):
                # a reassignment's copy into this lab, under an id of its own where the
                # stores' keys differ: the lab's memory added it under that id
                known = self.knowledge.holds(env.lab_id, snapshot_id, env.id)
            if not known:
                raise registry.NotFound(missing, env.lab_id)
            # a share gives the shared snapshot, not the environment's others
            shared = registry.shared_with(session, caller).get(env.lab_id, set())
            if access.startswith("shared-") and snapshot_id not in shared:
                raise registry.Hidden(missing, env.lab_id)
            return env.lab_id

        lab_id = self.run(caller, "knowledge.cell", env_id, check)
        try:
            cell = await IOLoop.current().run_in_executor(
                None, self.knowledge.cell, lab_id, snapshot_id, path, index
            )
        except CellNotFound as e:
            raise web.HTTPError(404, str(e)) from None
        except (StoreError, OSError) as e:
            raise web.HTTPError(502, f"lab {lab_id}'s store cannot be read: {e}") from None
        self.reply(cell | {"environment_id": env_id})


class TransferHandler(APIHandler):
    """``GET knowledge/transfer?environment_id=`` packages; ``POST`` reassigns."""

    async def get(self) -> None:
        """The transfer package of an environment."""
        caller = await self.caller()
        env_id = self.get_argument("environment_id", "")
        if not env_id:
            raise web.HTTPError(400, "name the environment: ?environment_id=")
        package = self.run(
            caller,
            "transfer.package",
            env_id,
            lambda s: registry.transfer_package(s, caller, env_id),
        )
        self.reply(self.knowledge.take_over(package))

    async def post(self) -> None:
        """Reassign an environment to a successor."""
        caller = await self.caller()
        body = self.body(caller, "environment.reassign")
        env_id = str(body.get("environment_id") or "")
        successor = str(body.get("to_researcher") or "")
        model = await self.hub.user(successor) if successor else None
        if model is None:
            missing = registry.NotFound(f"no hub user {successor!r}")
            self.run(caller, "environment.reassign", env_id, lambda _: registry.refuse(missing))
        successor_labs = Caller.from_model(model or {"name": successor}, self.registry.policy).labs

        def plan(session: Session) -> tuple[str, str, list[str]]:
            """The environment's lab, the successor's, and the environment's snapshots."""
            env, _ = registry.get_environment(session, caller, env_id, act=True)
            to_lab = registry.successor_lab(env, caller, successor, successor_labs)
            query = select(Snapshot.id).where(Snapshot.environment_id == env.id)
            return env.lab_id, to_lab, list(session.scalars(query.order_by(Snapshot.timestamp)))

        from_lab, to_lab, snapshot_ids = self.run(caller, "environment.reassign", env_id, plan)
        # moving to the successor's lab: its snapshots go to that lab's store first, so the
        # successor's servers (which reach only their own lab's store) can restore them
        carried: dict[str, Any] = {}
        if from_lab != to_lab and snapshot_ids and self.stores.configured:
            try:
                copied, not_held = await IOLoop.current().run_in_executor(
                    None, self.stores.copy_present, snapshot_ids, from_lab, to_lab
                )
            except (StoreError, OSError) as e:
                failed = registry.StoreUnavailable(
                    f"{env_id!r} was not reassigned yet: {e}; reassign it again once the "
                    "data is back"
                    if isinstance(e, ArchiveWait)
                    else f"the snapshots of {env_id!r} could not be copied to lab {to_lab}'s "
                    f"store, so it was not reassigned: {e}",
                    to_lab,
                )
                self.run(caller, "snapshot.copy", env_id, lambda _: registry.refuse(failed))
            carried = {"from_lab": from_lab, "to_lab": to_lab, "copied": copied,
                       "not_in_store": not_held}  # fmt: skip

        def work(session: Session) -> dict[str, Any]:
            moved = registry.reassign(session, caller, env_id, successor, successor_labs)
            if carried:
                audit.append(session, caller.name, "snapshot.copy", env_id, lab_id=to_lab,
                             detail=carried)  # fmt: skip
                moved["snapshots_copied"] = carried
            return moved

        moved = self.run(caller, "environment.reassign", env_id, work)
        # the successor's lab's memory learns the environment from its own copies
        for original, copy_id in (carried.get("copied") or {}).items():
            self.remember(original, lab_id=to_lab, stored_id=copy_id)
        self.reply(moved)


class StorageHandler(APIHandler):
    """``GET storage``: each administered lab's bytes, dedup savings and what a prune frees."""

    async def get(self) -> None:
        """Answer the storage report."""
        caller = await self.caller()
        reg = self.registry
        labs = self.run(
            caller,
            "storage.read",
            "",
            lambda s: registry.lab_storage(s, caller, reg.retention, reg.quota),
        )
        self.reply({"labs": labs, "retention": reg.retention.__dict__})


class AuditHandler(APIHandler):
    """``GET audit`` (hub admins): the log as JSON, or CSV with ``?format=csv``."""

    async def get(self) -> None:
        """Export the audit log."""
        caller = await self.caller()
        fmt = self.get_argument("format", "json")
        if fmt not in ("json", "csv"):
            raise web.HTTPError(400, "format must be json or csv")

        def work(session: Session) -> tuple[list[AuditEntry], tuple[bool, int, str]]:
            if not caller.admin:
                raise registry.Denied(f"{caller.name} is not a hub admin: the audit log is theirs")
            found = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
            return found, audit.verify_chain(found, audit.chain_of(session))

        entries, (ok, count, problem) = self.run(caller, "audit.read", "", work)
        if fmt == "csv":
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", 'attachment; filename="westtek-audit.csv"')
            self.finish(audit.to_csv(entries))
            return
        self.reply(
            {
                "entries": [audit.to_json(e) for e in entries],
                "verified": ok,
                "checked": count,
                "problem": None if ok else problem,
            }
        )


def api_routes(prefix: str) -> list[tuple[str, type[web.RequestHandler]]]:
    """The API route table under the service prefix."""
    api = f"{prefix}/api"
    env = r"(?P<env_id>[^/]+)"
    return [
        (rf"{api}/environments", EnvironmentsHandler),
        (rf"{api}/environments/jupyter", LaunchHandler),
        (rf"{api}/environments/launches", WaitingLaunchesHandler),
        (rf"{api}/environments/launches/(?P<launch_id>[0-9]+)", WaitingLaunchHandler),
        (rf"{api}/environments/snapshot", SnapshotRequestHandler),
        (rf"{api}/environments/take-over", TakeOverHandler),
        (rf"{api}/environments/own-id", OwnEnvironmentIdHandler),
        (rf"{api}/environments/{env}/drift", EnvironmentDriftHandler),
        (rf"{api}/environments/{env}/container", ContainerHandler),
        (rf"{api}/events", ReportedEventsHandler),
        (rf"{api}/snapshots", ReportedSnapshotsHandler),
        (rf"{api}/collaboration/share", ShareHandler),
        (rf"{api}/collaboration/share/(?P<share_id>[0-9]+)", ShareRevokeHandler),
        (rf"{api}/knowledge/transfer", TransferHandler),
        (rf"{api}/knowledge/search", KnowledgeSearchHandler),
        (rf"{api}/knowledge/cell", KnowledgeCellHandler),
        (rf"{api}/audit", AuditHandler),
        (rf"{api}/storage", StorageHandler),
    ]


class MetricsHandler(APIHandler):
    """``GET /services/westtek/metrics``: Prometheus' text format, for admins or the token."""

    @property
    def westtek_metrics(self) -> WestTekMetrics:
        """The app's metrics."""
        found: WestTekMetrics = self.settings["westtek_metrics"]
        return found

    async def get(self) -> None:
        """Answer the metrics (403, audited, for a user who is not a hub admin)."""
        metrics = self.westtek_metrics
        if not metrics.token_matches(self.request.headers.get("Authorization", "")):
            caller = await self.caller()
            if not caller.admin:
                denied = registry.Denied(f"{caller.name} is not a hub admin: metrics are theirs")
                self.run(caller, "metrics.read", "", lambda _: registry.refuse(denied))
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(metrics.exposition())


def metrics_routes(prefix: str) -> list[tuple[str, type[web.RequestHandler]]]:
    """The metrics route under the service prefix."""
    return [(rf"{prefix}/metrics", MetricsHandler)]
