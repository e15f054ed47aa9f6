"""The hub service's web application (a JupyterHub managed service)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jupyterhub.services.auth import HubAuth
from tornado import escape, web
from traitlets import Instance, Integer, Unicode, default
from traitlets.config import Application

from westtek_core.paths import data_dir as westtek_data_dir
from westtek_core.status import Capability, status_report
from westtek_core.version import __version__

_DRIFT_STATUSES = {"STABLE", "MINOR_DRIFT", "CRITICAL_DRIFT"}
_EVENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS drift_events (
    user TEXT NOT NULL,
    environment_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    received REAL NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (user, environment_id, event_id)
);
"""


class ReceivedEvents:
    """Drift events forwarded by users' servers, kept once each in a SQLite file.

    Interim storage until the registry's database replaces it; opened on first use.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(self.path), check_same_thread=False, isolation_level=None, timeout=10
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_EVENTS_SCHEMA)
        return self._db

    def add(self, user: str, event: dict[str, Any]) -> bool:
        """Store ``event`` from ``user``; False when it was already stored (idempotent)."""
        with self._lock:
            cursor = self._connect().execute(
                "INSERT OR IGNORE INTO drift_events"
                " (user, environment_id, event_id, received, status, body)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    user,
                    event["environment_id"],
                    str(event["id"]),
                    time.time(),
                    event["status"],
                    json.dumps(event, sort_keys=True),
                ),
            )
        return cursor.rowcount == 1

    def list(
        self, user: str | None = None, environment_id: str | None = None, limit: int = 500
    ) -> list[dict[str, Any]]:
        """Received events, oldest first: of one user (None: everyone's), one environment."""
        clauses, args = [], []
        for column, value in (("user", user), ("environment_id", environment_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = (
                self._connect()
                .execute(
                    f"SELECT user, received, body FROM drift_events{where} ORDER BY rowid LIMIT ?",
                    (*args, limit),
                )
                .fetchall()
            )
        return [json.loads(body) | {"user": user, "received": at} for user, at, body in rows]

    def close(self) -> None:
        """Close the database, if it was opened."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _event_problem(body: Any) -> str | None:
    """What is wrong with a forwarded event's JSON, or None when it can be stored."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if not isinstance(body.get("id"), (int, str)) or isinstance(body.get("id"), bool):
        return "'id' must be an integer or a string"
    if not isinstance(body.get("environment_id"), str):
        return "'environment_id' must be a string"
    if body.get("status") not in _DRIFT_STATUSES:
        return f"'status' must be one of {', '.join(sorted(_DRIFT_STATUSES))}"
    if not isinstance(body.get("time"), (int, float)):
        return "'time' must be a number"
    for key in ("changes", "resolved"):
        if not isinstance(body.get(key, []), list):
            return f"'{key}' must be a list"
    return None


class JSONAPIHandler(web.RequestHandler):
    """A JSON API handler: errors as ``{"message": ...}``, users from hub API tokens."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Answer errors as JSON."""
        message = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message}))

    async def authenticated_user(self) -> dict[str, Any]:
        """The hub user owning the request's API token; 403 for no token or a non-user."""
        hub_auth: HubAuth = self.settings["hub_auth"]
        token = hub_auth.get_token(self, in_cookie=False)
        model = await hub_auth.user_for_token(token, sync=False) if token else None
        if not model or model.get("kind", "user") != "user":
            raise web.HTTPError(403, "a JupyterHub API token of a user is required")
        return dict(model)


class EventsHandler(JSONAPIHandler):
    """``POST|GET /services/westtek/api/events``: drift events forwarded by users' servers."""

    @property
    def events(self) -> ReceivedEvents:
        """The received-events store."""
        store: ReceivedEvents = self.settings["westtek_events"]
        return store

    async def post(self) -> None:
        """Store one forwarded event (idempotent: 201 when new, 200 when already stored)."""
        user = await self.authenticated_user()
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            raise web.HTTPError(400, "the body is not JSON") from None
        problem = _event_problem(body)
        if problem:
            raise web.HTTPError(400, problem)
        stored = self.events.add(user["name"], body)
        self.set_status(201 if stored else 200)
        self.set_header("Content-Type", "application/json")
        self.finish({"stored": stored, "environment_id": body["environment_id"], "id": body["id"]})

    async def get(self) -> None:
        """The events received: the user's own, everyone's for an admin."""
        user = await self.authenticated_user()
        events = self.events.list(
            user=None if user.get("admin") else user["name"],
            environment_id=self.get_argument("environment_id", None),
        )
        self.set_header("Content-Type", "application/json")
        self.finish({"events": events})


class StatusHandler(web.RequestHandler):
    """``GET /services/westtek/api/status``: the service's version and capabilities."""

    def get(self) -> None:
        """Answer the status report."""
        self.set_header("Content-Type", "application/json")
        self.finish(status_report("hub-service", extra=(Capability.HUB_SERVICE,)).to_json())


class HomeHandler(web.RequestHandler):
    """``GET /services/westtek/``: where the hub's Services menu links; names the API."""

    def get(self) -> None:
        """Answer a short page that says what this service is."""
        self.finish(
            "<!doctype html><title>West Tek</title>"
            f"<h1>West Tek hub service {escape.xhtml_escape(__version__)}</h1>"
            '<p>API status: <a href="api/status">api/status</a></p>'
        )


async def close_hub_http_client() -> None:
    """Close JupyterHub's HTTP client session of this event loop (HubAuth's hub requests)."""
    try:
        from jupyterhub.httpclient import JupyterHubHTTPClient
    except ImportError:  # JupyterHub 5 checks tokens with Tornado's client: nothing to close
        return
    await JupyterHubHTTPClient.loop_instance().close()


class WestTekHubService(Application):
    """Serve the West Tek hub API; JupyterHub starts it as the managed service ``westtek``."""

    name = "westtek-hub"
    version = __version__
    description = "West Tek hub service: registry, admin panel, sharing, succession, audit."

    service_prefix = Unicode(
        config=True,
        help="URL prefix the hub's proxy routes to this service (JUPYTERHUB_SERVICE_PREFIX).",
    )

    @default("service_prefix")
    def _default_service_prefix(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/westtek/")

    ip = Unicode(config=True, help="Address to listen on (from JUPYTERHUB_SERVICE_URL).")

    @default("ip")
    def _default_ip(self) -> str:
        return urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "")).hostname or "127.0.0.1"

    port = Integer(config=True, help="Port to listen on (from JUPYTERHUB_SERVICE_URL).")

    @default("port")
    def _default_port(self) -> int:
        return urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "")).port or 10101

    data_dir = Unicode(
        config=True,
        help="Directory of the service's own data (received drift events); default: "
        "'hub' in West Tek's data directory.",
    )

    @default("data_dir")
    def _default_data_dir(self) -> str:
        return str(westtek_data_dir() / "hub")

    hub_auth = Instance(
        HubAuth,
        config=True,
        help="Checks JupyterHub API tokens with the hub (configure it as c.HubAuth.*; its "
        "defaults come from the service's JUPYTERHUB_* environment).",
    )

    @default("hub_auth")
    def _default_hub_auth(self) -> HubAuth:
        return HubAuth(parent=self)

    def make_app(self) -> web.Application:
        """Build the Tornado application with the route table under the service prefix."""
        prefix = self.service_prefix.rstrip("/")
        routes: list[Any] = [
            (rf"{prefix}/?", HomeHandler),
            (rf"{prefix}/api/status", StatusHandler),
            (rf"{prefix}/api/events", EventsHandler),
        ]
        return web.Application(
            routes,
            hub_auth=self.hub_auth,
            westtek_events=ReceivedEvents(Path(self.data_dir) / "events.sqlite3"),
        )

    def start(self) -> None:
        """Listen and serve until JupyterHub stops the service (SIGTERM or SIGINT)."""
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        app = self.make_app()
        server = app.listen(self.port, self.ip)
        self.log.info(
            "West Tek hub service at http://%s:%d%s", self.ip, self.port, self.service_prefix
        )
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopped.set)
        await stopped.wait()
        server.stop()
        app.settings["westtek_events"].close()
        await close_hub_http_client()
        self.log.info("West Tek hub service stopped")


main = WestTekHubService.launch_instance
