"""The service's calls to the hub (issue 18, item 10).

The panel's Stop button calls ``DELETE api/environments/{id}/server``, which asks the hub
to stop the server: the hub stand-in (tests/hub/conftest.py) refuses a DELETE that carries
a body, as JupyterHub's REST API expects none. The service must also refuse to start when
nothing names the hub's API, instead of guessing a loopback address.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from jupyterhub.services.auth import HubAuth

from tests.conftest import free_port
from tests.hub.conftest import SERVICE_TOKEN, answer
from westtek_hub.api_base import HubClient


async def test_the_stop_button_stops_the_researchers_server(api, fake_hub):
    report = {"id": "a1" * 32, "environment_id": "alice", "created_by": "alice",
              "timestamp": datetime.now(timezone.utc).isoformat()}  # fmt: skip
    assert (await api("POST", "snapshots", "alice", report)).code == 201
    stopped = await api("DELETE", "environments/alice/server", "alice")
    assert stopped.code == 202, answer(stopped)
    assert answer(stopped) == {"user": "alice", "server_name": "", "environment_id": "alice"}
    assert fake_hub[0].stopped == [("alice", "")]


async def test_a_body_is_refused_on_a_method_that_carries_none(fake_hub):
    hub = HubClient(HubAuth(api_url=fake_hub[1], api_token=SERVICE_TOKEN))
    with pytest.raises(ValueError, match="DELETE request to the hub carries no body"):
        await hub.request("DELETE", "users/alice/server", {"remove": True})


def test_the_service_refuses_to_start_without_a_hub_api_url(tmp_path: Path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    started = subprocess.run(
        [sys.executable, "-m", "westtek_hub", "--WestTekHubService.ip=127.0.0.1",
         f"--WestTekHubService.port={free_port()}",
         f"--WestTekHubService.data_dir={tmp_path / 'hub'}"],
        env=environment, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert started.returncode != 0
    lines = started.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("westtek-hub: error: no hub API URL"), lines
    assert not (tmp_path / "hub").exists()  # refused before it made anything
