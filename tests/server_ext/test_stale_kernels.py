"""Stale kernels through a real Jupyter server: a pip upgrade under a running notebook kernel."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.core.conftest import pip_install, research_kernel
from tests.server_ext.test_api import call, next_message, snapshot
from westtek_core.drift.stale_kernels import STALE_KERNEL
from westtek_server_ext import models

# the target is 2 s from the end of the install; a loaded CI machine gets slack
WARNING_SECONDS = 6.0


@pytest.fixture
def westtek_traits(westtek_traits, research_env):
    """The research venv is the captured interpreter and its workspace the server's."""
    return westtek_traits | {
        "pythons": [str(research_env["python"])],
        "workspace": str(research_env["workspace"]),
    }


async def next_event(socket, timeout: float = 30) -> dict:
    """The next drift event on the stream that is about a stale kernel."""
    deadline = time.monotonic() + timeout
    while True:
        message = await next_message(socket, max(deadline - time.monotonic(), 0.01))
        if message["type"] == "event" and any(
            c["kind"] == STALE_KERNEL
            for c in message["event"]["changes"] + message["event"]["resolved"]
        ):
            return message["event"]


async def test_a_kernel_that_imported_a_package_before_its_upgrade_gets_a_warning(
    jp_fetch, jp_ws_fetch, jp_serverapp, research_env, wheelhouse
):
    loop = asyncio.get_running_loop()
    # Given a watching server (against a baseline) with a client on the drift stream
    await snapshot(jp_fetch, note="baseline", baseline=True)
    service = jp_serverapp.web_app.settings["westtek_service"]
    service.start_watching()
    assert await loop.run_in_executor(None, service.wait_watching, 60)
    socket = await jp_ws_fetch("westtek", "api", "drift", "stream")
    await next_message(socket)

    # and a notebook whose kernel (of the research venv) imported westtek_probe_pkg 1.0.0
    response = await jp_fetch(
        "api", "sessions", method="POST",
        body=json.dumps({"path": "analysis.ipynb", "type": "notebook", "name": "analysis.ipynb",
                         "kernel": {"name": research_kernel(research_env)}}),
    )  # fmt: skip
    kernel_id = json.loads(response.body)["kernel"]["id"]
    extension = jp_serverapp.extension_manager.extension_apps["westtek_server_ext"]
    (app,) = extension
    await app.kernel_watch.check(kernel_id)  # the recorder sent at the kernel's start is in
    client = jp_serverapp.kernel_manager.get_kernel(kernel_id).client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        reply = await client.execute_interactive("import westtek_probe_pkg", timeout=30)
        assert reply["content"]["status"] == "ok"
    finally:
        client.stop_channels()

    # When the package is upgraded on disk
    await loop.run_in_executor(
        None, pip_install, research_env["python"], wheelhouse, "westtek_probe_pkg==2.0.0"
    )
    installed = time.monotonic()

    # Then a warning names the notebook, the package and both versions, soon after
    event = await next_event(socket)
    waited = time.monotonic() - installed
    assert waited < WARNING_SECONDS, f"the warning took {waited:.1f} s"
    (change,) = event["changes"]
    assert change["reason"] == (
        "kernel 'analysis.ipynb' still runs westtek_probe_pkg 1.0.0; 2.0.0 is installed: "
        "restart the kernel"
    )
    assert (change["before"], change["after"]) == ("1.0.0", "2.0.0")
    _, drift = await call(jp_fetch, "GET", "drift")
    models.DriftState.model_validate(drift)
    (stale,) = drift["stale_kernels"]
    assert (stale["kernel_id"], stale["notebook"]) == (kernel_id, "analysis.ipynb")
    assert any(c["kind"] == STALE_KERNEL for c in drift["changes"])

    # When the kernel is restarted through Jupyter's REST API (the sidebar's action)
    await jp_fetch("api", "kernels", kernel_id, "restart", method="POST", body="{}")

    # Then the warning is resolved
    event = await next_event(socket)
    assert event["changes"] == []
    assert [c["name"] for c in event["resolved"]] == ["westtek_probe_pkg in analysis.ipynb"]
    _, drift = await call(jp_fetch, "GET", "drift")
    assert drift["stale_kernels"] == []
    assert not any(c["kind"] == STALE_KERNEL for c in drift["changes"])
    socket.close()
    await jp_fetch("api", "sessions", json.loads(response.body)["id"], method="DELETE")
