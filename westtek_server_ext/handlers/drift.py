"""Drift: the state against the baseline, the baseline, rollback, events and the stream."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web, websocket
from tornado.ioloop import IOLoop

from westtek_core.areas import AREAS
from westtek_core.environment_service import EnvironmentService, Message
from westtek_server_ext import models
from westtek_server_ext.handlers.base import Operation, WestTekAPIHandler


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
