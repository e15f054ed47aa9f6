"""Which West Tek environment a server is for, and what it takes over.

The spawner's part of the environment-id rule (``westtek_core.labs``): a server launched
by the hub service for an environment is that one; otherwise the user's own id for the
server, past any environment handed over from it (the hub service names the next
generation, ``westtek_hub.environment_ids``); and a take-over launch's environment and
predecessor, from the hub service's ``user_options``.
"""

from __future__ import annotations

import re
from logging import Logger, LoggerAdapter
from typing import Any

from westtek_core.labs import environment_id_of, in_namespace_of
from westtek_spawner.report import ask_own_environment_id, own_environment_id_url

SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}")
"""What an id from ``user_options`` may be: it reaches a command line and file names."""


class EnvironmentIdentity:
    """The environment id and take-over of a ``WestTekSpawner`` (a mixin of its traits)."""

    # provided by the spawner (JupyterHub's and WestTekSpawner's traits)
    user: Any
    user_options: dict[str, Any]
    name: str
    api_token: str
    environment_id_template: str
    report_to_hub_service: bool
    hub_service_name: str
    hub_service_base_url: str
    log: Logger | LoggerAdapter[Logger]
    _log_name: str

    _own_environment_id = ""

    @property
    def environment_id(self) -> str:
        """The West Tek environment id of this server.

        The one the hub service launched it for (``user_options["westtek_environment"]``),
        else the user's own (see ``environment_id_template``).
        """
        launched = self.user_options.get("westtek_environment")
        if launched and SAFE_ID.fullmatch(str(launched)):
            return str(launched)
        if self._own_environment_id:
            return self._own_environment_id
        return self.default_environment_id

    @property
    def default_environment_id(self) -> str:
        """The user's id for this server by ``environment_id_template``."""
        return environment_id_of(
            self.environment_id_template.format(username=self.user.name), self.name
        )

    async def ask_environment_id(self) -> None:
        """Ask the hub service which id this server reports as (before each start).

        After the user's environment was handed to a successor, the id still names it;
        the service answers the next generation of the user's id (``bob:@2``), so the new
        server's snapshots and reports are the user's own. Without an answer (the service
        down, reports off) the server keeps the default id.
        """
        self._own_environment_id = ""
        if not self.report_to_hub_service or self.user_options.get("westtek_environment"):
            return
        base = self._hub_service_base()
        if not base:
            return
        default = self.default_environment_id
        url = own_environment_id_url(base, self.name, self.hub_service_name)
        found = await ask_own_environment_id(url, self.api_token, self.log)
        # only an id of the user's own namespace for this server is taken
        if found and found != default and SAFE_ID.fullmatch(found):
            if found.startswith(default) and in_namespace_of(self.user.name, found):
                self.log.info("%s reports as %s (%s was handed over)", self._log_name, found,
                              default)  # fmt: skip
                self._own_environment_id = found

    @property
    def take_over(self) -> tuple[str, str] | None:
        """The environment and predecessor a take-over launch brings in, if this is one.

        The hub service launches a successor's server with ``user_options``
        ``westtek_take_over`` (the environment) and ``westtek_predecessor``: the pre-start
        step brings the environment's latest snapshot into the workspace, and the server
        opens on its start page.
        """
        environment = self.user_options.get("westtek_take_over")
        predecessor = self.user_options.get("westtek_predecessor")
        if all(value and SAFE_ID.fullmatch(str(value)) for value in (environment, predecessor)):
            return str(environment), str(predecessor)
        return None

    def _hub_service_base(self) -> str:
        """Where the hub service is reached: the configured URL, else the proxy's."""
        if self.hub_service_base_url:
            return self.hub_service_base_url
        proxy = (getattr(self.user, "settings", None) or {}).get("proxy")
        return str(getattr(proxy, "public_url", "") or "")
