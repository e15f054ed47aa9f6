"""The docker backend: WestTekSpawner's hooks over dockerspawner.

A recording Docker API client shows what dockerspawner is asked to do (the whole
``create_container`` call: image, environment, command, home volume). Where a Docker
daemon answers, a real container of the notebook image (`make images`) runs a server on
the host's network (tests/docker_daemon.py; skipped with the reason elsewhere).
"""

from __future__ import annotations

import time
import uuid

import docker
import pytest
import requests
from jupyterhub.objects import Hub

from tests.docker_daemon import (
    NOTEBOOK_IMAGE,
    containers_named,
    docker_client,
    notebook_image,
    remove_containers,
)
from tests.spawner.conftest import LAB_GROUPS, TINY_SERVER, make_user
from westtek_spawner import WestTekSpawner
from westtek_spawner.backends.docker import WestTekDockerSpawner


def make_docker_spawner(name="alice", **traits):
    return WestTekSpawner(
        user=make_user(name),
        hub=Hub(ip="172.17.0.1", port=8081, base_url="/hub/"),
        api_token=f"token-{name}",
        oauth_client_id=f"jupyterhub-user-{name}",
        backend="docker",
        lab_groups=LAB_GROUPS,
        answer_poll_interval=0.05,
        report_to_hub_service=False,
        **traits,
    )


class RecordingClient(docker.APIClient):
    """A Docker API client that records calls instead of making them (no daemon here)."""

    def __init__(self):
        super().__init__(version="1.41")  # an explicit version: no call to the daemon
        self.calls: list[tuple[str, tuple, dict]] = []
        self.containers: dict[str, dict] = {}

    def _record(self, method, *args, **kwargs):
        self.calls.append((method, args, kwargs))

    def inspect_image(self, image):
        self._record("inspect_image", image)
        return {"Id": "sha256:" + "1" * 64, "Config": {"Cmd": ["start-notebook.sh"]}}

    def inspect_container(self, name):
        self._record("inspect_container", name)
        for container in self.containers.values():
            if name in (container["Id"], container["Name"]):
                return container
        response = requests.Response()
        response.status_code = 404
        raise docker.errors.NotFound(f"No such container: {name}", response=response)

    def create_container(self, **kwargs):
        self._record("create_container", **kwargs)
        container = {
            "Id": "c0ffee" * 10 + "abcd",
            "Name": kwargs["name"],
            "Image": "sha256:" + "2" * 64,
            "State": {"Running": False, "ExitCode": 0, "Error": "", "FinishedAt": ""},
            "Config": {"Env": [f"{k}={v}" for k, v in kwargs["environment"].items()]},
        }
        self.containers[container["Id"]] = container
        return {"Id": container["Id"]}

    def start(self, container):
        self._record("start", container)
        self.containers[container]["State"]["Running"] = True

    def port(self, container, private_port):
        self._record("port", container, private_port)
        return [{"HostIp": "127.0.0.1", "HostPort": "49153"}]

    def stop(self, container, timeout=None):
        self._record("stop", container)
        self.containers[container]["State"]["Running"] = False

    def remove_container(self, container, v=False, link=False, force=False):
        self._record("remove_container", container, v=v)
        self.containers.pop(container)


@pytest.fixture
def recording_client(monkeypatch):
    client = RecordingClient()
    monkeypatch.setattr(WestTekDockerSpawner, "_client", client)
    yield client


async def test_the_container_gets_the_home_volume_env_and_restore_command(
    recording_client, monkeypatch
):
    spawner = make_docker_spawner(
        profile_list=[{"slug": "big", "cpu": 2, "memory_gib": 8, "image": "westtek/nb:big"}],
        store_template="s3://westtek-snapshots/labs/{lab_id}/",
    )
    # The container answers at the mapped port: the test's wait for it is not about Docker.
    monkeypatch.setattr(spawner, "_wait_until_answering", _answering)
    ip, port = await spawner.start()
    assert (ip, port) == ("127.0.0.1", 49153)
    creates = [c for c in recording_client.calls if c[0] == "create_container"]
    (_, _, created) = creates[0]
    env = {**spawner.get_env(), "JUPYTER_IMAGE_SPEC": "westtek/nb:big"}
    assert env["WESTTEK_STORE"] == "s3://westtek-snapshots/labs/vault-13/"
    assert env["WESTTEK_LAB_ID"] == "vault-13" and env["WESTTEK_ENVIRONMENT_ID"] == "alice"
    assert env["JUPYTERHUB_SERVICE_URL"] == "http://0.0.0.0:8888/"
    assert created == {
        "image": "westtek/nb:big",
        "environment": env,
        "volumes": ["/home/jovyan"],
        "name": "jupyter-alice",
        "command": [
            "python",
            "-m",
            "westtek_spawner.prestart",
            "--only",
            "packages",
            "--only",
            "kernels",
            "--only",
            "config",
            "--",
            "jupyterhub-singleuser",
        ],
        "ports": {"8888/tcp": None},
        "working_dir": "/home/jovyan",
        # SIGTERM to SIGKILL: room for the server's before-stop automatic snapshot
        "stop_timeout": 30,
        "host_config": {
            "AutoRemove": True,
            "Binds": ["westtek-home-alice:/home/jovyan:rw"],
            "Links": [],
            "Mounts": [],
            "Memory": 8 * 1024**3,
            "CpuPeriod": 100000,
            "CpuQuota": 200000,
            "PortBindings": {"8888/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
            "NetworkMode": "bridge",
        },
    }
    assert spawner.backend_impl.image_digest() == "sha256:" + "2" * 64
    # dockerspawner's state finds the container after a hub restart,
    state = spawner.get_state()
    assert state["westtek"]["object_name"] == "jupyter-alice"
    reborn = make_docker_spawner()
    reborn.load_state(state)
    assert await reborn.poll() is None
    # and stop removes the container (its anonymous volumes too) but not the home volume.
    await reborn.stop()
    assert [c[0] for c in recording_client.calls[-2:]] == ["stop", "remove_container"]
    assert recording_client.calls[-1][2] == {"v": True}
    assert await reborn.poll() == 0


async def _answering(ip, port):
    return None


async def test_without_profiles_dockerspawners_own_settings_apply(recording_client, monkeypatch):
    spawner = make_docker_spawner(restore_environment=False)
    spawner.config.DockerSpawner.image = "quay.io/jupyter/scipy-notebook:2026-11"
    spawner.config.DockerSpawner.volumes = {"lab-data-{username}": "/data"}
    spawner.config.DockerBackend.home_mount_path = "/home/researcher"
    monkeypatch.setattr(spawner, "_wait_until_answering", _answering)
    await spawner.start()
    (_, _, created) = next(c for c in recording_client.calls if c[0] == "create_container")
    assert created["image"] == "quay.io/jupyter/scipy-notebook:2026-11"
    assert created["command"] == ["jupyterhub-singleuser"]
    assert created["host_config"]["Binds"] == [
        "lab-data-alice:/data:rw",
        "westtek-home-alice:/home/researcher:rw",
    ]
    assert not created["host_config"].get("Memory")  # dockerspawner's default: no limit
    await spawner.stop(now=True)


# -- a real daemon -------------------------------------------------------------------------


@pytest.fixture
def real_client(monkeypatch):
    """The machine's Docker daemon with the notebook image (skip where none answers)."""
    client = docker_client()
    notebook_image(client)
    monkeypatch.setattr(WestTekDockerSpawner, "_client", None)
    yield client
    monkeypatch.setattr(WestTekDockerSpawner, "_client", None)


@pytest.mark.slow
async def test_a_real_container_runs_the_server_with_its_home_volume_and_lab_store(
    real_client, tmp_path
):
    prefix = f"westtek-test-{uuid.uuid4().hex[:8]}"
    store = tmp_path / "stores" / "vault-13"
    spawner = make_docker_spawner(
        cmd=["python", "-c", TINY_SERVER],
        restore_environment=False,
        store_template=str(tmp_path / "stores" / "{lab_id}"),
    )
    config = spawner.config
    config.DockerSpawner.image = NOTEBOOK_IMAGE
    config.DockerSpawner.pull_policy = "never"
    config.DockerSpawner.prefix = prefix
    config.DockerSpawner.network_name = "host"
    config.DockerSpawner.host_ip = "127.0.0.1"
    config.DockerBackend.home_volume = f"{prefix}-home-{{username}}"
    ip, port = await spawner.start()
    try:
        # the server answers on the host's loopback, in the image's non-root user's home,
        assert ip == "127.0.0.1"
        assert requests.get(f"http://{ip}:{port}/home-was", timeout=5).text == "/home/jovyan"
        env = requests.get(f"http://{ip}:{port}/env-was.json", timeout=5).json()
        assert env["WESTTEK_LAB_ID"] == "vault-13" and env["JUPYTERHUB_API_TOKEN"] == "token-alice"
        # its cwd is the researcher's named volume, which outlives the container,
        state = spawner.get_state()["westtek"]
        info = real_client.api.inspect_container(state["object_id"])
        mounts = {m["Destination"]: m for m in info["Mounts"]}
        assert mounts["/home/jovyan"]["Type"] == "volume"
        assert mounts["/home/jovyan"]["Name"] == f"{prefix}-home-alice"
        # its lab's store (and no other) is mounted where WESTTEK_STORE says, theirs to write,
        assert env["WESTTEK_STORE"] == str(store)
        assert mounts[str(store)]["Type"] == "bind" and mounts[str(store)]["RW"]
        assert [m for m in mounts if "stores" in m] == [str(store)]
        assert (store.stat().st_uid, store.stat().st_gid) == (1000, 100)
        assert spawner.backend_impl.image_digest() == info["Image"]
        # and a restarted hub re-attaches to the running container.
        reborn = make_docker_spawner()
        reborn.config.DockerSpawner.network_name = "host"
        reborn.config.DockerSpawner.prefix = prefix
        reborn.load_state(spawner.get_state())
        assert await reborn.poll() is None
    finally:
        await spawner.stop()
    try:
        assert await spawner.poll() == 0
        deadline = time.monotonic() + 30  # Docker removes a stopped container in the background
        while containers_named(real_client, prefix):
            assert time.monotonic() < deadline, "the container was not removed"
            time.sleep(0.2)
        volume = real_client.volumes.get(f"{prefix}-home-alice")
        files = real_client.containers.run(
            NOTEBOOK_IMAGE, ["ls", "/home/jovyan"], network_mode="none", remove=True,
            volumes={volume.name: {"bind": "/home/jovyan", "mode": "ro"}},
        )  # fmt: skip
        assert {"env-was.json", "home-was"} <= set(files.decode().split())
    finally:
        remove_containers(containers_named(real_client, prefix))
        real_client.volumes.get(f"{prefix}-home-alice").remove(force=True)
