"""Fixtures for the spawner: loopback only, AWS on a moto server, a stand-in for Fargate."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from jupyterhub.objects import Hub

from tests.core.store.conftest import moto_endpoint  # noqa: F401 (a fixture)
from tests.loopback import allow_only_loopback, use_dummy_aws
from tests.spawner.fake_fargate import FakeFargate
from westtek_core.aws import forget_clients
from westtek_spawner import WestTekSpawner
from westtek_spawner.aws import aws_client
from westtek_spawner.backends.ecs import EcsBackend

# Serves HTTP on the port JupyterHub hands the server in JUPYTERHUB_SERVICE_URL, and writes
# what it was given to its working directory.
TINY_SERVER = (
    "import http.server, json, os, urllib.parse;"
    "port = urllib.parse.urlparse(os.environ['JUPYTERHUB_SERVICE_URL']).port;"
    "open('home-was', 'w').write(os.environ['HOME']);"
    "json.dump(dict(os.environ), open('env-was.json', 'w'));"
    "http.server.HTTPServer(('127.0.0.1', port), http.server.SimpleHTTPRequestHandler)"
    ".serve_forever()"
)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No spawner test may dial anything but loopback: a task's fake IP above all."""
    allow_only_loopback(monkeypatch, "spawner test")
    yield


@pytest.fixture(autouse=True)
def _fresh_spawner_registries() -> Iterator[None]:
    """Quotas and caches are process-wide in a hub; each test starts with none."""
    WestTekSpawner._lab_servers.clear()
    EcsBackend._access_points.clear()
    EcsBackend._task_definitions.clear()
    EcsBackend._checked_networks.clear()
    EcsBackend._listed_at.clear()
    yield
    WestTekSpawner._lab_servers.clear()


def hold_tasks_running(endpoint: str) -> None:
    """moto advances a task towards STOPPED on each DescribeTasks unless told otherwise."""
    requests.post(
        f"{endpoint}/moto-api/state-manager/set-transition",
        json={"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}},
        timeout=10,
    ).raise_for_status()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:  # noqa: F811
    """Dummy credentials and the moto endpoint in the environment; no profile, no IMDS."""
    use_dummy_aws(monkeypatch, tmp_path, moto_endpoint)
    forget_clients()
    hold_tasks_running(moto_endpoint)
    yield moto_endpoint
    forget_clients()


def make_world(endpoint: str) -> dict[str, str]:
    """A fresh cluster, the default VPC's first subnet, a security group and a file system."""
    ecs = aws_client("ecs", endpoint_url=endpoint)
    ec2 = aws_client("ec2", endpoint_url=endpoint)
    efs = aws_client("efs", endpoint_url=endpoint)
    name = f"westtek-{secrets.token_hex(4)}"
    ecs.create_cluster(clusterName=name)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])[
        "Subnets"
    ][0]["SubnetId"]
    group = ec2.create_security_group(GroupName=name, Description="notebooks", VpcId=vpc["VpcId"])
    file_system = efs.create_file_system(CreationToken=name)["FileSystemId"]
    return {
        "cluster": name,
        "subnet": subnet,
        "security_group": group["GroupId"],
        "file_system": file_system,
    }


@pytest.fixture
def world(aws: str) -> dict[str, str]:
    return make_world(aws)


@pytest.fixture
def fargate(tmp_path: Path, world: dict[str, str]) -> Iterator[FakeFargate]:
    fake = FakeFargate(tmp_path / "fargate", clusters={world["cluster"]}, stage_seconds=0.15)
    fake.start()
    yield fake
    fake.close()


# the JupyterHub groups that are labs in these tests (WestTekSpawner.lab_groups)
LAB_GROUPS = ["vault-13", "vault-101", "vault-999"]


def make_user(name: str, labs: tuple[str, ...] = ("vault-13",)) -> SimpleNamespace:
    return SimpleNamespace(
        name=name,
        escaped_name=name,
        url=f"/user/{name}/",
        groups=[SimpleNamespace(name=lab) for lab in labs],
    )


def make_ecs_spawner(
    world: dict[str, str],
    fargate: FakeFargate | None,
    name: str = "alice",
    labs: tuple[str, ...] = ("vault-13",),
    server_name: str = "",
    **traits: Any,
) -> WestTekSpawner:
    """A WestTekSpawner on the ecs backend against moto, its tasks run by ``fargate``."""
    spawner = WestTekSpawner(
        user=make_user(name, labs),
        orm_spawner=SimpleNamespace(name=server_name, display_name=server_name, server=None)
        if server_name
        else None,
        hub=Hub(ip="127.0.0.1", port=8081, base_url="/hub/"),
        api_token=f"token-{name}",
        oauth_client_id=f"jupyterhub-user-{name}",
        backend="ecs",
        lab_groups=LAB_GROUPS,
        cmd=[sys.executable, "-c", TINY_SERVER],
        restore_environment=False,
        answer_poll_interval=0.05,
        **traits,
    )
    config = spawner.config.EcsBackend
    config.cluster = world["cluster"]
    config.subnets = [world["subnet"]]
    config.security_groups = [world["security_group"]]
    config.file_system_id = world["file_system"]
    config.image = "westtek/notebook:test"
    config.start_poll_interval = 0.05
    if fargate is not None:
        config.address_hook = fargate.address
    return spawner


# a research venv and its wheels, for the user environment's drift tests
from tests.core.conftest import research_env, wheelhouse  # noqa: E402, F401
