"""The Docker daemon and the West Tek images, for tests that run real containers.

`make test` starts Debian's dockerd where it can (as it sets up PostgreSQL) and builds the
images (`make images`) before the tests. Where no daemon answers, these tests skip with the
reason; where one answers, a missing image is a failure, not a skip.
"""

from __future__ import annotations

from typing import Any

import docker
import pytest

from images.build import image_reference

NOTEBOOK_IMAGE = image_reference("notebook")


def docker_client() -> docker.DockerClient:
    """A client of the machine's Docker daemon (DOCKER_HOST or the default socket), or skip."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as error:
        pytest.skip(
            f"no Docker daemon answers here ({type(error).__name__}: {error}); `make test` "
            "starts Debian's dockerd where it may (as root)"
        )
    return client


def notebook_image(client: docker.DockerClient) -> str:
    """The notebook image `make images` built, which the daemon must have."""
    try:
        client.images.get(NOTEBOOK_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"the Docker daemon has no {NOTEBOOK_IMAGE}: run `make images`")
    return NOTEBOOK_IMAGE


def containers_named(client: docker.DockerClient, part: str) -> list[Any]:
    """Every container, running or not, whose name contains `part`.

    Sparse: the daemon's list as it is, without inspecting each container, which raises
    NotFound for one removed in between (as Docker removes stopped containers, in the
    background).
    """
    return list(client.containers.list(all=True, sparse=True, filters={"name": part}))


def remove_containers(containers: list[Any]) -> None:
    """Force-remove `containers`, those already gone included."""
    for container in containers:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
