"""End to end with real containers: the demo hub's docker backend on this machine's dockerd.

A real JupyterHub and proxy (`make demo-docker`'s configuration) start alice's server as a
container of the notebook image `make images` built, with her own home volume and her
lab's store. What she pip-installs lives in the container's environment, so it would die
with the container: her snapshot brings it back in the next one before JupyterLab opens.
Where no Docker daemon answers, the test skips with the reason (tests/docker_daemon.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests

from tests.core.conftest import build_wheel
from tests.docker_daemon import (
    containers_named,
    docker_client,
    notebook_image,
    remove_containers,
)
from tests.e2e.conftest import HubProcess
from tests.e2e.researcher import Researcher, service_environments, wait_until
from tests.e2e.test_ecs_spawn import progress_of
from westtek_core import __version__

pytestmark = pytest.mark.slow

PACKAGE = "westtek_probe_pkg"


@pytest.fixture
def docker_hub(tmp_path: Path) -> Iterator[tuple[HubProcess, docker.DockerClient, str, Path]]:
    """The docker demo hub; its containers and volumes carry a prefix of this run's own."""
    client = docker_client()
    notebook_image(client)
    wheels = build_wheel(tmp_path / "wheel-src", PACKAGE, "1.0.0")
    prefix = f"westtek-e2e-{uuid.uuid4().hex[:8]}"
    hub = HubProcess(tmp_path, demo_config="jupyterhub_docker_config.py")
    with open(hub.config, "a") as config:
        config.write(
            f"""
# -- test_docker_spawn: containers and volumes of this run only; the wheel to install
c.DockerSpawner.prefix = {prefix!r}
c.DockerBackend.home_volume = {prefix + "-home-{username}"!r}
c.DockerSpawner.read_only_volumes = {{{str(wheels)!r}: {str(wheels)!r}}}
"""
        )
    hub.start()
    yield hub, client, prefix, wheels
    try:
        hub.api("DELETE", "users/alice/server")
    except requests.RequestException:
        pass
    hub.stop()
    containers = containers_named(client, prefix)
    for container in containers:
        print(container.logs(tail=200).decode(errors="replace"))
    remove_containers(containers)
    for volume in client.volumes.list(filters={"name": prefix}):
        volume.remove(force=True)
    print(hub.log())  # pytest shows captured output only when the test failed


async def test_a_package_installed_in_a_container_survives_its_removal(docker_hub) -> None:
    hub, client, prefix, wheels = docker_hub
    # Given alice's server, spawned through the hub as a container of the notebook image
    alice = Researcher(hub, "alice")
    await asyncio.to_thread(alice.wait_for_server)
    (container,) = containers_named(client, prefix)
    assert container.image.tags == [image_tag := notebook_image(client)], image_tag
    homes = [m for m in container.attrs["Mounts"] if m["Destination"] == "/home/jovyan"]
    assert homes[0]["Name"] == f"{prefix}-home-alice"
    store = hub.workdir / "westtek-stores" / "vault-13"
    assert {m["Source"] for m in container.attrs["Mounts"] if m["Type"] == "bind"} >= {str(store)}
    assert not any("vault-101" in m["Source"] for m in container.attrs["Mounts"])
    # whose West Tek API answers through the proxy, run by the image's non-root user,
    status = alice.json("GET", "westtek/api/status")
    assert status["version"] == __version__
    kernel = alice.json("POST", "api/kernels", json={"name": "python3"})["id"]
    assert await alice.run_cell(kernel, "import os; print(os.getuid(), os.environ['HOME'])") == (
        "1000 /home/jovyan\n"
    )

    # when she pip-installs a package in the container and takes a snapshot,
    pip = f"pip install -q --no-index --find-links {wheels} --disable-pip-version-check"
    await alice.run_in_terminal(f"{pip} {PACKAGE}==1.0.0")
    job = alice.json("POST", "westtek/api/snapshots", json={"note": "with the probe package"})
    snapshot_id = (await asyncio.to_thread(alice.wait_for_job, job))["result"]["id"]
    # (the snapshot reaches the hub service, as does where her server runs)
    await wait_until(
        lambda: service_environments(hub, "alice")["alice"]["last_snapshot_id"] == snapshot_id,
        "the hub service knows her snapshot",
    )
    reported = service_environments(hub, "alice")["alice"]["container_info"]
    assert reported["jupyter_url"].endswith("/user/alice/"), reported

    # and her server is stopped, its container removed,
    assert hub.api("DELETE", "users/alice/server").status_code in (202, 204)
    await wait_until(lambda: not containers_named(client, prefix), "the container is removed")

    # then her next server, a fresh container, restores the package before it answers,
    assert hub.api("POST", "users/alice/server").status_code in (201, 202)
    stages = [event["message"] for event in progress_of(hub, "alice", timeout=240)]
    # ("Restoring … from snapshot" while it runs, "Restored …" once done: the hub polls)
    assert any(s.startswith("Restor") and "from snapshot" in s for s in stages), stages
    (fresh,) = containers_named(client, prefix)
    assert fresh.id != container.id
    await asyncio.to_thread(alice.wait_for_server)
    kernel = alice.json("POST", "api/kernels", json={"name": "python3"})["id"]
    code = f"import {PACKAGE}; print({PACKAGE}.VERSION)"
    assert await alice.run_cell(kernel, code) == "1.0.0\n"


async def test_an_install_nobody_snapshotted_survives_the_servers_stop(docker_hub) -> None:
    hub, client, prefix, wheels = docker_hub
    # Given alice's server, a container, where she pip-installs a package and takes no snapshot
    alice = Researcher(hub, "alice")
    await asyncio.to_thread(alice.wait_for_server)
    pip = f"pip install -q --no-index --find-links {wheels} --disable-pip-version-check"
    await alice.run_in_terminal(f"{pip} {PACKAGE}==1.0.0")
    assert alice.json("GET", "westtek/api/snapshots")["snapshots"] == []
    # when her server is stopped (as the idle culler does), its container removed,
    assert hub.api("DELETE", "users/alice/server").status_code in (202, 204)
    await wait_until(lambda: not containers_named(client, prefix), "the container is removed", 90)
    # then her next server has the package: the stopping one snapshotted it first,
    assert hub.api("POST", "users/alice/server").status_code in (201, 202)
    await asyncio.to_thread(alice.wait_for_server)
    kernel = alice.json("POST", "api/kernels", json={"name": "python3"})["id"]
    code = f"import {PACKAGE}; print({PACKAGE}.VERSION)"
    assert await alice.run_cell(kernel, code) == "1.0.0\n"
    # labelled with why it was taken (beside it, the restore's own safety snapshot)
    snapshots = alice.json("GET", "westtek/api/snapshots")["snapshots"]
    automatic = [s["labels"] for s in snapshots if "westtek.auto" in (s.get("labels") or {})]
    assert automatic == [{"westtek.auto": "before-stop"}], snapshots
