"""The base of the hub service's API handlers: who the caller is, JSON in and out, audit.

Every request carries a JupyterHub API token (a user's, or the OAuth cookie of the panel);
the service learns the caller's name from it and their groups from the hub (with its own
token, cached briefly), so a lab claimed in a body is always checked against the hub.
A cookie-authenticated request that changes state must also carry JupyterHub's XSRF token
(the ``X-XSRFToken`` header matching the service's ``_xsrf`` cookie); token requests need none.
Refusals are JSON ``{"message": ...}`` with 4xx and, from the registry, an audit entry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from jupyterhub.services.auth import HubAuth, HubOAuth, HubOAuthenticated
from sqlalchemy.orm import Session
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop

from westtek_core.labs import LabPolicy
from westtek_core.request_input import BadInput, parse_json
from westtek_hub import audit, registry
from westtek_hub.knowledge import LabKnowledge
from westtek_hub.metrics import WestTekMetrics
from westtek_hub.registry import Caller, Registry, RegistryError
from westtek_hub.stores import LabStores

T = TypeVar("T")
MAX_BODY = 1 << 20  # forwarded events and snapshot metadata are small; refuse floods
# Tornado's client refuses a body on any other method (GET, DELETE: a ValueError, so a 500)
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
CALLER_CACHE_SECONDS = 60.0  # group changes reach the service within a minute


class HubClient:
    """The service's own calls to the hub's REST API (user models, starting servers)."""

    def __init__(self, hub_auth: HubAuth) -> None:
        self.hub_auth = hub_auth
        self._users: dict[str, tuple[float, dict[str, Any]]] = {}

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """Call ``{hub_api_url}/{path}`` with the service's token; JSON in and out.

        ``body`` goes with POST, PUT and PATCH only (``{}`` when None).
        """
        if body is not None and method not in METHODS_WITH_BODY:
            raise ValueError(f"a {method} request to the hub carries no body")
        url = self.hub_auth.api_url.rstrip("/") + "/" + path.lstrip("/")
        request = HTTPRequest(
            url,
            method=method,
            headers={"Authorization": f"token {self.hub_auth.api_token}"},
            body=json.dumps(body or {}) if method in METHODS_WITH_BODY else None,
            request_timeout=30,
        )
        response = await AsyncHTTPClient().fetch(request, raise_error=True)
        return json.loads(response.body) if response.body else None

    async def user(self, name: str, fresh: bool = False) -> dict[str, Any] | None:
        """A user's model with groups (None if the hub has no such user).

        Cached for a few seconds; ``fresh`` asks the hub (a server's state changes faster).
        """
        cached = self._users.get(name)
        if cached and not fresh and time.monotonic() - cached[0] < CALLER_CACHE_SECONDS:
            return cached[1]
        try:
            model: dict[str, Any] = await self.request("GET", f"users/{quote(name)}")
        except HTTPClientError as e:
            if e.code == 404:
                return None
            raise
        self._users[name] = (time.monotonic(), model)
        return model

    async def running_servers(self, policy: LabPolicy) -> dict[str, int]:
        """Lab → how many of its members' servers run now (one hub call, ``list:users``)."""
        users = await self.request("GET", "users?state=active")
        counts: dict[str, int] = {}
        for model in users or []:
            servers = len(model.get("servers") or {}) or (1 if model.get("server") else 0)
            for lab in Caller.from_model(model, policy).labs:
                counts[lab] = counts.get(lab, 0) + servers
        return counts


async def audited_hub_request(
    hub: HubClient,
    registry: Registry,
    caller: Caller,
    action: str,
    target: str,
    lab_id: str,
    detail: dict[str, Any],
    method: str,
    path: str,
    body: Any = None,
) -> Any:
    """Ask the hub, then audit what it answered: ``ok``, or ``error`` with its status.

    The entry is written after the answer so the log never says a server started or
    stopped when the hub refused; the hub's error is raised again for the caller to map.
    """
    try:
        answer = await hub.request(method, path, body)
    except (HTTPClientError, OSError) as e:
        failed = detail | {
            "hub_status": e.code if isinstance(e, HTTPClientError) else None,
            "reason": str(e),
        }
        registry.run(
            caller,
            action,
            target,
            lambda s: audit.append(
                s, caller.name, action, target, lab_id=lab_id, outcome="error", detail=failed
            ),
        )
        raise
    registry.run(
        caller,
        action,
        target,
        lambda s: audit.append(s, caller.name, action, target, lab_id=lab_id, detail=detail),
    )
    return answer


class APIHandler(HubOAuthenticated, web.RequestHandler):
    """JSON in and out; the caller from the token; registry errors as 4xx."""

    @property
    def hub_auth(self) -> HubAuth:
        """The service's HubAuth (HubOAuth when the hub gave the service an OAuth client)."""
        found: HubAuth = self.settings["hub_auth"]
        return found

    @property
    def metrics(self) -> WestTekMetrics | None:
        """The service's metrics, if the app has them."""
        found: WestTekMetrics | None = self.settings.get("westtek_metrics")
        return found

    def on_finish(self) -> None:
        """Time the request in the service's metrics."""
        if self.metrics is not None:
            self.metrics.observe_request(self)

    def get_current_user(self) -> Any:
        """The hub user the async checks found so far: never a blocking call to the hub."""
        return getattr(self, "_cached_hub_user", None)

    @property
    def registry(self) -> Registry:
        """The registry."""
        found: Registry = self.settings["westtek_registry"]
        return found

    @property
    def stores(self) -> LabStores:
        """The labs' snapshot stores."""
        found: LabStores = self.settings["westtek_lab_stores"]
        return found

    @property
    def knowledge(self) -> LabKnowledge:
        """The labs' memories."""
        found: LabKnowledge = self.settings["westtek_knowledge"]
        return found

    @property
    def hub(self) -> HubClient:
        """The service's hub API client."""
        found: HubClient = self.settings["westtek_hub_client"]
        return found

    def check_xsrf_cookie(self) -> None:
        """JupyterHub's XSRF check for cookie-authenticated requests that change state.

        HubOAuth calls it before it accepts the OAuth cookie; token requests skip it.
        """
        if isinstance(self.hub_auth, HubOAuth):
            self.hub_auth.check_xsrf_cookie(self)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Answer errors as JSON."""
        message = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message}))

    def reply(self, payload: Any, status: int = 200) -> None:
        """Answer JSON."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload, default=str))

    def body(self, caller: Caller, action: str) -> dict[str, Any]:
        """The JSON object in the body; otherwise a 400 (413 when oversized), audited."""
        problem: RegistryError | None = None
        parsed: Any = None
        if len(self.request.body or b"") > MAX_BODY:
            problem = registry.TooLarge(f"the body is larger than {MAX_BODY} bytes")
        else:
            try:
                parsed = parse_json(self.request.body or b"null")
            except BadInput as e:
                problem = registry.Invalid(str(e))
            else:
                if not isinstance(parsed, dict):
                    problem = registry.Invalid("the body must be a JSON object")
        if problem is not None:
            error = problem
            self.run(caller, action, "", lambda _: registry.refuse(error))
        return dict(parsed)

    def remember(
        self, snapshot_id: str, lab_id: str | None = None, stored_id: str | None = None
    ) -> None:
        """Add a registered snapshot to a lab's memory in a worker thread (logged on failure).

        Nothing of it runs on the request: the registry and the store are read there. See
        ``LabKnowledge.remember`` for ``lab_id`` and ``stored_id``.
        """
        knowledge = self.knowledge
        if not knowledge.active:
            return
        work = IOLoop.current().run_in_executor(
            None, knowledge.remember, self.registry.sessions, snapshot_id, lab_id, stored_id
        )

        def done(finished: Any) -> None:
            if finished.exception() is not None:
                knowledge.log.warning("the lab memory did not add snapshot %s: %s",
                                      snapshot_id[:12], finished.exception())  # fmt: skip

        work.add_done_callback(done)

    async def caller(self) -> Caller:
        """Who is asking (403 without a user's token or OAuth cookie)."""
        hub_auth: HubAuth = self.settings["hub_auth"]
        token = hub_auth.get_token(self, in_cookie=False)
        model = await hub_auth.user_for_token(token, sync=False) if token else None
        if model is None and isinstance(hub_auth, HubAuth):
            if not token and isinstance(hub_auth, HubOAuth) and hub_auth.get_token(self):
                self.check_xsrf_cookie()  # the OAuth cookie alone never changes state
            model = await hub_auth.get_user(self, sync=False)
        if not model or model.get("kind", "user") != "user":
            raise web.HTTPError(403, "a JupyterHub API token of a user is required")
        full = await self.hub.user(str(model["name"])) or model
        caller = Caller.from_model(full, self.registry.policy)
        try:
            self.registry.check_rate(caller)
        except RegistryError as e:
            raise web.HTTPError(e.status, str(e)) from None
        return caller

    async def running_servers(self) -> dict[str, int]:
        """Lab → how many of its members' servers run now (502 when the hub does not say)."""
        try:
            return await self.hub.running_servers(self.registry.policy)
        except HTTPClientError as e:
            raise web.HTTPError(502, f"the hub did not list running servers ({e.code})") from None

    def run(self, caller: Caller, action: str, target: str, work: Callable[[Session], T]) -> T:
        """A registry operation; its refusal becomes the matching 4xx."""
        try:
            return self.registry.run(caller, action, target, work)
        except RegistryError as e:
            raise web.HTTPError(e.status, str(e)) from None
