"""Thin Tornado handlers over westtek_core; every verb is authenticated and authorized."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_path
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from westtek_core.status import Capability, status_report

API_PREFIX = "/westtek/api"


class WestTekAPIHandler(ExtensionHandlerMixin, APIHandler):
    """Base of every West Tek handler: JSON errors and one authorization resource."""

    auth_resource = "westtek"


def labextension_installed() -> bool:
    """Whether this server's JupyterLab can load the prebuilt West Tek lab extension."""
    from westtek_server_ext import LABEXTENSION_NAME

    return any(
        (Path(root) / LABEXTENSION_NAME / "package.json").exists()
        for root in jupyter_path("labextensions")
    )


class StatusHandler(WestTekAPIHandler):
    """``GET westtek/api/status``: version and the capabilities present on this server."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        """Answer the status report."""
        present = [Capability.SERVER_EXTENSION]
        if labextension_installed():
            present.append(Capability.LAB_EXTENSION)
        self.finish(status_report("server-extension", extra=tuple(present)).to_json())


def handler_routes() -> list[tuple[str, Any]]:
    """The route table, relative to the server's base_url."""
    return [(rf"{API_PREFIX}/status", StatusHandler)]
