"""Reporting a started server's container to the hub service, against a local HTTP server."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from tests.conftest import free_port
from tests.spawner.conftest import make_ecs_spawner, make_user
from westtek_spawner import WestTekSpawner
from westtek_spawner.report import container_report_url, report_container

LOG = logging.getLogger("test-report")


class FakeHubService:
    """Records PUTs to services/westtek/api/environments/{id}/container."""

    def __init__(self, status: int = 200, own_id: str = "") -> None:
        self.requests: list[dict] = []
        self.asked: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - environments/own-id
                fake.asked.append(self.path)
                body = json.dumps({"environment_id": own_id}).encode()
                self.send_response(status if own_id else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fake.requests.append(
                    {
                        "path": self.path,
                        "authorization": self.headers.get("Authorization"),
                        "content_type": self.headers.get("Content-Type"),
                        "body": json.loads(body),
                    }
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub_service():
    service = FakeHubService()
    yield service
    service.close()


def test_the_url_quotes_the_environment_id():
    assert container_report_url("http://hub:8000/", "alice:thesis") == (
        "http://hub:8000/services/westtek/api/environments/alice%3Athesis/container"
    )
    assert container_report_url("http://hub:8000", "alice", "wt").endswith(
        "/services/wt/api/environments/alice/container"
    )


async def test_the_container_is_put_with_the_servers_token(hub_service):
    url = container_report_url(hub_service.url, "alice")
    info = {
        "task_arn": "arn:aws:ecs:us-east-1:1:task/westtek/abc",
        "cluster": "westtek",
        "jupyter_url": "https://hub.example.org/user/alice/",
        "efs_access_point": "fsap-0123",
    }
    assert await report_container(url, "server-token", info, "sha256:feed", LOG)
    assert hub_service.requests == [
        {
            "path": "/services/westtek/api/environments/alice/container",
            "authorization": "token server-token",
            "content_type": "application/json",
            "body": {"container_info": info, "image_digest": "sha256:feed"},
        }
    ]


async def test_missing_facts_are_sent_empty_so_the_shape_is_fixed(hub_service):
    url = container_report_url(hub_service.url, "bob")
    await report_container(url, "t", {"jupyter_url": "http://x/user/bob/"}, "", LOG)
    assert hub_service.requests[0]["body"] == {
        "container_info": {
            "task_arn": "",
            "cluster": "",
            "jupyter_url": "http://x/user/bob/",
            "efs_access_point": "",
        },
        "image_digest": "",
    }


async def test_a_refusal_or_an_absent_service_is_logged_never_raised(caplog):
    refusing = FakeHubService(status=403)
    try:
        url = container_report_url(refusing.url, "alice")
        assert not await report_container(url, "t", {}, "", LOG)
    finally:
        refusing.close()
    nobody = container_report_url(f"http://127.0.0.1:{free_port()}/", "alice")
    assert not await report_container(nobody, "t", {}, "", LOG, timeout=2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("HTTP 403" in w for w in warnings)
    assert any(
        "Could not report the container to" in w and "Connection refused" in w for w in warnings
    ), warnings


async def test_a_started_ecs_server_is_reported_to_the_hub_service(
    aws, world, fargate, hub_service
):
    spawner = make_ecs_spawner(world, fargate, hub_service_base_url=hub_service.url)
    spawner.user.settings = {"proxy": SimpleNamespace(public_url="https://hub.example.org/")}
    await spawner.start()
    assert await spawner._report_task
    (request,) = hub_service.requests
    state = spawner.get_state()["westtek"]
    assert request["path"] == "/services/westtek/api/environments/alice/container"
    assert request["authorization"] == "token token-alice"
    assert request["body"] == {
        "container_info": {
            "task_arn": state["task_arn"],
            "cluster": world["cluster"],
            "jupyter_url": "https://hub.example.org/user/alice/",
            "efs_access_point": state["access_point_id"],
        },
        "image_digest": spawner.backend_impl.image_digest(),
    }
    assert request["body"]["image_digest"].startswith("sha256:")
    await spawner.stop(now=True)


async def test_reporting_can_be_turned_off(aws, world, fargate, hub_service):
    spawner = make_ecs_spawner(
        world, fargate, hub_service_base_url=hub_service.url, report_to_hub_service=False
    )
    await spawner.start()
    assert spawner._report_task is None and hub_service.requests == []
    await spawner.stop(now=True)


@pytest.mark.parametrize(
    ("answered", "server", "used"),
    [
        ("alice:@2", "", "alice:@2"),  # her "alice" was handed over: the next generation
        ("alice:gpu@3", "gpu", "alice:gpu@3"),
        ("bob:@2", "", "alice"),  # never another user's id
        ("alice:other", "gpu", "alice:gpu"),  # nor another server's
        ("", "", "alice"),  # the service cannot say: the default
    ],
)
async def test_the_server_reports_under_the_id_the_hub_service_names(answered, server, used):
    service = FakeHubService(own_id=answered)
    try:
        spawner = WestTekSpawner(
            user=make_user("alice"),
            orm_spawner=SimpleNamespace(name=server, display_name=server, server=None),
            hub_service_base_url=service.url,
            api_token="server-token",
        )
        await spawner.ask_environment_id()
        assert spawner.environment_id == used
        assert service.asked == [f"/services/westtek/api/environments/own-id?server_name={server}"]
    finally:
        service.close()
    # and a launch for a given environment, or reports off, asks nothing
    spawner.user_options = {"westtek_environment": "alice"}
    await spawner.ask_environment_id()
    assert spawner.environment_id == "alice"


async def test_an_absent_hub_service_leaves_the_default_id():
    spawner = WestTekSpawner(
        user=make_user("alice"),
        hub_service_base_url=f"http://127.0.0.1:{free_port()}/",
        api_token="t",
    )
    await spawner.ask_environment_id()
    assert spawner.environment_id == "alice"
