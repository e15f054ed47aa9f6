"""The hub service's web application (a JupyterHub managed service)."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any
from urllib.parse import urlparse

from tornado import escape, web
from traitlets import Integer, Unicode, default
from traitlets.config import Application

from westtek_core.status import Capability, status_report
from westtek_core.version import __version__


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

    def make_app(self) -> web.Application:
        """Build the Tornado application with the route table under the service prefix."""
        prefix = self.service_prefix.rstrip("/")
        routes: list[Any] = [
            (rf"{prefix}/?", HomeHandler),
            (rf"{prefix}/api/status", StatusHandler),
        ]
        return web.Application(routes)

    def start(self) -> None:
        """Listen and serve until JupyterHub stops the service (SIGTERM or SIGINT)."""
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        server = self.make_app().listen(self.port, self.ip)
        self.log.info(
            "West Tek hub service at http://%s:%d%s", self.ip, self.port, self.service_prefix
        )
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopped.set)
        await stopped.wait()
        server.stop()
        self.log.info("West Tek hub service stopped")


main = WestTekHubService.launch_instance
