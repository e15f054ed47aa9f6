"""Thin Tornado handlers over westtek_core; every verb is authenticated and authorized.

Each handler names its operations (``operations``: verb → ``Operation``) with the pydantic
models of its request and response bodies; the OpenAPI document is built from them, and
the tests check every response against the model its operation declares.

The handlers are grouped by what they serve: ``status``, ``snapshots``, ``take_over``,
``drift`` and ``agents``; ``base`` holds what they share. The route table is here.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from westtek_core.kb.take_over import START_URL
from westtek_server_ext.handlers.agents import (
    ChatHandler,
    ConversationHandler,
    KnowledgeSearchHandler,
    PreservedCellHandler,
)
from westtek_server_ext.handlers.base import Operation, WestTekAPIHandler
from westtek_server_ext.handlers.drift import (
    BaselineHandler,
    DriftEventsHandler,
    DriftHandler,
    DriftStreamHandler,
    RollbackHandler,
    RollbackPreviewHandler,
)
from westtek_server_ext.handlers.snapshots import (
    SnapshotDiffHandler,
    SnapshotExportHandler,
    SnapshotHandler,
    SnapshotRestoreHandler,
    SnapshotsHandler,
    SnapshotVerifyHandler,
)
from westtek_server_ext.handlers.status import (
    EnvironmentHandler,
    JobHandler,
    JobsHandler,
    StatusHandler,
)
from westtek_server_ext.handlers.take_over import StartHereHandler, TakeOverHandler
from westtek_server_ext.openapi import openapi_document

API_PREFIX = "/westtek/api"
SNAPSHOT_ID = r"(?P<snapshot_id>[0-9a-fA-F]{4,64})"


class OpenAPIHandler(WestTekAPIHandler):
    """``GET openapi.json``: this API's OpenAPI 3 document."""

    operations = {"get": Operation("This document")}

    @web.authenticated
    @authorized
    def get(self) -> None:
        """Answer the document."""
        self.reply(openapi_document(handler_routes()))


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
