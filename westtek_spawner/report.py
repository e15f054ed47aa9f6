"""What the spawner tells and asks the West Tek hub service.

Before a start it asks which environment id the server reports as (the owner's own, past
any environment handed over from it) and the lab's automatic-snapshot settings (passed to
the server as environment variables); after a successful start it PUTs the server's
``container_info`` (task ARN, cluster, Jupyter URL, EFS access point) and image digest to
the hub service's Environment record. Neither is a condition of the spawn: every failure
is logged and swallowed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from westtek_core.autosnapshot_settings import to_environment

CONTAINER_INFO_KEYS = ("task_arn", "cluster", "jupyter_url", "efs_access_point")


def container_report_url(hub_url: str, environment_id: str, service_name: str = "westtek") -> str:
    """``{hub_url}services/{service}/api/environments/{id}/container`` (the id URL-quoted)."""
    base = hub_url if hub_url.endswith("/") else hub_url + "/"
    return (
        f"{base}services/{quote(service_name, safe='')}/api/environments/"
        f"{quote(environment_id, safe='')}/container"
    )


def own_environment_id_url(hub_url: str, server_name: str, service_name: str = "westtek") -> str:
    """``{hub_url}services/{service}/api/environments/own-id?server_name=…``."""
    base = hub_url if hub_url.endswith("/") else hub_url + "/"
    return (
        f"{base}services/{quote(service_name, safe='')}/api/environments/own-id"
        f"?server_name={quote(server_name, safe='')}"
    )


def auto_snapshots_url(hub_url: str, lab_id: str, service_name: str = "westtek") -> str:
    """``{hub_url}services/{service}/api/labs/{lab}/auto-snapshots`` (the lab URL-quoted)."""
    base = hub_url if hub_url.endswith("/") else hub_url + "/"
    return (
        f"{base}services/{quote(service_name, safe='')}/api/labs/"
        f"{quote(lab_id, safe='')}/auto-snapshots"
    )


async def _get_json(url: str, api_token: str, timeout: float) -> Any:
    """GET ``url`` with the server's own API token; its JSON answer."""
    request = HTTPRequest(
        url,
        headers={"Authorization": f"token {api_token}"},
        connect_timeout=timeout,
        request_timeout=timeout,
    )
    response = await AsyncHTTPClient().fetch(request)
    return json.loads(response.body)


async def ask_own_environment_id(
    url: str,
    api_token: str,
    log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    timeout: float = 10.0,
) -> str | None:
    """The id the hub service says the server reports as; None when it cannot say."""
    try:
        found = (await _get_json(url, api_token, timeout))["environment_id"]
    except Exception as e:  # the default id is never worth a failed spawn
        log.warning("Could not ask %s for the environment id: %s", url, e)
        return None
    return str(found)


async def ask_auto_snapshot_environment(
    url: str,
    api_token: str,
    log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    timeout: float = 10.0,
) -> dict[str, str]:
    """The server's variables for what its lab set of its automatic snapshots.

    None for what the lab left to the defaults, and none at all when the hub service cannot
    say (down, refusing, answering nonsense): the server then starts with the defaults.
    """
    try:
        return to_environment((await _get_json(url, api_token, timeout))["settings"])
    except Exception as e:  # automatic snapshots with the defaults beat a failed spawn
        log.warning("Could not ask %s for the lab's automatic-snapshot settings, so the "
                    "server starts with the defaults: %s", url, e)  # fmt: skip
        return {}


async def report_container(
    url: str,
    api_token: str,
    container_info: Mapping[str, str],
    image_digest: str,
    log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    timeout: float = 10.0,
) -> bool:
    """PUT the container's facts to ``url``; True when the service took them.

    The body is ``{"container_info": {task_arn, cluster, jupyter_url, efs_access_point},
    "image_digest": ...}``; missing facts are sent as empty strings so the shape is fixed.
    The server's own API token authenticates the call (``Authorization: token …``).
    """
    body = {
        "container_info": {key: str(container_info.get(key) or "") for key in CONTAINER_INFO_KEYS},
        "image_digest": image_digest,
    }
    request = HTTPRequest(
        url,
        method="PUT",
        body=json.dumps(body),
        headers={"Authorization": f"token {api_token}", "Content-Type": "application/json"},
        connect_timeout=timeout,
        request_timeout=timeout,
    )
    try:
        await AsyncHTTPClient().fetch(request)
    except HTTPClientError as e:
        log.warning("Could not report the container to %s: HTTP %s", url, e.code)
        return False
    except Exception as e:  # the registry is never worth a failed spawn
        log.warning("Could not report the container to %s: %s", url, e)
        return False
    log.info("Reported the container of %s to the hub service", url)
    return True
