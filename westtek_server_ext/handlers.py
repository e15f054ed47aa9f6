"""Thin Tornado handlers over westtek_core; every verb is authenticated and authorized.

Each handler names its operations (``operations``: verb → ``Operation``) with the pydantic
models of its request and response bodies; the OpenAPI document is built from them, and
the tests check every response against the model its operation declares.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlencode

from jupyter_core.paths import jupyter_path
from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import BaseModel, ValidationError
from tornado import web, websocket
from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError

from westtek_core.agents.conversations import ConversationNotFound
from westtek_core.agents.service import AgentService
from westtek_core.areas import AREAS
from westtek_core.environment_service import USER_ERRORS, EnvironmentService, Message
from westtek_core.kb.lab_client import LabMemoryUnavailable, visible_snapshots
from westtek_core.kb.take_over import START_PAGE_PARAMETER, START_URL
from westtek_core.kb.take_over import records as take_over_records
from westtek_core.request_input import MAX_INT, BadInput, parse_count, parse_json
from westtek_core.snapshot import EXPORT_FORMATS
from westtek_core.status import Capability, status_report
from westtek_core.store import SnapshotNotFound, StoreLockedError
from westtek_server_ext import models
from westtek_server_ext.openapi import openapi_document

API_PREFIX = "/westtek/api"
START_HERE_WAIT_SECONDS = 600
SNAPSHOT_ID = r"(?P<snapshot_id>[0-9a-fA-F]{4,64})"
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Operation:
    """What one verb of a route takes and answers, for the OpenAPI document."""

    summary: str
    response: type[BaseModel] | None = None
    status: int = 200
    request: type[BaseModel] | None = None
    query: dict[str, str] = field(default_factory=dict)  # name → description
    content_type: str = "application/json"


class WestTekAPIHandler(ExtensionHandlerMixin, APIHandler):
    """Base of every West Tek handler: the service, JSON bodies, domain errors as 4xx."""

    auth_resource = "westtek"
    operations: ClassVar[dict[str, Operation]] = {}

    @property
    def service(self) -> EnvironmentService:
        """The one service object the extension keeps in the settings."""
        service: EnvironmentService = self.settings["westtek_service"]
        return service

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking core work in a thread; its domain errors become JSON 4xx answers."""
        try:
            return await IOLoop.current().run_in_executor(None, fn, *args)
        except SnapshotNotFound as e:
            raise web.HTTPError(404, str(e)) from e
        except StoreLockedError as e:
            raise web.HTTPError(409, str(e)) from e
        except USER_ERRORS as e:
            raise web.HTTPError(400, str(e)) from e

    def body(self, model: type[M]) -> M:
        """The request body validated by ``model``; a bad body is a 400 naming the field."""
        try:
            raw = parse_json(self.request.body or b"{}")
        except BadInput as e:
            raise web.HTTPError(400, str(e)) from None
        try:
            return model.model_validate(raw)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise web.HTTPError(400, f"{where}: {first['msg']}") from e

    def int_argument(self, name: str, default: int, maximum: int = MAX_INT) -> int:
        """A query argument: an integer from 0 to ``maximum``."""
        try:
            return parse_count(self.get_argument(name, str(default)), f"query argument {name}",
                               maximum=maximum)  # fmt: skip
        except BadInput as e:
            raise web.HTTPError(400, str(e)) from None

    def reply(self, payload: Any, status: int = 200) -> None:
        """Answer JSON."""
        self.set_status(status)
        self.finish(json.dumps(payload, default=str))

    def accepted(self, job: Any) -> None:
        """Answer 202 with a job and where to poll it."""
        self.set_header("Location", f"{self.base_url}westtek/api/jobs/{job.id}")
        self.reply(job.to_json(), 202)


LABEXTENSION_NAME = "westtek-labextension"
"""The lab extension's name: its directory under ``share/jupyter/labextensions``."""


def labextension_installed() -> bool:
    """Whether this server's JupyterLab can load the prebuilt West Tek lab extension."""
    return any(
        (Path(root) / LABEXTENSION_NAME / "package.json").exists()
        for root in jupyter_path("labextensions")
    )


class StatusHandler(WestTekAPIHandler):
    """``GET status``: version and the capabilities present on this server."""

    operations = {"get": Operation("Version and capabilities", models.StatusReport)}

    @web.authenticated
    @authorized
    def get(self) -> None:
        """Answer the status report."""
        present = [Capability.SERVER_EXTENSION]
        if labextension_installed():
            present.append(Capability.LAB_EXTENSION)
        self.finish(status_report("server-extension", extra=tuple(present)).to_json())


class EnvironmentHandler(WestTekAPIHandler):
    """``GET environment``: interpreters, packages, kernels, config and the drift status."""

    operations = {"get": Operation("The live environment", models.EnvironmentView)}

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Answer the live environment."""
        self.reply(await self.run(self.service.environment_view))


class SnapshotsHandler(WestTekAPIHandler):
    """``GET snapshots`` lists; ``POST snapshots`` starts a snapshot job."""

    operations = {
        "get": Operation("Every snapshot in the store", models.SnapshotList),
        "post": Operation(
            "Snapshot the environment (a background job)",
            models.Job,
            202,
            request=models.SnapshotCreate,
        ),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """List the snapshots (without those of an environment handed over from the user)."""
        listing = await self.run(self.service.list_snapshots)
        listing["snapshots"] = await IOLoop.current().run_in_executor(
            None, visible_snapshots, listing["snapshots"]
        )
        self.reply(listing)

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Start a snapshot."""
        wanted = self.body(models.SnapshotCreate)
        job = await self.run(
            self.service.start_snapshot, wanted.note, wanted.labels, wanted.baseline
        )
        self.accepted(job)


class SnapshotHandler(WestTekAPIHandler):
    """``GET snapshots/{id}``: one snapshot's manifest."""

    operations = {"get": Operation("A snapshot's manifest")}

    @web.authenticated
    @authorized
    async def get(self, snapshot_id: str) -> None:
        """Answer the manifest."""
        self.reply(await self.run(self.service.snapshot, snapshot_id))


class SnapshotDiffHandler(WestTekAPIHandler):
    """``GET snapshots/{a}/diff/{b}``: two snapshots compared, graded like drift."""

    operations = {"get": Operation("Compare two snapshots", models.DriftReport)}

    @web.authenticated
    @authorized
    async def get(self, snapshot_id: str, other_id: str) -> None:
        """Answer the comparison."""
        self.reply(await self.run(self.service.diff, snapshot_id, other_id))


class SnapshotVerifyHandler(WestTekAPIHandler):
    """``POST snapshots/{id}/verify``: re-read its objects in a background job."""

    operations = {"post": Operation("Verify a snapshot (a background job)", models.Job, 202)}

    @web.authenticated
    @authorized
    async def post(self, snapshot_id: str) -> None:
        """Start a verification."""
        self.accepted(await self.run(self.service.start_verify, snapshot_id))


class SnapshotRestoreHandler(WestTekAPIHandler):
    """``POST snapshots/{id}/restore``: restore into a new directory, in a background job."""

    operations = {
        "post": Operation(
            "Restore a snapshot into a new directory (a background job)",
            models.Job,
            202,
            request=models.RestoreRequest,
        )
    }

    @web.authenticated
    @authorized
    async def post(self, snapshot_id: str) -> None:
        """Start a restore."""
        wanted = self.body(models.RestoreRequest)
        job = await self.run(self.service.start_restore, snapshot_id, wanted.target, wanted.mode)
        self.accepted(job)


class TakeOverHandler(WestTekAPIHandler):
    """``POST take-over``: a predecessor's work and kernel into this workspace (a job)."""

    operations = {
        "get": Operation("The take-overs done in this workspace", models.TakeOvers),
        "post": Operation(
            "Take over a predecessor's environment from its latest snapshot (a background job)",
            models.Job,
            202,
            request=models.TakeOverRequest,
        ),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """List the take-overs."""
        self.reply({"take_overs": await self.run(take_over_records)})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Start a take-over."""
        wanted = self.body(models.TakeOverRequest)
        job = await self.run(self.service.start_take_over, wanted.environment_id,
                             wanted.predecessor, wanted.snapshot_id)  # fmt: skip
        self.accepted(job)


class StartHereHandler(ExtensionHandlerMixin, JupyterHandler):
    """``GET /westtek/start-here``: JupyterLab on the latest take-over's start page.

    A server launched to take over an environment opens here (its spawner's default URL),
    and the hub panel links here while a running server takes over: a take-over still
    running is waited for (up to ``START_HERE_WAIT_SECONDS``), so the page exists when
    JupyterLab opens. The take-over chose the folder: only the server knows the page.
    """

    @web.authenticated
    async def get(self) -> None:
        """Redirect to the start page, or to JupyterLab when nothing was taken over."""
        service: EnvironmentService = self.settings["westtek_service"]
        deadline = IOLoop.current().time() + START_HERE_WAIT_SECONDS
        while IOLoop.current().time() < deadline and any(
            job.kind == "take-over" and job.finished is None for job in service.jobs.jobs()
        ):
            await asyncio.sleep(0.25)
        done = await IOLoop.current().run_in_executor(None, take_over_records)
        start = {START_PAGE_PARAMETER: done[-1]["start_page"]} if done else {}
        self.redirect(self.base_url + "lab" + (f"?{urlencode(start)}" if start else ""))


class SnapshotExportHandler(WestTekAPIHandler):
    """``GET snapshots/{id}/export?format=``: a lockfile to download."""

    operations = {
        "get": Operation(
            "A snapshot's packages as a lockfile",
            query={"format": "requirements, pylock or conda"},
            content_type="text/plain",
        )
    }

    @web.authenticated
    @authorized
    async def get(self, snapshot_id: str) -> None:
        """Answer the lockfile as an attachment."""
        fmt = self.get_argument("format", "requirements")
        if fmt not in EXPORT_FORMATS:
            raise web.HTTPError(400, f"format must be one of {', '.join(EXPORT_FORMATS)}")
        text = await self.run(self.service.export, snapshot_id, fmt)
        name = {"requirements": "requirements.txt", "pylock": "pylock.toml"}.get(
            fmt, "environment.yml"
        )
        self.set_header("Content-Disposition", f'attachment; filename="{snapshot_id[:12]}-{name}"')
        self.finish(text, set_content_type="text/plain; charset=utf-8")


class DriftHandler(WestTekAPIHandler):
    """``GET drift``: the live environment graded against its baseline."""

    operations = {"get": Operation("Drift against the baseline", models.DriftState)}

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Answer the drift state."""
        self.reply(await self.run(self.service.drift_state))


class BaselineHandler(WestTekAPIHandler):
    """``PUT baseline``: choose the snapshot drift is measured against."""

    operations = {
        "put": Operation(
            "Make a snapshot the baseline", models.DriftState, request=models.BaselineRequest
        )
    }

    @web.authenticated
    @authorized
    async def put(self) -> None:
        """Set the baseline and answer the drift against it."""
        wanted = self.body(models.BaselineRequest)
        self.reply(await self.run(self.service.set_baseline, wanted.id))


class RollbackHandler(WestTekAPIHandler):
    """``POST rollback``: put the environment back to a snapshot in place, as a job."""

    operations = {
        "post": Operation(
            "Roll the environment back to a snapshot (a background job)",
            models.Job,
            202,
            request=models.RollbackRequest,
        )
    }

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Start a rollback, after a safety snapshot."""
        wanted = self.body(models.RollbackRequest)
        self.accepted(
            await self.run(self.service.start_rollback, wanted.to, wanted.only, wanted.plan)
        )


class RollbackPreviewHandler(WestTekAPIHandler):
    """``GET rollback/preview``: every step a rollback would take now; changes nothing."""

    operations = {
        "get": Operation(
            "Preview a rollback: every package, kernel and config change it would make",
            models.RollbackPreview,
            query={
                "to": "snapshot id (the baseline when omitted)",
                "only": "packages, kernels or config (everything when omitted)",
            },
        )
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Plan the rollback against the live environment."""
        to = self.get_query_argument("to", None) or None
        only = self.get_query_argument("only", None) or None
        if only is not None and only not in AREAS:
            raise web.HTTPError(400, f"only must be one of {', '.join(AREAS)}")
        self.reply(await self.run(self.service.rollback_preview, to, only))


class DriftEventsHandler(WestTekAPIHandler):
    """``GET drift/events``: the event log, oldest first."""

    operations = {
        "get": Operation(
            "Drift events",
            models.EventList,
            query={
                "since": "only events after this id",
                "limit": "at most this many (100)",
                "days": "only events of the last this many days",
            },
        )
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """List events."""
        since = self.int_argument("since", 0)
        limit = min(self.int_argument("limit", 100), 10_000)
        days = self.int_argument("days", 0)
        events = await self.run(self.service.events, since, limit, days)
        self.reply({"events": events})


class JobsHandler(WestTekAPIHandler):
    """``GET jobs``: this server's background jobs, newest first."""

    operations = {"get": Operation("Background jobs", models.JobList)}

    @web.authenticated
    @authorized
    def get(self) -> None:
        """List jobs."""
        self.reply({"jobs": [job.to_json() for job in self.service.jobs.jobs()]})


class JobHandler(WestTekAPIHandler):
    """``GET jobs/{id}``: one job's state and progress."""

    operations = {"get": Operation("A background job", models.Job)}

    @web.authenticated
    @authorized
    def get(self, job_id: str) -> None:
        """Answer the job."""
        job = self.service.jobs.get(job_id)
        if job is None:
            raise web.HTTPError(
                404, f"no job {job_id} on this server (jobs are kept until restart)"
            )
        self.reply(job.to_json())


class AgentHandler(WestTekAPIHandler):
    """Base of the agents' handlers: the one ``AgentService`` the extension keeps."""

    @property
    def agents(self) -> AgentService:
        """The agents of this server's environment."""
        agents: AgentService = self.settings["westtek_agents"]
        return agents


class ChatHandler(AgentHandler):
    """``POST chat`` streams an agent's answer; ``GET chat`` lists the conversations."""

    operations = {
        "post": Operation(
            "Ask an agent; the answer streams as newline-delimited JSON chunks (start, "
            "tool…, delta…, then done or error), kept in the conversation",
            models.ChatChunk,
            request=models.ChatRequest,
            content_type="application/x-ndjson",
        ),
        "get": Operation("The environment's conversations", models.ConversationList),
    }

    @web.authenticated
    @authorized
    def get(self) -> None:
        """List the conversations of this environment."""
        environment = self.agents.service.environment_id
        self.reply({"conversations": self.agents.conversations.list(environment)})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Answer, one JSON object per line as the agent works."""
        wanted = self.body(models.ChatRequest)
        if not wanted.question.strip():
            raise web.HTTPError(400, "question: ask a question")
        if wanted.conversation_id:
            try:  # before streaming, so an unknown conversation is a plain 404
                await self.run(self.agents.history, wanted.conversation_id)
            except ConversationNotFound as e:
                raise web.HTTPError(404, str(e.args[0])) from e
        self.set_header("Content-Type", "application/x-ndjson; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")  # proxies must not hold the stream back
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def emit(chunk: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(chunks.put_nowait, chunk)

        work = loop.run_in_executor(
            None, self.agents.chat, wanted.agent, wanted.question, wanted.conversation_id, emit
        )
        work.add_done_callback(lambda _: chunks.put_nowait(None))
        connected = True
        while (chunk := await chunks.get()) is not None:
            connected = connected and await self._send_line(chunk)
        error = work.exception()
        if error is not None:
            self.log.warning("Chat failed: %s", error)
            message = (
                str(error) if isinstance(error, (ValueError, KeyError)) else "the agent failed"
            )
            await self._send_line({"type": "error", "message": message})
        if connected:
            self.finish()

    async def _send_line(self, chunk: dict[str, Any]) -> bool:
        try:
            self.write(json.dumps(chunk, default=str) + "\n")
            await self.flush()
        except StreamClosedError:
            return False  # the reader left; the answer is still kept in the conversation
        return True


class ConversationHandler(AgentHandler):
    """``GET chat/{id}``: one conversation of this environment, with its messages."""

    operations = {"get": Operation("A conversation", models.Conversation)}

    @web.authenticated
    @authorized
    def get(self, conversation_id: str) -> None:
        """Answer the conversation."""
        environment = self.agents.service.environment_id
        try:
            self.reply(self.agents.conversations.get(conversation_id, environment))
        except ConversationNotFound as e:
            raise web.HTTPError(404, str(e.args[0])) from e


class KnowledgeSearchHandler(AgentHandler):
    """``GET kb/search?q=&k=``: the lab's knowledge base searched."""

    operations = {
        "get": Operation(
            "Search the lab's knowledge base",
            models.KBSearchResults,
            query={"q": "the query", "k": "how many passages (5, at most 50)"},
        )
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Answer the best passages."""
        query = self.get_argument("q", "")
        k = self.int_argument("k", 5)
        if not 1 <= k <= 50:
            raise web.HTTPError(400, "query argument k must be between 1 and 50")
        self.reply(await self.run(self.agents.search, query, k))


class PreservedCellHandler(AgentHandler):
    """``GET kb/cell``: a cell the lab's memory cited, from the snapshot that holds it."""

    operations = {
        "get": Operation(
            "A cited cell of the lab's memory (through the hub service)",
            models.PreservedCell,
            query={
                "environment_id": "the citation's environment",
                "snapshot_id": "the citation's snapshot",
                "path": "the notebook's path in the snapshot",
                "cell": "the cell, from 0",
            },
        )
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Ask the hub service for the cell, with this server's token."""
        wanted = [self.get_argument(name, "") for name in ("environment_id", "snapshot_id", "path")]
        if not all(wanted):
            raise web.HTTPError(400, "give environment_id, snapshot_id and path")
        cell = self.int_argument("cell", 0, maximum=100_000)
        try:
            found = await self.run(self.agents.preserved_cell, *wanted, cell)
        except LabMemoryUnavailable as e:
            raise web.HTTPError(404 if e.status in (403, 404) else 502, str(e)) from None
        self.reply(found)


class OpenAPIHandler(WestTekAPIHandler):
    """``GET openapi.json``: this API's OpenAPI 3 document."""

    operations = {"get": Operation("This document")}

    @web.authenticated
    @authorized
    def get(self) -> None:
        """Answer the document."""
        self.reply(openapi_document(handler_routes()))


class DriftStreamHandler(
    WebSocketMixin, ExtensionHandlerMixin, JupyterHandler, websocket.WebSocketHandler
):
    """``WS drift/stream``: the drift state on connect, then every drift event and snapshot."""

    auth_resource = "westtek"
    operations: ClassVar[dict[str, Operation]] = {
        "get": Operation("WebSocket: drift state, then events", models.StreamMessage, 101)
    }

    async def pre_get(self) -> None:
        """Authorize the upgrade: reading drift is reading the environment."""
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "read", "westtek")
        )
        if not allowed:
            raise web.HTTPError(403)

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        """Upgrade to a WebSocket."""
        await self.pre_get()
        await super().get(*args, **kwargs)

    async def open(self, *args: Any, **kwargs: Any) -> None:
        """Subscribe, then send the current state."""
        service: EnvironmentService = self.settings["westtek_service"]
        loop = IOLoop.current()
        self._unsubscribe = service.subscribe(lambda m: loop.add_callback(self._forward, m))
        state = await loop.run_in_executor(None, service.drift_state)
        self._send({"type": "state", "drift": state})

    def _forward(self, message: Message) -> None:
        """Drift states and events as they are; of a snapshot, only its id."""
        if message["type"] in ("state", "event"):
            self._send(message)
        elif message["type"] == "snapshot":
            self._send({"type": "snapshot", "snapshot_id": message["snapshot"]["id"]})

    def _send(self, message: Message) -> None:
        try:
            self.write_message(json.dumps(message, default=str))
        except websocket.WebSocketClosedError:
            self.on_close()

    def on_message(self, message: str | bytes) -> None:
        """Clients only listen; anything they send is ignored."""

    def on_close(self) -> None:
        """Unsubscribe."""
        unsubscribe = getattr(self, "_unsubscribe", None)
        if unsubscribe:
            unsubscribe()


def handler_routes() -> list[tuple[str, Any]]:
    """The route table, relative to the server's base_url."""
    api = API_PREFIX
    return [
        (rf"{api}/status", StatusHandler),
        (rf"{api}/environment", EnvironmentHandler),
        (rf"{api}/snapshots", SnapshotsHandler),
        (rf"{api}/snapshots/{SNAPSHOT_ID}", SnapshotHandler),
        (
            rf"{api}/snapshots/{SNAPSHOT_ID}/diff/(?P<other_id>[0-9a-fA-F]{{4,64}})",
            SnapshotDiffHandler,
        ),
        (rf"{api}/snapshots/{SNAPSHOT_ID}/verify", SnapshotVerifyHandler),
        (rf"{api}/snapshots/{SNAPSHOT_ID}/restore", SnapshotRestoreHandler),
        (rf"{api}/snapshots/{SNAPSHOT_ID}/export", SnapshotExportHandler),
        (rf"{api}/take-over", TakeOverHandler),
        (rf"{api}/drift", DriftHandler),
        (rf"{api}/baseline", BaselineHandler),
        (rf"{api}/rollback", RollbackHandler),
        (rf"{api}/rollback/preview", RollbackPreviewHandler),
        (rf"{api}/drift/events", DriftEventsHandler),
        (rf"{api}/drift/stream", DriftStreamHandler),
        (rf"{api}/jobs", JobsHandler),
        (rf"{api}/jobs/(?P<job_id>[0-9a-f]{{16}})", JobHandler),
        (rf"{api}/chat", ChatHandler),
        (rf"{api}/chat/(?P<conversation_id>[0-9a-f]{{32}})", ConversationHandler),
        (rf"{api}/kb/search", KnowledgeSearchHandler),
        (rf"{api}/kb/cell", PreservedCellHandler),
        (rf"{api}/openapi.json", OpenAPIHandler),
    ]


def page_routes() -> list[tuple[str, Any]]:
    """Pages outside the REST API (not in its OpenAPI document)."""
    return [(START_URL, StartHereHandler)]
