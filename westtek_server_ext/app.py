"""The ExtensionApp that registers West Tek's handlers on a Jupyter server."""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp

from westtek_server_ext.handlers import handler_routes


class WestTekExtension(ExtensionApp):
    """Serve West Tek's REST API at ``{base_url}westtek/api/``."""

    name = "westtek_server_ext"
    description = "West Tek Environment Preservation"

    def initialize_handlers(self) -> None:
        """Register the route table; ExtensionApp prefixes each pattern with base_url."""
        self.handlers.extend(handler_routes())
