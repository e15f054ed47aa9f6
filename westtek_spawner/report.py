"""What the spawner tells and asks the West Tek hub service.

Before a start it asks which environment id the server reports as (the owner's own, past
any environment handed over from it); after a successful start it PUTs the server's
``container_info`` (task ARN, cluster, Jupyter URL, EFS access point) and image digest to
the hub service's Environment record. Neither is a condition of the spawn: every failure
is logged and swallowed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

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


async def ask_own_environment_id(
    url: str,
    api_token: str,
    log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    timeout: float = 10.0,
) -> str | None:
    """The id the hub service says the server reports as; None when it cannot say."""
    request = HTTPRequest(
        url,
        headers={"Authorization": f"token {api_token}"},
        connect_timeout=timeout,
        request_timeout=timeout,
    )
    try:
        response = await AsyncHTTPClient().fetch(request)
        found = json.loads(response.body)["environment_id"]
    except Exception as e:  # the default id is never worth a failed spawn
        log.warning("Could not ask %s for the environment id: %s", url, e)
        return None
    return str(found)


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
