"""The ecs backend against a moto server on loopback, boto3 over HTTP.

moto answers ECS and EFS; :class:`~tests.spawner.fake_fargate.FakeFargate` moves its tasks
through their stages and runs each task's command as a local process. The backend's
``address_hook`` resolves a running task to that process on 127.0.0.1: no test dials a
task's fake private IP (the autouse loopback guard would fail it).
"""

from __future__ import annotations

import asyncio
import json
import time
from unittest.mock import ANY

import pytest

from tests.spawner.conftest import make_ecs_spawner, make_world
from westtek_spawner.aws import aws_client
from westtek_spawner.backends.ecs import posix_id
from westtek_spawner.backends.ecs_watch import task_watcher
from westtek_spawner.errors import SpawnError, SpawnRefused

PROFILES = [
    {"slug": "small", "display_name": "Small", "cpu": 0.5, "memory_gib": 1, "default": True},
    {"slug": "large", "display_name": "Large", "cpu": 2, "memory_gib": 8},
]


def ecs(endpoint: str):
    """The backend's own client (its endpoint comes from AWS_ENDPOINT_URL)."""
    return aws_client("ecs")


def efs(endpoint: str):
    return aws_client("efs")


async def start_collecting(spawner):
    """Start the spawner as JupyterHub does, collecting its progress events."""
    events: list[dict] = []

    async def collect():
        async for event in spawner.progress():
            events.append(event)

    start = asyncio.ensure_future(spawner.start())
    await asyncio.sleep(0)
    collector = asyncio.ensure_future(collect())
    try:
        ip, port = await start
    finally:
        await asyncio.wait_for(collector, 5)
    return ip, port, events


def described(endpoint, cluster, arn):
    return ecs(endpoint).describe_tasks(cluster=cluster, tasks=[arn], include=["TAGS"])["tasks"][0]


async def test_alice_spawns_with_a_profile_through_each_stage(aws, world, fargate, tmp_path):
    # Given alice in lab vault-13 choosing the large profile,
    spawner = make_ecs_spawner(world, fargate, profile_list=PROFILES)
    spawner.user_options = {"profile": "large"}
    # when she spawns,
    ip, port, events = await start_collecting(spawner)
    # then the hub reaches a real server on loopback (resolved by the address hook),
    assert ip == "127.0.0.1"
    messages = [e["message"] for e in events]
    # she saw each stage, in order,
    stages = [
        "Profile: Large",
        "Home directory ready",
        "Registering a task definition for alice (large)",
        "Task definition westtek-notebook:",
        "Task provisioning",
        "Task pending: waiting",
        "Task pending: pulling image westtek/notebook:test",
        "Task running",
        "Notebook server running at 127.0.0.1:",
        "Notebook server answering",
    ]
    positions = [next(i for i, m in enumerate(messages) if m.startswith(s)) for s in stages]
    assert positions == sorted(positions), "\n".join(messages)
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress)
    # and her task runs the large size with her own access point, tagged for her lab.
    state = spawner.get_state()["westtek"]
    task = described(aws, world["cluster"], state["task_arn"])
    assert task["lastStatus"] == "RUNNING" and task["launchType"] == "FARGATE"
    assert {t["key"]: t["value"] for t in task["tags"]} == {
        "lab_id": "vault-13",
        "researcher_id": "alice",
        "environment_id": "alice",
        "profile": "large",
    }
    definition = ecs(aws).describe_task_definition(taskDefinition=state["task_definition_arn"])[
        "taskDefinition"
    ]
    assert definition["family"] == "westtek-notebook"  # the one family the hub may run
    assert (definition["cpu"], definition["memory"]) == ("2048", "8192")
    tags = ecs(aws).describe_task_definition(
        taskDefinition=state["task_definition_arn"], include=["TAGS"]
    )["tags"]
    assert {t["key"]: t["value"] for t in tags if t["key"] != "westtek:inputs"} == {
        "lab_id": "vault-13",
        "researcher_id": "alice",
        "profile": "large",
        "managed-by": "westtek-spawner",
    }
    efs_volume = definition["volumes"][0]["efsVolumeConfiguration"]
    assert efs_volume["authorizationConfig"]["accessPointId"] == state["access_point_id"]
    (point,) = efs(aws).describe_access_points(AccessPointId=state["access_point_id"])[
        "AccessPoints"
    ]
    assert point["RootDirectory"]["Path"] == "/home/alice"
    # her own POSIX identity, the same on every hub (derived from her name)
    uid = posix_id("alice")
    assert point["PosixUser"] == {"Uid": uid, "Gid": uid} and uid >= 100_000
    assert point["RootDirectory"]["CreationInfo"] == {
        "OwnerUid": uid,
        "OwnerGid": uid,
        "Permissions": "750",
    }
    point_tags = {t["Key"]: t["Value"] for t in point["Tags"]}
    assert (point_tags["lab_id"], point_tags["researcher_id"]) == ("vault-13", "alice")
    # The server got JupyterHub's and West Tek's environment through the task's overrides.
    (home,) = (tmp_path / "fargate" / "efs").glob("*/home/alice")
    env = json.loads((home / "env-was.json").read_text())
    assert env["JUPYTERHUB_API_TOKEN"] == "token-alice"
    assert env["WESTTEK_LAB_ID"] == "vault-13"
    assert env["WESTTEK_ENVIRONMENT_ID"] == "alice"
    assert spawner.backend_impl.image_digest().startswith("sha256:")
    assert spawner.backend_impl.container_info() == {
        "task_arn": state["task_arn"],
        "cluster": world["cluster"],
        "efs_access_point": state["access_point_id"],
    }
    await spawner.stop(now=True)


def count_calls(endpoint: str, operation: str) -> list[str]:
    """Record each ``operation`` the ECS/EFS clients send from now on (botocore's events)."""
    calls: list[str] = []
    for client in (ecs(endpoint), efs(endpoint)):
        client.meta.events.register(
            f"before-call.*.{operation}", lambda **kwargs: calls.append(operation)
        )
    return calls


async def test_access_point_and_task_definition_are_made_once_and_reused(aws, world, fargate):
    creates = count_calls(aws, "CreateAccessPoint")
    registers = count_calls(aws, "RegisterTaskDefinition")
    first = make_ecs_spawner(world, fargate)
    await first.start()
    running = first.get_state()["westtek"]
    await first.stop(now=True)
    # What outlives the server stays in its state (JupyterHub saves it after the stop).
    stopped = first.get_state()
    assert "task_arn" not in stopped["westtek"]
    assert stopped["westtek"]["access_point_id"] == running["access_point_id"]
    assert stopped["westtek"]["task_definitions"] == {"": [ANY, running["task_definition_arn"]]}
    # Same hub, second spawn: both come from the cache.
    again = make_ecs_spawner(world, fargate)
    await again.start()
    assert again.get_state()["westtek"]["access_point_id"] == running["access_point_id"]
    assert again.get_state()["westtek"]["task_definition_arn"] == running["task_definition_arn"]
    await again.stop(now=True)
    assert (len(creates), len(registers)) == (1, 1)
    # A restarted hub (empty caches) gets both back from the saved state.
    from westtek_spawner.backends.ecs import EcsBackend

    EcsBackend._access_points.clear()
    EcsBackend._listed_at.clear()
    EcsBackend._task_definitions.clear()
    reborn = make_ecs_spawner(world, fargate)
    reborn.load_state(stopped)
    assert reborn._lab_servers.get("vault-13", set()) == set()  # no server: no quota used
    await reborn.start()
    assert reborn.get_state()["westtek"]["task_definition_arn"] == running["task_definition_arn"]
    await reborn.stop(now=True)
    assert (len(creates), len(registers)) == (1, 1)
    # Even with no state at all, the access point is found by its tags, not made twice.
    EcsBackend._access_points.clear()
    EcsBackend._listed_at.clear()
    lost = make_ecs_spawner(world, fargate)
    await lost.start()
    assert lost.get_state()["westtek"]["access_point_id"] == running["access_point_id"]
    await lost.stop(now=True)
    assert len(creates) == 1
    # A changed input (the image) registers a new revision.
    changed = make_ecs_spawner(world, fargate)
    changed.config.EcsBackend.image = "westtek/notebook:newer"
    await changed.start()
    assert changed.get_state()["westtek"]["task_definition_arn"] != running["task_definition_arn"]
    assert len(registers) == 2
    await changed.stop(now=True)
    # Bob gets his own access point and revision.
    bob = make_ecs_spawner(world, fargate, name="bob")
    await bob.start()
    bob_state = bob.get_state()["westtek"]
    assert bob_state["access_point_id"] != running["access_point_id"]
    assert bob_state["task_definition_arn"] not in (
        running["task_definition_arn"],
        changed.get_state()["westtek"]["task_definitions"][""][1],
    )
    await bob.stop(now=True)


async def test_a_restarted_hub_reattaches_to_the_running_task(aws, world, fargate):
    # Given alice's running server,
    spawner = make_ecs_spawner(world, fargate)
    await spawner.start()
    state = spawner.get_state()
    assert set(state["westtek"]) == {
        "backend",
        "lab_id",
        "profile",
        "task_arn",
        "cluster",
        "task_definition_arn",
        "access_point_id",
        "file_system_id",
        "task_definitions",
    }
    # when a new hub process loads the saved state (no caches, no watcher),
    from westtek_spawner.backends.ecs import EcsBackend

    EcsBackend._access_points.clear()
    EcsBackend._listed_at.clear()
    EcsBackend._task_definitions.clear()
    reborn = make_ecs_spawner(world, fargate)
    reborn.load_state(state)
    # then it finds the task still running, counts it against the lab, and can stop it.
    assert await reborn.poll() is None
    assert reborn._lab_servers["vault-13"] == {"alice/"}
    await reborn.stop()
    task = described(aws, world["cluster"], state["westtek"]["task_arn"])
    assert task["lastStatus"] == "STOPPED"
    assert task["stoppedReason"] == "Stopped by JupyterHub"
    assert "task_arn" not in reborn.get_state()["westtek"]
    assert reborn._lab_servers["vault-13"] == set()


async def test_a_task_that_cannot_pull_its_image_fails_fast_with_ecss_reason(aws, world, fargate):
    spawner = make_ecs_spawner(world, fargate)
    spawner.config.EcsBackend.image = "registry.invalid/no-such-image:1"
    started = time.monotonic()
    with pytest.raises(SpawnError) as failure:
        await asyncio.wait_for(spawner.start(), 30)
    assert time.monotonic() - started < 10
    assert failure.value.jupyterhub_message.startswith(
        "Your server's task stopped before it could run: CannotPullContainerError:"
    )
    assert "registry.invalid/no-such-image:1" in str(failure.value)
    # The failed spawn does not count against the lab's quota.
    assert spawner._lab_servers["vault-13"] == set()
    await spawner.stop(now=True)  # what JupyterHub does after a failed start


async def test_a_server_that_dies_while_starting_fails_the_spawn_at_once(aws, world, fargate):
    spawner = make_ecs_spawner(world, fargate)
    spawner.cmd = ["python3", "-c", "import sys; sys.exit(7)"]
    # whether ECS stops it before or after RUNNING is a race: both messages carry its reason
    reason = "Your server's task stopped( before it could run)?: Essential container"
    with pytest.raises(SpawnError, match=reason):
        await asyncio.wait_for(spawner.start(), 30)


async def test_lab_quota_refuses_one_server_too_many(aws, world, fargate):
    # Given vault-13 may run one server at once,
    quota = {"lab_quotas": {"vault-13": 1}}
    alice = make_ecs_spawner(world, fargate, **quota)
    await alice.start()
    # then bob, in the same lab, is refused with a message saying why,
    bob = make_ecs_spawner(world, fargate, name="bob", **quota)
    with pytest.raises(SpawnRefused) as refused:
        await bob.start()
    assert refused.value.jupyterhub_message == (
        "Lab vault-13 already runs 1 servers, its limit: stop one of the lab's servers "
        "or ask a hub admin to raise the quota"
    )
    assert refused.value.status_code == 429
    # while carol, in another lab, starts,
    carol = make_ecs_spawner(world, fargate, name="carol", labs=("vault-101",), **quota)
    await carol.start()
    # and once alice stops, bob may start.
    await alice.stop(now=True)
    await bob.start()
    await bob.stop(now=True)
    await carol.stop(now=True)


async def test_polls_of_many_servers_share_one_describe_tasks_per_hundred(aws, world, fargate):
    # Given 250 servers' tasks (run without the fake's processes: only their status matters),
    spawners = []
    arns = []
    client = ecs(aws)
    definition = client.register_task_definition(
        family="westtek-poll-test",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "notebook", "image": "x", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    quiet = make_world(aws)  # a cluster the fake does not run
    for _ in range(3):
        answer = client.run_task(
            cluster=quiet["cluster"],
            taskDefinition=definition,
            count=100 if len(arns) < 200 else 50,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": [quiet["subnet"]],
                    "securityGroups": [quiet["security_group"]],
                }
            },
        )
        arns += [t["taskArn"] for t in answer["tasks"]]
    assert len(arns) == 250
    for i, arn in enumerate(arns):
        spawner = make_ecs_spawner(quiet, None, name=f"user{i}")
        spawner.load_state(
            {"westtek": {"backend": "ecs", "task_arn": arn, "cluster": quiet["cluster"]}}
        )
        spawners.append(spawner)
    describes = count_calls(aws, "DescribeTasks")
    # when JupyterHub polls them all (a poll cycle),
    assert await asyncio.gather(*(s.poll() for s in spawners)) == [None] * 250
    # then ECS was asked 3 times (100 + 100 + 50), and within the cache window not again.
    assert len(describes) == 3
    assert await asyncio.gather(*(s.poll() for s in spawners)) == [None] * 250
    assert len(describes) == 3
    watcher = task_watcher(client, quiet["cluster"])
    assert watcher.calls == 3
    # A stopped task is noticed at the next refresh, with its exit status.
    client.stop_task(cluster=quiet["cluster"], task=arns[7], reason="gone")
    spawners[7].config.EcsBackend.poll_cache_seconds = 0.0
    spawners[7]._backend = None
    spawners[7].load_state(
        {"westtek": {"backend": "ecs", "task_arn": arns[7], "cluster": quiet["cluster"]}}
    )
    assert await spawners[7].poll() is not None
    assert len(describes) == 6  # a poll's refresh sweeps all 250: three calls again


async def test_poll_keeps_a_server_when_aws_cannot_answer(aws, world, fargate, monkeypatch):
    spawner = make_ecs_spawner(world, fargate)
    await spawner.start()
    backend = spawner.backend_impl
    backend.poll_cache_seconds = 0.0

    async def throttled(*args, **kwargs):
        raise SpawnError("AWS kept throttling ecs.DescribeTasks after 8 attempts")

    with monkeypatch.context() as patched:  # not undo(): that drops the fixtures' AWS_* too
        patched.setattr(backend.watcher, "_describe", throttled)
        assert await spawner.poll() is None
    await spawner.stop(now=True)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("subnets", [], "EcsBackend.subnets is empty"),
        ("security_groups", [], "EcsBackend.security_groups is empty"),
        ("file_system_id", "", "EcsBackend.file_system_id is not set"),
        ("log_group", "/westtek/notebooks", "EcsBackend.execution_role_arn is not set"),
    ],
)
async def test_incomplete_settings_are_named(aws, world, setting, value, message):
    spawner = make_ecs_spawner(world, None)
    setattr(spawner.config.EcsBackend, setting, value)
    with pytest.raises(SpawnError, match=f"The hub's ECS settings are incomplete: .*{message}"):
        await spawner.start()


async def test_a_subnet_that_does_not_exist_is_awss_message(aws, world):
    spawner = make_ecs_spawner(world, None)
    spawner.config.EcsBackend.subnets = ["subnet-0000dead"]
    with pytest.raises(
        SpawnError,
        match=r"EcsBackend.subnets \['subnet-0000dead'\]: AWS ec2.DescribeSubnets failed: "
        r"InvalidSubnetID.NotFound: .*subnet-0000dead",
    ):
        await spawner.start()


async def test_an_unknown_profile_is_refused_with_the_choices(aws, world):
    spawner = make_ecs_spawner(world, None, profile_list=PROFILES)
    spawner.user_options = {"profile": "huge"}
    with pytest.raises(SpawnRefused) as refused:
        spawner.apply_user_options(spawner, spawner.user_options)
    assert refused.value.jupyterhub_message == (
        "There is no profile 'huge' on this hub: choose one of small, large"
    )
    with pytest.raises(SpawnRefused, match="no profile 'huge'"):
        await spawner.start()


async def test_named_servers_have_their_own_environment(aws, world, fargate):
    spawner = make_ecs_spawner(world, fargate, server_name="thesis")
    await spawner.start()
    task = described(aws, world["cluster"], spawner.get_state()["westtek"]["task_arn"])
    assert {t["key"]: t["value"] for t in task["tags"]}["environment_id"] == "alice:thesis"
    await spawner.stop(now=True)


class ThrottlingProxy:
    """Forwards AWS calls to moto, answering the first ``throttle`` of one operation with
    ThrottlingException, as ECS does when a hub calls it too often."""

    def __init__(self, upstream: str, operation: str, throttle: int) -> None:
        import http.client
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlparse

        self.seen = 0
        proxy = self
        target = urlparse(upstream)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.forward("POST")

            def do_GET(self):  # noqa: N802
                self.forward("GET")

            def forward(self, method):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("X-Amz-Target", "").endswith(f".{operation}"):
                    proxy.seen += 1
                    if proxy.seen <= throttle:
                        error = json.dumps(
                            {"__type": "ThrottlingException", "message": "Rate exceeded"}
                        ).encode()
                        self.send_response(400)
                        self.send_header("Content-Type", "application/x-amz-json-1.1")
                        self.send_header("Content-Length", str(len(error)))
                        self.end_headers()
                        self.wfile.write(error)
                        return
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                connection.request(method, self.path, body or None, headers)
                answer = connection.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                connection.close()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


async def test_throttled_calls_back_off_and_retry(aws, world, fargate):
    proxy = ThrottlingProxy(aws, "RunTask", throttle=2)
    try:
        spawner = make_ecs_spawner(world, fargate)
        spawner.config.EcsBackend.endpoint_url = proxy.url
        await asyncio.wait_for(spawner.start(), 60)
        assert proxy.seen == 3  # two throttled, the third went through
        await spawner.stop(now=True)
    finally:
        proxy.close()


async def test_a_call_that_stays_throttled_fails_with_a_clear_message(aws, world):
    proxy = ThrottlingProxy(aws, "RunTask", throttle=10**6)
    try:
        spawner = make_ecs_spawner(world, None)
        spawner.config.EcsBackend.endpoint_url = proxy.url
        spawner.config.EcsBackend.aws_max_attempts = 2
        with pytest.raises(SpawnError) as failure:
            await asyncio.wait_for(spawner.start(), 60)
        assert failure.value.jupyterhub_message == (
            "AWS kept throttling ecs.RunTask after 2 attempts (ThrottlingException: Rate "
            "exceeded); the hub is making too many AWS calls right now: try again in a minute"
        )
        assert proxy.seen == 2
    finally:
        proxy.close()


LAB_ROLES = {
    "vault-13": "arn:aws:iam::123456789012:role/westtek/notebook/vault-13",
    "vault-101": "arn:aws:iam::123456789012:role/westtek/notebook/vault-101",
}


async def test_each_lab_runs_with_its_own_task_role(aws, world, fargate):
    servers = []
    for name, lab in (("alice", "vault-13"), ("carol", "vault-101")):
        spawner = make_ecs_spawner(world, fargate, name=name, labs=(lab,))
        spawner.config.EcsBackend.task_role_arns = LAB_ROLES
        spawner.config.EcsBackend.require_lab = True
        await spawner.start()
        servers.append(spawner)
        arn = spawner.get_state()["westtek"]["task_definition_arn"]
        definition = ecs(aws).describe_task_definition(taskDefinition=arn)["taskDefinition"]
        assert definition["taskRoleArn"] == LAB_ROLES[lab]
    for spawner in servers:
        await spawner.stop(now=True)


async def test_without_a_lab_or_a_lab_role_there_is_no_server(aws, world):
    loner = make_ecs_spawner(world, None, name="dave", labs=())
    loner.config.EcsBackend.require_lab = True
    with pytest.raises(SpawnError, match="dave is in no lab: a hub admin must add them"):
        await loner.start()
    stranger = make_ecs_spawner(world, None, name="erin", labs=("vault-999",))
    stranger.config.EcsBackend.task_role_arns = LAB_ROLES
    with pytest.raises(SpawnError, match="Lab vault-999 has no task role"):
        await stranger.start()


async def test_the_image_can_come_from_the_stacks_template_revision(aws, world, fargate):
    template = ecs(aws).register_task_definition(
        family="westtek-notebook",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="1024",
        memory="4096",
        containerDefinitions=[
            {"name": "notebook", "image": "123.dkr.ecr/westtek-notebook:7", "memory": 4096}
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    spawner = make_ecs_spawner(world, fargate)
    spawner.config.EcsBackend.image = ""
    spawner.config.EcsBackend.template_task_definition = template
    await spawner.start()
    arn = spawner.get_state()["westtek"]["task_definition_arn"]
    definition = ecs(aws).describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert definition["containerDefinitions"][0]["image"] == "123.dkr.ecr/westtek-notebook:7"
    await spawner.stop(now=True)
    lost = make_ecs_spawner(world, None)
    lost.config.EcsBackend.image = ""
    with pytest.raises(SpawnError, match="EcsBackend.image is not set, nor"):
        await lost.start()


async def test_a_hub_role_without_ec2_read_access_skips_the_network_check(
    aws, world, fargate, monkeypatch
):
    from westtek_spawner.backends import ecs as ecs_backend

    real_call = ecs_backend.aws_call

    async def no_ec2(client, operation, **kwargs):
        if operation.startswith("describe_s"):
            error = SpawnError("AWS ec2.DescribeSubnets failed: UnauthorizedOperation: no")
            error.aws_code = "UnauthorizedOperation"
            raise error
        return await real_call(client, operation, **kwargs)

    monkeypatch.setattr(ecs_backend, "aws_call", no_ec2)
    spawner = make_ecs_spawner(world, fargate)
    await spawner.start()
    await spawner.stop(now=True)


def test_posix_ids_are_stable_and_apart():
    assert posix_id("alice") == posix_id("alice") != posix_id("bob")
    ids = {posix_id(f"researcher{i}") for i in range(2000)}
    assert len(ids) == 2000 and min(ids) >= 100_000 and max(ids) < 2**31


async def test_a_wave_of_first_spawns_lists_access_points_once(aws, world):
    # Given ten researchers spawning for the first time at once (no task runs: only the
    # access points matter here),
    from westtek_spawner.backends.ecs import EcsBackend

    listings = count_calls(aws, "DescribeAccessPoints")
    creates = count_calls(aws, "CreateAccessPoint")
    backends = [make_ecs_spawner(world, None, name=f"r{i}").backend_impl for i in range(10)]
    points = await asyncio.gather(*(b.ensure_access_point() for b in backends))
    # then the file system was listed once, and each got an access point of their own.
    assert len(listings) == 1 and len(creates) == 10 and len(set(points)) == 10
    # A hub that restarts lists once more and finds them all.
    EcsBackend._access_points.clear()
    EcsBackend._listed_at.clear()
    again = [make_ecs_spawner(world, None, name=f"r{i}").backend_impl for i in range(10)]
    assert await asyncio.gather(*(b.ensure_access_point() for b in again)) == points
    assert len(listings) == 2 and len(creates) == 10
