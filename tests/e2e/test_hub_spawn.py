"""End to end: the demo hub, its proxy, the westtek spawner and the server extension."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.e2e.conftest import HubProcess, login
from westtek_core import __version__
from westtek_core.labs import HUB_ADMINS_GROUP

pytestmark = pytest.mark.slow


def server_status(hub: HubProcess, session: requests.Session, user: str, timeout: float = 120):
    """GET westtek/api/status on the user's server through the proxy, once it answers."""
    url = f"{hub.url}/user/{user}/westtek/api/status"
    deadline = time.monotonic() + timeout
    while True:
        # The lab page completes the OAuth dance and sets the _xsrf cookie.
        session.get(f"{hub.url}/user/{user}/lab", timeout=30)
        xsrf = session.cookies.get("_xsrf", path=f"/user/{user}/") or ""
        response = session.get(url, headers={"X-XSRFToken": xsrf}, timeout=30)
        if response.status_code == 200 and response.headers["Content-Type"].startswith(
            "application/json"
        ):
            return response.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}: {response.status_code}\n{hub.log()}")
        time.sleep(0.5)


def test_alice_logs_in_spawns_and_reaches_the_server_extension(hub):
    # Given the demo hub, when alice logs in through the form and her server spawns,
    session = login(hub, "alice")
    session.get(f"{hub.url}/hub/spawn", timeout=120)
    # then westtek/api/status answers through the proxy.
    status = server_status(hub, session, "alice")
    assert status["version"] == __version__
    assert status["component"] == "server-extension"
    alice = hub.api("GET", "users/alice").json()
    assert alice["servers"][""]["ready"]
    assert alice["servers"][""]["state"]["westtek"]["backend"] == "local"


def test_wrong_password_is_refused(hub):
    with pytest.raises(AssertionError, match="login as alice failed: 403"):
        login(hub, "alice", password="not-the-demo-password")


def test_labs_and_admin_are_set_up_as_in_the_demo(hub):
    listed = hub.api("GET", "groups").json()
    groups = {g["name"]: sorted(g["users"]) for g in listed}
    assert groups == {
        "vault-13": ["alice", "bob"],
        "vault-101": ["carol"],
        HUB_ADMINS_GROUP: ["overseer"],
    }
    # the hub admin is one through the group's role, not JupyterHub's admin flag (whose
    # role reaches every server): tests/security/test_admin_server_access.py
    roles = {g["name"]: g["roles"] for g in listed}
    assert roles[HUB_ADMINS_GROUP] == ["westtek-hub-admin"]
    assert hub.api("GET", "users/overseer").json()["admin"] is False
    assert hub.api("GET", "users/alice").json()["admin"] is False


def test_hub_service_answers_through_the_proxy(hub):
    status = requests.get(f"{hub.url}/services/westtek/api/status", timeout=30).json()
    assert status["component"] == "hub-service"
    assert status["version"] == __version__


def test_spawn_reports_progress_events(hub):
    response = hub.api("POST", "users/bob/server")
    assert response.status_code in (201, 202)
    messages = []
    with hub.api_stream("users/bob/server/progress") as stream:
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith("data:"):
                event = json.loads(line[len("data:") :])
                messages.append(event.get("message", ""))
                if event.get("ready") or event.get("failed"):
                    break
    assert any("Preparing the local environment" in m for m in messages), messages
    assert any("Launching the notebook server" in m for m in messages), messages
    assert hub.api("GET", "users/bob").json()["servers"][""]["ready"]


def test_a_running_server_survives_a_hub_restart(hub):
    # Given bob's server running,
    assert hub.api("POST", "users/carol/server").status_code in (201, 202)
    deadline = time.monotonic() + 120
    while not hub.api("GET", "users/carol").json()["servers"].get("", {}).get("ready"):
        assert time.monotonic() < deadline, hub.log()
        time.sleep(0.5)
    pid = hub.api("GET", "users/carol").json()["servers"][""]["state"]["westtek"]["pid"]
    # when the hub restarts,
    hub.stop()
    hub.start()
    # then the same server process is still carol's, and reachable through the new proxy.
    carol = hub.api("GET", "users/carol").json()["servers"][""]
    assert carol["ready"] and carol["state"]["westtek"]["pid"] == pid
    session = login(hub, "carol")
    assert server_status(hub, session, "carol")["component"] == "server-extension"


def test_the_hub_runs_as_an_ordinary_user(tmp_path_factory):
    # Run as root (CI), the other tests cover a root hub: here the same hub runs unprivileged.
    if os.geteuid() != 0:
        pytest.skip("this process is unprivileged: every other e2e test runs an ordinary-user hub")
    nobody = pwd.getpwnam("nobody")
    workdir = Path(tempfile.mkdtemp(prefix="westtek-e2e-nobody-"))
    os.chown(workdir, nobody.pw_uid, nobody.pw_gid)
    hub = HubProcess(workdir, run_as_uid=nobody.pw_uid)
    try:
        hub.start()
        session = login(hub, "alice")
        session.get(f"{hub.url}/hub/spawn", timeout=120)
        assert server_status(hub, session, "alice")["component"] == "server-extension"
        pid = hub.api("GET", "users/alice").json()["servers"][""]["state"]["westtek"]["pid"]
        assert psutil.Process(pid).uids().real == nobody.pw_uid
    finally:
        hub.stop()
        hub.kill_user_servers()
        print(hub.log())
        shutil.rmtree(workdir, ignore_errors=True)
