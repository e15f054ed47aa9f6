"""The JupyterHub roles every West Tek hub loads: one definition for the demo and AWS.

JupyterHub's built-in ``admin`` role holds ``access:servers`` (every user's notebook server,
after one click on the Authorize page) and ``tokens`` (any user's tokens), and it cannot be
narrowed. So West Tek's hub admins are not JupyterHub admins: they are the members of the
hub admins' group (:data:`westtek_core.labs.HUB_ADMINS_GROUP`), whose role holds what the
hub service's panel and JupyterHub's admin page need (list users, start and stop servers,
manage groups) and no way into a server. They act on environments through the hub
service, which checks each action against the lab rules and audits it. A JupyterHub admin
remains possible for IT's break-glass account, all-powerful by JupyterHub's design.
"""

from __future__ import annotations

import sys
from typing import Any

from westtek_core.labs import HUB_ADMINS_GROUP

SERVICE_NAME = "westtek"

# The hub service's least privileges: read and list users (their groups are their labs,
# their running servers count against lab quotas), start and stop their servers, reach
# their servers' West Tek API (a snapshot on request), list the hub's services (its nav bar).
SERVICE_SCOPES = (
    "read:users",
    "list:users",
    "servers",
    "access:servers",
    "list:services",
    "read:services",
)

# JupyterHub's admin page and the panel's actions, without access:servers or tokens.
HUB_ADMIN_SCOPES = (
    "admin-ui",
    "list:users",
    "read:users",
    "admin:servers",
    "admin:groups",
    "read:hub",
    "list:services",
    "read:services",
)


def suite_roles(
    service_name: str = SERVICE_NAME, hub_admins_group: str = HUB_ADMINS_GROUP
) -> list[dict[str, Any]]:
    """``c.JupyterHub.load_roles`` for a West Tek hub: the service's, the hub admins', users'."""
    return [
        {"name": "westtek-service", "scopes": list(SERVICE_SCOPES), "services": [service_name]},
        {
            "name": "westtek-hub-admin",
            "scopes": list(HUB_ADMIN_SCOPES),
            "groups": [hub_admins_group],
        },
        # every user may open the hub service (its panel and API) through OAuth
        {"name": "user", "scopes": ["self", f"access:services!service={service_name}"]},
    ]


IDLE_CULLER = "idle-culler"


def idle_culler(timeout_seconds: int = 3600) -> tuple[dict[str, Any], dict[str, Any]]:
    """jupyterhub-idle-culler as a hub service, and its role: stops idle servers.

    For ``c.JupyterHub.services`` and ``c.JupyterHub.load_roles``; a server idle for
    ``timeout_seconds`` is stopped. Its stop is the spawner's stop, so each server takes
    its before-stop automatic snapshot (westtek_core.autosnapshot) and nothing installed
    is lost when a container goes.
    """
    service = {
        "name": IDLE_CULLER,
        "command": [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--timeout={timeout_seconds}",
            f"--cull-every={max(60, timeout_seconds // 10)}",
        ],
    }
    role = {
        "name": IDLE_CULLER,
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": [IDLE_CULLER],
    }
    return service, role
