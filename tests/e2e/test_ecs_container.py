"""End to end on ECS with the real notebook image: each Fargate task a container of it.

A real JupyterHub and proxy spawn with the ecs backend against moto on loopback, as in
test_ecs_spawn.py; :class:`~tests.spawner.fake_fargate.FakeFargate` runs each task as a
container of the task definition's image on this machine's Docker daemon, with the task's
environment and the researcher's access point bind-mounted as her home. Nothing of the
server's command is configured here: the image's entrypoint, the ecs backend's pre-start
restore and jupyterhub-singleuser run as in production, the snapshot store is S3 (moto),
and snapshots are reported to the hub service through the proxy. The hub still never
dials a non-loopback address. Where no Docker daemon answers, the test skips.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from tests.core.conftest import build_wheel
from tests.core.store.conftest import moto_endpoint  # noqa: F401 (a fixture)
from tests.docker_daemon import NOTEBOOK_IMAGE, docker_client, notebook_image
from tests.e2e.conftest import REPO, HubProcess
from tests.e2e.researcher import Researcher, service_environments, wait_until
from tests.e2e.test_ecs_spawn import FARGATE_STAND_IN, progress_of
from tests.spawner.conftest import aws, make_world  # noqa: F401 (the fixture)
from tests.spawner.fake_fargate import FakeFargate
from westtek_spawner.aws import aws_client

pytestmark = pytest.mark.slow

PACKAGE = "westtek_probe_pkg"
# The image's user (jovyan). EFS would make every file access through the access point
# the access point's uid whatever the container's user; a bind mount cannot, so the
# access point is given the image's own ids: her home and the image's venv are both hers.
IMAGE_UID, IMAGE_GID = 1000, 100

CONTAINER_CONFIG = """
# -- test_ecs_container: the ecs backend against moto, its tasks containers of the image
c.WestTekSpawner.backend = "ecs"
c.EcsBackend.cluster = {cluster!r}
c.EcsBackend.subnets = [{subnet!r}]
c.EcsBackend.security_groups = [{security_group!r}]
c.EcsBackend.file_system_id = {file_system!r}
c.EcsBackend.image = {image!r}
c.EcsBackend.efs_uid = {uid}
c.EcsBackend.efs_gid = {gid}
c.EcsBackend.stop_grace_seconds = 5
# each lab's snapshots in S3 (moto), which servers and the hub service both reach
c.WestTekSpawner.store_template = {store!r}
_service = c.JupyterHub.services[0]
_service["command"] = [
    *(a for a in _service["command"] if not a.startswith("--LabStores.store_template=")),
    "--LabStores.store_template=" + {store!r},
]
# JupyterHub passes a managed service none of its own environment (as hub_config/aws.py)
import os
_service.setdefault("environment", {{}}).update(
    {{k: v for k, v in os.environ.items() if k.startswith("AWS_")}}
)
c.Spawner.start_timeout = 300
"""


@pytest.fixture
def container_hub(
    aws: str,  # noqa: F811
    tmp_path: Path,
) -> Iterator[tuple[HubProcess, FakeFargate, Path]]:
    """The demo hub on the ecs backend; FakeFargate runs its tasks as containers."""
    client = docker_client()
    world = make_world(aws)
    bucket = f"westtek-snapshots-{world['cluster']}"
    aws_client("s3").create_bucket(Bucket=bucket)
    store = f"s3://{bucket}/labs/{{lab_id}}/"
    (wheel,) = build_wheel(tmp_path / "wheel-src", PACKAGE, "1.0.0").glob(f"{PACKAGE}-*.whl")
    fargate = FakeFargate(
        tmp_path / "fargate", clusters={world["cluster"]}, stage_seconds=0.2, docker=client
    ).start()
    hub = HubProcess(tmp_path)
    dials = tmp_path / "non-loopback-dials.txt"
    with open(hub.config, "a") as config:
        config.write(
            CONTAINER_CONFIG.format(
                image=notebook_image(client),
                uid=IMAGE_UID,
                gid=IMAGE_GID,
                store=store,
                **world,
            )
        )
        config.write(
            FARGATE_STAND_IN.format(
                repo=str(REPO), addresses=str(fargate.addresses), dials=str(dials)
            )
        )
    hub.start()
    yield hub, fargate, wheel
    try:
        hub.api("DELETE", "users/alice/server")
    except requests.RequestException:
        pass
    hub.stop()
    fargate.close()
    for log in sorted(fargate.logs.glob("*.log")):
        print(f"--- {log.name}\n{log.read_text(errors='replace')[-20000:]}")
    print(hub.log())  # pytest shows captured output only when the test failed
    assert not dials.exists(), f"the hub dialled non-loopback addresses:\n{dials.read_text()}"


def task_of_alice(hub: HubProcess) -> str:
    """The ARN of the task alice's server runs as."""
    return hub.api("GET", "users/alice").json()["servers"][""]["state"]["westtek"]["task_arn"]


async def test_a_package_installed_in_a_task_survives_it(container_hub) -> None:
    hub, fargate, wheel = container_hub
    # Given alice's server, spawned through the hub as a task of the notebook image,
    alice = Researcher(hub, "alice")
    await asyncio.to_thread(alice.wait_for_server)
    task_arn = task_of_alice(hub)
    container = fargate.containers[task_arn]
    assert container.image.tags == [NOTEBOOK_IMAGE]
    assert container.attrs["Config"]["User"] == f"{IMAGE_UID}:{IMAGE_GID}"
    (home_mount,) = [m for m in container.attrs["Mounts"] if m["Destination"] == "/home/jovyan"]
    home = Path(home_mount["Source"])
    assert home.parts[-2:] == ("home", "alice")
    # whose West Tek API answers through the proxy, from the image's own server and home
    assert alice.json("GET", "westtek/api/status")["component"] == "server-extension"
    kernel = alice.json("POST", "api/kernels", json={"name": "python3"})["id"]
    code = "import os, sys; print(os.getuid(), os.environ['HOME'], sys.prefix)"
    assert await alice.run_cell(kernel, code) == "1000 /home/jovyan /opt/westtek\n"
    assert await alice.run_cell(kernel, "print(os.environ['JUPYTERHUB_USER'])") == "alice\n"

    # when she pip-installs a wheel from her home in the container (it has no index)
    shutil.copy(wheel, home / wheel.name)
    shutil.chown(home / wheel.name, IMAGE_UID, IMAGE_GID)
    await alice.run_in_terminal(f"pip install -q --no-index /home/jovyan/{wheel.name}")
    # and takes a snapshot,
    job = alice.json("POST", "westtek/api/snapshots", json={"note": "with the probe package"})
    snapshot_id = (await asyncio.to_thread(alice.wait_for_job, job))["result"]["id"]
    # then the snapshot reaches the hub service, as does the task her server runs as;
    await wait_until(
        lambda: service_environments(hub, "alice")["alice"].get("last_snapshot_id") == snapshot_id,
        "the hub service knows her snapshot",
    )
    reported = service_environments(hub, "alice")["alice"]["container_info"]
    assert reported["task_arn"] == task_arn, reported

    # When her server is stopped, its task's container removed,
    assert hub.api("DELETE", "users/alice/server").status_code in (202, 204)
    await wait_until(lambda: not exists(container), "the task's container is removed")
    # and she spawns again,
    assert hub.api("POST", "users/alice/server").status_code in (201, 202)
    stages = [event["message"] for event in progress_of(hub, "alice", timeout=240)]
    # then her new task, a fresh container, restores the package before the server answers,
    restored = [s for s in stages if s.startswith("Restored your environment from snapshot")]
    answering = [s for s in stages if s.startswith("Notebook server answering")]
    assert restored and answering, stages
    assert stages.index(restored[0]) < stages.index(answering[0]), stages
    assert (fresh := task_of_alice(hub)) != task_arn
    assert fargate.containers[fresh].id != container.id
    await asyncio.to_thread(alice.wait_for_server)
    kernel = alice.json("POST", "api/kernels", json={"name": "python3"})["id"]
    assert await alice.run_cell(kernel, f"import {PACKAGE}; print({PACKAGE}.VERSION)") == "1.0.0\n"


def exists(container: Any) -> bool:
    """Whether the Docker daemon still has ``container``."""
    try:
        container.reload()
    except docker.errors.NotFound:
        return False
    return True
