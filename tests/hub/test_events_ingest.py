"""The hub service's drift-event ingest: tokens checked with a (fake) hub API on 127.0.0.1.

HubAuth runs for real against a small Tornado app answering the hub's ``GET /hub/api/user``
the way JupyterHub does: the token owner's model, or 403 for an unknown token.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from traitlets.config import Config

from tests.conftest import free_port
from westtek_core.notify import Notifier
from westtek_hub.service import WestTekHubService, close_hub_http_client

TOKENS = {
    "alice-token": {"kind": "user", "name": "alice", "admin": False},
    "bob-token": {"kind": "user", "name": "bob", "admin": False},
    "overseer-token": {"kind": "user", "name": "overseer", "admin": True},
    "culler-token": {"kind": "service", "name": "idle-culler"},
}


class FakeHubUserAPI(web.RequestHandler):
    """``GET /hub/api/user``: who owns the token in the Authorization header."""

    def get(self) -> None:
        token = self.request.headers.get("Authorization", "").removeprefix("token ")
        if token not in TOKENS:
            self.set_status(403)
            self.finish({"status": 403, "message": "Forbidden"})
            return
        self.finish(TOKENS[token] | {"scopes": [], "groups": []})


def drift_event(event_id: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "time": 1_790_000_000.5,
        "environment_id": "alice-env",
        "baseline": "snap-0123",
        "status": "CRITICAL_DRIFT",
        "changes": [
            {
                "kind": "package",
                "name": "numpy",
                "change": "upgraded",
                "before": "1.26.4",
                "after": "2.0.0",
                "severity": "critical",
                "affected_notebooks": ["analysis.ipynb"],
                "reason": "numpy 1.26.4 → 2.0.0 breaks analysis.ipynb",
            }
        ],
        "resolved": [],
    } | extra


@pytest.fixture
async def hub_api() -> AsyncIterator[str]:
    port = free_port()
    server = web.Application([(r"/hub/api/user", FakeHubUserAPI)]).listen(port, "127.0.0.1")
    yield f"http://127.0.0.1:{port}/hub/api"
    server.stop()


class Service:
    """The hub service on 127.0.0.1, startable and stoppable (a hub service that is down)."""

    def __init__(self, hub_api: str, data_dir: Path) -> None:
        self.port = free_port()
        config = Config({"HubAuth": {"api_url": hub_api, "api_token": "service-token"}})
        self.app = WestTekHubService(
            config=config,
            service_prefix="/services/westtek/",
            ip="127.0.0.1",
            port=self.port,
            data_dir=str(data_dir),
        )
        self.url = f"http://127.0.0.1:{self.port}/services/westtek/api/events"
        self.server: Any = None

    def start(self) -> None:
        self.tornado_app = self.app.make_app()
        self.server = self.tornado_app.listen(self.port, "127.0.0.1")

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.tornado_app.settings["westtek_events"].close()
            self.server = None


@pytest.fixture
async def service(hub_api: str, tmp_path: Path) -> AsyncIterator[Service]:
    running = Service(hub_api, tmp_path / "hub-data")
    running.start()
    yield running
    running.stop()
    await close_hub_http_client()


Call = Callable[..., Awaitable[HTTPResponse]]


@pytest.fixture
def call(service: Service) -> Call:
    async def _call(method: str, token: str | None = None, body: Any = None, query: str = ""):
        headers = {"Authorization": f"token {token}"} if token else {}
        data = None if body is None else body if isinstance(body, bytes) else json.dumps(body)
        return await AsyncHTTPClient().fetch(
            service.url + query, method=method, headers=headers, body=data, raise_error=False
        )

    return _call


async def test_a_users_forwarded_event_is_stored_once(call):
    # When alice's server forwards an event, it is stored (201);
    first = await call("POST", "alice-token", drift_event(7))
    assert first.code == 201
    assert json.loads(first.body) == {"stored": True, "environment_id": "alice-env", "id": 7}
    # forwarding it again (a retry after a lost answer) stores nothing new (200).
    again = await call("POST", "alice-token", drift_event(7))
    assert (again.code, json.loads(again.body)["stored"]) == (200, False)
    listed = json.loads((await call("GET", "alice-token")).body)["events"]
    assert len(listed) == 1
    assert listed[0]["user"] == "alice" and listed[0]["changes"] == drift_event(7)["changes"]
    assert {k: listed[0][k] for k in drift_event(7)} == drift_event(7)


async def test_users_see_their_own_events_and_admins_everyones(call):
    await call("POST", "alice-token", drift_event(1))
    await call("POST", "bob-token", drift_event(1, environment_id="bob-env"))
    # the same environment_id and id from another user is another user's event
    assert (await call("POST", "bob-token", drift_event(1))).code == 201

    async def listed(token: str, query: str = "") -> list[tuple[str, str]]:
        body = json.loads((await call("GET", token, query=query)).body)
        return [(e["user"], e["environment_id"]) for e in body["events"]]

    assert await listed("alice-token") == [("alice", "alice-env")]
    assert await listed("bob-token") == [("bob", "bob-env"), ("bob", "alice-env")]
    assert await listed("overseer-token", "?environment_id=alice-env") == [
        ("alice", "alice-env"),
        ("bob", "alice-env"),
    ]


@pytest.mark.parametrize(
    "token", [None, "not-a-token", "culler-token"], ids=["no-token", "unknown", "service"]
)
async def test_only_a_users_hub_token_is_accepted(call, token):
    for method, body in (("POST", drift_event()), ("GET", None)):
        response = await call(method, token, body)
        assert response.code == 403
        assert response.headers["Content-Type"] == "application/json"
        assert "API token of a user" in json.loads(response.body)["message"]
    assert json.loads((await call("GET", "overseer-token")).body)["events"] == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not JSON"),
        ([1, 2], "JSON object"),
        (drift_event(id=None), "'id'"),
        (drift_event(environment_id=3), "'environment_id'"),
        (drift_event(status="FINE"), "'status'"),
        (drift_event(time="yesterday"), "'time'"),
        (drift_event(changes={}), "'changes'"),
    ],
)
async def test_a_malformed_event_is_refused_with_a_reason(call, body, problem):
    response = await call("POST", "alice-token", body)
    assert response.code == 400
    assert problem in json.loads(response.body)["message"]


async def test_hub_sink_forwards_through_an_outage_of_the_service(
    service, call, tmp_path, monkeypatch
):
    # Given a server under JupyterHub whose hub service is down,
    service.stop()
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "alice-token")
    monkeypatch.setenv("JUPYTERHUB_URL", f"http://127.0.0.1:{service.port}")
    monkeypatch.delenv("JUPYTERHUB_BASE_URL", raising=False)
    notifier = Notifier(outbox_path=str(tmp_path / "outbox.sqlite3"))
    try:
        assert notifier.publish(drift_event(1)) == ["hub"]
        assert notifier.publish(drift_event(2)) == ["hub"]
        # delivery fails and the events stay queued;
        assert await asyncio.to_thread(notifier.deliver_pending) == 0
        assert len(notifier.outbox.entries(state="pending")) == 2
        # once the service is back, they are delivered, in order, and stored by the hub.
        service.start()
        later = notifier.dispatcher.initial_delay + 1.0
        delivered = await asyncio.to_thread(
            notifier.deliver_pending, notifier.outbox.entries()[0].next_attempt + later
        )
        assert delivered == 2
    finally:
        notifier.stop()
    events = json.loads((await call("GET", "alice-token")).body)["events"]
    assert [(e["user"], e["id"]) for e in events] == [("alice", 1), ("alice", 2)]


def test_received_events_go_to_the_configured_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert WestTekHubService().data_dir == str(tmp_path / "xdg" / "westtek" / "hub")
