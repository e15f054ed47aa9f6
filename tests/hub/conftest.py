"""The hub service against a fake JupyterHub REST API on 127.0.0.1, on SQLite and PostgreSQL.

HubAuth runs for real against a small Tornado app that answers the hub's ``/hub/api/user``
(who owns a token), ``/hub/api/users/{name}`` (a user's groups and servers, for the
service's own token) and records server starts and stops. The registry runs on SQLite and
on a real PostgreSQL server (Debian's, started here on a loopback port).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from traitlets.config import Config

from tests.conftest import free_port
from tests.postgres_server import create_database, postgres_bin, running_postgres
from tests.store_contents import store_snapshot  # noqa: F401 - the hub tests' helper
from westtek_hub.archived_launches import waiting_launches_of
from westtek_hub.db import make_engine, session_factory
from westtek_hub.models import Lab
from westtek_hub.service import (
    WestTekHubService,
    close_hub_http_client,
    start_background_work,
)

SERVICE_TOKEN = "service-token"
# name → (admin, groups): researchers and lab admins of two labs, and a hub admin
USERS: dict[str, tuple[bool, list[str]]] = {
    "alice": (False, ["vault-13"]),
    "bob": (False, ["vault-13"]),
    "dana": (False, ["vault-13", "vault-13-admins"]),
    "carol": (False, ["vault-101"]),
    "erin": (False, ["vault-101", "vault-101-admins"]),
    "overseer": (True, []),
    "drifter": (False, []),
}
TOKENS: dict[str, dict[str, Any]] = {
    f"{name}-token": {"kind": "user", "name": name, "admin": admin}
    for name, (admin, _) in USERS.items()
} | {"culler-token": {"kind": "service", "name": "idle-culler"}}


class FakeHub:
    """What the service asks the hub: token owners, user models, server starts and stops."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str, dict[str, Any]]] = []
        self.stopped: list[tuple[str, str]] = []
        self.running: dict[str, str] = {}  # user → their server's URL path
        self.failing: int | None = None  # when set, server starts and stops answer this status
        self.server_posts: list[tuple[str, str, dict[str, Any]]] = []  # user, API path, body

    def app(self) -> web.Application:
        hub = self

        class UserForToken(web.RequestHandler):
            def get(self) -> None:
                token = self.request.headers.get("Authorization", "").removeprefix("token ")
                if token not in TOKENS:
                    self.set_status(403)
                    self.finish({"status": 403, "message": "Forbidden"})
                    return
                self.finish(TOKENS[token] | {"scopes": []})

        def model(name: str) -> dict[str, Any]:
            admin, groups = USERS[name]
            servers = {"": {"ready": True, "url": hub.running[name]}} if name in hub.running else {}
            return {"kind": "user", "name": name, "admin": admin, "groups": groups,
                    "servers": servers}  # fmt: skip

        def service_only(handler: web.RequestHandler) -> None:
            token = handler.request.headers.get("Authorization", "").removeprefix("token ")
            if token != SERVICE_TOKEN:
                raise web.HTTPError(403)

        class UserModel(web.RequestHandler):
            def get(self, name: str) -> None:
                service_only(self)
                if name not in USERS:
                    raise web.HTTPError(404)
                self.finish(model(name))

        class ActiveUsers(web.RequestHandler):
            def get(self) -> None:
                service_only(self)
                assert self.get_argument("state") == "active"
                self.finish(json.dumps([model(name) for name in hub.running]))

        class ServerControl(web.RequestHandler):
            def post(self, name: str, server: str = "") -> None:
                if hub.failing:
                    raise web.HTTPError(hub.failing)
                hub.started.append((name, server, json.loads(self.request.body or b"{}")))
                self.set_status(202)
                self.finish()

            def delete(self, name: str, server: str = "") -> None:
                if self.request.body:  # JupyterHub's stop takes no body
                    raise web.HTTPError(400, "unexpected body")
                if hub.failing:
                    raise web.HTTPError(hub.failing)
                hub.stopped.append((name, server))
                self.set_status(204)
                self.finish()

        class UserServerAPI(web.RequestHandler):
            """A running server's West Tek API, as the service reaches it through the proxy."""

            def post(self, name: str, path: str) -> None:
                service_only(self)
                hub.server_posts.append((name, path, json.loads(self.request.body or b"{}")))
                self.set_status(202)
                self.finish({"id": "0123456789abcdef", "kind": path, "state": "running"})

        return web.Application(
            [
                (r"/user/([^/]+)/westtek/api/(.+)", UserServerAPI),
                (r"/hub/api/user", UserForToken),
                (r"/hub/api/users", ActiveUsers),
                (r"/hub/api/users/([^/]+)", UserModel),
                (r"/hub/api/users/([^/]+)/server", ServerControl),
                (r"/hub/api/users/([^/]+)/servers/([^/]*)", ServerControl),
            ]
        )


@pytest.fixture
async def fake_hub() -> AsyncIterator[tuple[FakeHub, str]]:
    hub = FakeHub()
    port = free_port()
    server = hub.app().listen(port, "127.0.0.1")
    yield hub, f"http://127.0.0.1:{port}/hub/api"
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server on a loopback port for the session; yields its base URL."""
    if postgres_bin() is None:
        pytest.fail("PostgreSQL is not installed: `make test` installs Debian's postgresql")
    with running_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A fresh, empty registry database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite'}"
    return create_database(request.getfixturevalue("postgres_server"), f"t{time.monotonic_ns()}")


class Service:
    """The hub service on 127.0.0.1, startable and stoppable (a hub service that is down)."""

    def __init__(
        self,
        hub_api: str,
        db_url: str,
        data_dir: Path,
        quotas: dict[str, Any] | None = None,
        lab_stores: Path | None = None,
        extra_config: Config | None = None,
    ) -> None:
        self.port = free_port()
        config = Config({"HubAuth": {"api_url": hub_api, "api_token": SERVICE_TOKEN}})
        if extra_config:
            config.merge(extra_config)
        if quotas:
            config.WestTekHubService.quotas = quotas
        if lab_stores:
            config.LabStores.store_template = str(lab_stores / "{lab_id}")
        self.app = WestTekHubService(
            config=config,
            service_prefix="/services/westtek/",
            ip="127.0.0.1",
            port=self.port,
            data_dir=str(data_dir),
            db_url=db_url,
            lab_groups=["vault-13", "vault-101"],
        )
        self.base = f"http://127.0.0.1:{self.port}/services/westtek/api/"
        self.server: Any = None

    def start(self) -> None:
        self.tornado_app = self.app.make_app()
        self.server = self.tornado_app.listen(self.port, "127.0.0.1")
        start_background_work(self.tornado_app)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            waiting_launches_of(self.tornado_app).stop()
            self.tornado_app.settings["westtek_knowledge"].close()
            self.tornado_app.settings["westtek_engine"].dispose()
            self.server = None


@pytest.fixture
def quotas() -> dict[str, Any]:
    """Per-lab quotas for the service (none by default; tests override this fixture)."""
    return {}


@pytest.fixture
def lab_stores(tmp_path: Path) -> Path | None:
    """The directory of the labs' snapshot stores, one per lab (tests may override it)."""
    return tmp_path / "stores"


@pytest.fixture
async def service(
    fake_hub, db_url: str, tmp_path: Path, quotas, lab_stores
) -> AsyncIterator[Service]:
    running = Service(fake_hub[1], db_url, tmp_path / "hub-data", quotas, lab_stores)
    running.start()
    yield running
    running.stop()
    await close_hub_http_client()


Call = Callable[..., Awaitable[HTTPResponse]]


@pytest.fixture
def api(service: Service) -> Call:
    """``await api(method, path, user, body)``: a request with ``user``'s token (or ``token``)."""

    async def _call(
        method: str, path: str, user: str | None = None, body: Any = None, token: str | None = None
    ):
        token = token or (f"{user}-token" if user else None)
        headers = {"Authorization": f"token {token}"} if token else {}
        data = None if body is None else body if isinstance(body, bytes) else json.dumps(body)
        if data is None and method in ("POST", "PUT"):
            data = "{}"
        return await AsyncHTTPClient().fetch(
            service.base + path, method=method, headers=headers, body=data, raise_error=False
        )

    return _call


def answer(response: HTTPResponse) -> Any:
    """A response's JSON body."""
    return json.loads(response.body) if response.body else None


def add_lab(db_url: str, lab_id: str) -> None:
    """A lab the registry knows though nobody of it reported yet (a share's recipient)."""
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        session.add(Lab(id=lab_id))
        session.commit()
    engine.dispose()
