"""The images `make images` builds hold what their Dockerfiles promise (a real daemon).

Where no Docker daemon answers, these skip with the reason (tests/docker_daemon.py).
"""

from __future__ import annotations

import re

import docker
import pytest

from images.build import REPO, image_reference
from tests.docker_daemon import docker_client, notebook_image


def run(client: docker.DockerClient, image: str, script: str) -> str:
    """Run ``script`` with bash in a throwaway container of ``image``, without a network."""
    output = client.containers.run(
        image, ["bash", "-c", script], entrypoint=[], network_mode="none", remove=True
    )
    return bytes(output).decode()


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker_client()


def test_the_notebook_image_runs_jupyterlab_with_the_suite_as_a_non_root_user(client):
    image = notebook_image(client)
    config = client.images.get(image).attrs["Config"]
    assert config["User"] == "1000"
    assert config["Entrypoint"] == ["/usr/bin/tini", "--"]
    assert config["Cmd"] == ["jupyterhub-singleuser"]
    assert config["Healthcheck"]["Test"][-1] == "/usr/local/bin/westtek-healthcheck"
    found = run(
        client,
        image,
        "id -u; echo $HOME; command -v jupyterhub-singleuser pip;"
        " jupyter server extension list 2>&1 | grep -c 'westtek_server_ext.*enabled';"
        " jupyter kernelspec list --json | python -c 'import json,sys;"
        ' print(sorted(json.load(sys.stdin)["kernelspecs"]))\';'
        " python -c 'import numpy, scipy, pandas, matplotlib, westtek_core; print(\"ok\")';"
        " test -w /opt/westtek/lib && echo writable",
    ).split("\n")
    assert found[:8] == [
        "1000",
        "/home/jovyan",
        "/opt/westtek/bin/jupyterhub-singleuser",
        "/opt/westtek/bin/pip",  # the researcher's `pip install` lands in the kernel's venv
        "1",
        "['python3']",
        "ok",
        "writable",
    ], found


def test_a_login_shell_in_the_notebook_image_finds_the_kernels_pip(client):
    # JupyterLab's terminals are login shells, and /etc/profile resets PATH
    found = run(client, notebook_image(client), "bash -lc 'command -v pip python'")
    assert found.split() == ["/opt/westtek/bin/pip", "/opt/westtek/bin/python"]


def test_the_hub_image_holds_jupyterhub_the_proxy_and_the_production_config(client):
    image = image_reference("hub")
    try:
        config = client.images.get(image).attrs["Config"]
    except docker.errors.ImageNotFound:
        pytest.fail(f"the Docker daemon has no {image}: run `make images`")
    # the command the stack's hub task runs (infra/lib/compute-stack.ts), as a non-root user
    assert config["Cmd"] == ["jupyterhub", "-f", "/srv/westtek/hub_config/aws.py"]
    assert config["User"] == "westtek"
    found = run(
        client,
        image,
        "jupyterhub --version; configurable-http-proxy --version; command -v curl;"
        " python -c 'import westtek_hub, psycopg, boto3, oauthenticator; print(\"ok\")';"
        " ls /srv/westtek/hub_config",
    ).split()
    # the proxy's version is the one `make demo` runs (the Makefile's CHP_VERSION)
    chp = re.search(r"^CHP_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert chp is not None and found[1] == chp.group(1), found
    assert found[2:4] == ["/usr/bin/curl", "ok"], found
    assert {"aws.py", "jupyterhub_config.py"} <= set(found[4:]), found
