"""Thin Tornado handlers over westtek_core; every verb is authenticated and authorized."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from westtek_core.status import Capability, status_report

API_PREFIX = "/westtek/api"


class WestTekAPIHandler(ExtensionHandlerMixin, APIHandler):
    """Base of every West Tek handler: JSON errors and one authorization resource."""

    auth_resource = "westtek"


class StatusHandler(WestTekAPIHandler):
    """``GET westtek/api/status``: version and the capabilities present on this server."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        """Answer the status report."""
        report = status_report("server-extension", extra=(Capability.SERVER_EXTENSION,))
        self.finish(report.to_json())


def handler_routes() -> list[tuple[str, Any]]:
    """The route table, relative to the server's base_url."""
    return [(rf"{API_PREFIX}/status", StatusHandler)]
