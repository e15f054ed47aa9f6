"""End to end on ECS: a real JupyterHub + proxy, the ecs backend against moto on loopback.

The hub process talks to a moto server in this test process over HTTP (boto3, as in
production). :class:`~tests.spawner.fake_fargate.FakeFargate`, also in this process, plays
Fargate: it moves each task through its stages and runs its container command — the
pre-start restore, then jupyterhub-singleuser with the West Tek extension — on 127.0.0.1.
The backend's ``address_hook`` resolves a task to that server; the hub process refuses
(and records) any connection to a non-loopback address, so a task's fake private IP is
provably never dialled.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import requests

from tests.core.store.conftest import moto_endpoint  # noqa: F401 (a fixture)
from tests.e2e.conftest import REPO, HubProcess, login
from tests.e2e.test_hub_spawn import server_status
from tests.spawner.conftest import hold_tasks_running, make_world
from tests.spawner.fake_fargate import FakeFargate
from westtek_spawner.aws import aws_client, forget_clients

pytestmark = pytest.mark.slow

UNPULLABLE = "registry.invalid/no-such-image:1"
PROFILES = [
    {"slug": "small", "display_name": "Small", "cpu": 0.5, "memory_gib": 1, "default": True},
    {"slug": "large", "display_name": "Large", "cpu": 2, "memory_gib": 8},
    {"slug": "broken", "display_name": "Broken image", "image": UNPULLABLE},
]

ECS_CONFIG = """
# -- test_ecs_spawn: the ecs backend against moto, tasks run by FakeFargate -------------
import ipaddress, socket, sys
sys.path.insert(0, {repo!r})
from tests.spawner.fake_fargate import address_from

c.WestTekSpawner.backend = "ecs"
c.WestTekSpawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.WestTekSpawner.prestart_command = [sys.executable, "-m", "westtek_spawner.prestart"]
c.WestTekSpawner.profile_list = {profiles!r}
c.WestTekSpawner.lab_quotas = {{"vault-13": 2}}
c.EcsBackend.cluster = {cluster!r}
c.EcsBackend.subnets = [{subnet!r}]
c.EcsBackend.security_groups = [{security_group!r}]
c.EcsBackend.file_system_id = {file_system!r}
c.EcsBackend.image = "westtek/notebook:e2e"
c.EcsBackend.start_poll_interval = 0.2
c.EcsBackend.address_hook = address_from({addresses!r})

# Nothing in the hub may dial a non-loopback address (a task's fake private IP above all).
_connect = socket.socket.connect
_dials = {dials!r}

def _loopback_only(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            with open(_dials, "a") as f:
                f.write(f"{{address!r}}\\n")
            raise ConnectionRefusedError(f"e2e: refusing to dial {{address!r}}")
    return _connect(sock, address)

socket.socket.connect = _loopback_only
"""


@pytest.fixture
def aws_env(moto_endpoint, monkeypatch, tmp_path):  # noqa: F811
    """The hub inherits these: dummy credentials, moto's endpoint, no profile or IMDS."""
    for name in ("AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    forget_clients()
    hold_tasks_running(moto_endpoint)
    yield moto_endpoint
    forget_clients()


@pytest.fixture
def ecs_hub(aws_env, tmp_path):
    world = make_world(aws_env)
    fargate = FakeFargate(
        tmp_path / "fargate",
        clusters={world["cluster"]},
        stage_seconds=0.4,
        unpullable=(UNPULLABLE,),
        extra_args=("--allow-root",),  # the stand-in runs as this (root) test process
    ).start()
    hub = HubProcess(tmp_path)
    dials = tmp_path / "non-loopback-dials.txt"
    with open(hub.config, "a") as config:
        config.write(
            ECS_CONFIG.format(
                repo=str(REPO),
                profiles=PROFILES,
                addresses=str(fargate.addresses),
                dials=str(dials),
                **world,
            )
        )
    hub.start()
    yield hub, world, fargate
    hub.stop()
    fargate.close()
    hub.kill_user_servers()
    assert not dials.exists(), f"the hub dialled non-loopback addresses:\n{dials.read_text()}"
    print(hub.log())  # pytest shows captured output only when the test failed


def spawn_from_the_form(hub: HubProcess, session: requests.Session, profile: str) -> str:
    """Open the spawn page, check the profiles are offered, submit one; returns the page."""
    form = session.get(f"{hub.url}/hub/spawn", timeout=30)
    form.raise_for_status()
    offered = re.findall(r'name="profile" id="profile-[\w-]+" value="([\w-]+)"', form.text)
    assert offered == ["small", "large", "broken"], form.text
    xsrf = session.cookies.get("_xsrf", path="/hub/") or session.cookies.get("_xsrf") or ""
    response = session.post(
        f"{hub.url}/hub/spawn",
        data={"profile": profile, "_xsrf": xsrf},
        headers={"X-XSRFToken": xsrf},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.text


def progress_of(hub: HubProcess, user: str, timeout: float = 90) -> list[dict]:
    """The spawn's progress events, as the spawn page receives them, until ready or failed."""
    events = []
    deadline = time.monotonic() + timeout
    with hub.api_stream(f"users/{user}/server/progress") as stream:
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith("data:"):
                event = json.loads(line[len("data:") :])
                events.append(event)
                if event.get("ready") or event.get("failed"):
                    break
            assert time.monotonic() < deadline, events
    return events


def test_alice_spawns_on_ecs_survives_a_hub_restart_and_a_bad_image_fails_fast(ecs_hub):
    hub, world, fargate = ecs_hub
    ecs = aws_client("ecs")
    efs = aws_client("efs")
    # Given alice logged in, when she picks the large profile on the spawn page,
    alice = login(hub, "alice")
    spawn_from_the_form(hub, alice, "large")
    events = progress_of(hub, "alice")
    messages = [e.get("message", "") for e in events]
    # then she sees each stage, in order, and her server becomes ready,
    stages = [
        "Profile: Large",
        "Created your home directory /home/alice",
        "Task definition westtek-notebook:",
        "Task provisioning",
        "Task pending: waiting for its network interface",
        "Task pending: pulling image westtek/notebook:e2e",
        "Task running",
        "Notebook server running at 127.0.0.1:",
        "No snapshot",  # a new researcher: nothing to restore yet
        "Notebook server answering",
        "Server ready at",
    ]
    positions = [
        next((i for i, m in enumerate(messages) if m.startswith(stage)), -1) for stage in stages
    ]
    assert -1 not in positions and positions == sorted(positions), "\n".join(messages)
    assert events[-1]["ready"]
    # the West Tek extension answers through the proxy,
    assert server_status(hub, alice, "alice")["component"] == "server-extension"
    # and her task runs the large size with her own access point.
    state = hub.api("GET", "users/alice").json()["servers"][""]["state"]["westtek"]
    task = ecs.describe_tasks(cluster=world["cluster"], tasks=[state["task_arn"]])["tasks"][0]
    assert task["lastStatus"] == "RUNNING"
    definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])[
        "taskDefinition"
    ]
    assert (definition["cpu"], definition["memory"]) == ("2048", "8192")
    volume = definition["volumes"][0]["efsVolumeConfiguration"]
    assert volume["authorizationConfig"]["accessPointId"] == state["access_point_id"]
    (point,) = efs.describe_access_points(AccessPointId=state["access_point_id"])["AccessPoints"]
    assert point["RootDirectory"]["Path"] == "/home/alice"
    assert {t["Key"]: t["Value"] for t in point["Tags"]}["researcher_id"] == "alice"

    # When the hub restarts,
    hub.stop()
    hub.start()
    # then it still finds her server: the same task, ready, reachable through the new proxy.
    after = hub.api("GET", "users/alice").json()["servers"][""]
    assert after["ready"] and after["state"]["westtek"]["task_arn"] == state["task_arn"]
    alice = login(hub, "alice")
    assert server_status(hub, alice, "alice")["component"] == "server-extension"

    # When bob picks a profile whose image cannot be pulled,
    bob = login(hub, "bob")
    started = time.monotonic()
    spawn_from_the_form(hub, bob, "broken")
    failed = progress_of(hub, "bob")[-1]
    # then his spawn fails within seconds, with ECS's reason on his spawn page.
    assert failed.get("failed"), failed
    assert time.monotonic() - started < 20
    assert failed["message"].startswith(
        "Spawn failed: Your server's task stopped before it could run: CannotPullContainerError:"
    ), failed
    assert UNPULLABLE in failed["message"]
    assert "CannotPullContainerError" in hub.log()
    assert hub.api("GET", "users/bob").json()["servers"] == {}
    # Alice's server was never disturbed.
    assert fargate.processes[state["task_arn"]].poll() is None
