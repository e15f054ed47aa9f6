"""What the panel asks the hub: users' running servers and the Services menu."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tornado.httpclient import HTTPClientError

from westtek_hub.api_base import HubClient

SERVICES_CACHE_SECONDS = 60.0


async def active_servers(hub: HubClient, page: int = 200) -> dict[str, dict[str, Any]] | None:
    """Every active user's servers from ``GET users?state=active``; None if the hub refuses."""
    found: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        try:
            items = await hub.request("GET", f"users?state=active&offset={offset}&limit={page}")
        except (HTTPClientError, OSError, ValueError):
            return None
        if not isinstance(items, list):
            return None
        for user in items:
            found[str(user.get("name"))] = dict(user.get("servers") or {})
        if len(items) < page:
            return found
        offset += page


async def servers_of(hub: HubClient, users: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The servers of ``users``: one walk of the active users, else one call per user."""
    names = sorted(set(users))
    active = await active_servers(hub) if names else {}
    if active is not None:
        return {name: active.get(name, {}) for name in names}

    async def one(name: str) -> dict[str, Any]:
        try:
            model = await hub.user(name)
        except (HTTPClientError, OSError):
            return {}
        return dict((model or {}).get("servers") or {})

    found = await asyncio.gather(*(one(n) for n in names))
    return dict(zip(names, found, strict=True))


@dataclass
class ServicesMenu:
    """The hub's services for the nav bar's Services menu, cached briefly."""

    fetched: float = 0.0
    services: list[dict[str, str]] | None = None

    async def get(self, hub: HubClient, own: dict[str, str]) -> list[dict[str, str]]:
        """``[{name, href}]`` of displayed services; only this one if the hub won't say."""
        loop = asyncio.get_running_loop()
        if self.services is not None and loop.time() - self.fetched < SERVICES_CACHE_SECONDS:
            return self.services
        try:
            models = await hub.request("GET", "services")
        except (HTTPClientError, OSError, ValueError):
            models = None  # the service's role lacks read:services: list itself only
        services = [own]
        if isinstance(models, dict):
            services = [
                {"name": str(name), "href": str(m.get("prefix") or "")}
                for name, m in sorted(models.items())
                if isinstance(m, dict) and m.get("display", True) and m.get("prefix")
            ] or [own]
        self.services, self.fetched = services, loop.time()
        return services
