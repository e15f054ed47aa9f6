"""End to end, on the real demo hub: a shared snapshot restored in another lab, and succession.

carol (lab vault-101) cannot see alice's environment (lab vault-13) until alice shares a
snapshot of it with vault-101; then carol launches a server from it: the hub service copies
the snapshot into vault-101's store and carol's server restores it before it starts. The
hub admin, overseer, reassigns bob's environment to carol, and the audit log shows every
step and verifies, through the API and the ``westtek audit verify`` command.

Every single-user server captures and restores a throwaway venv (never the repository's own
interpreter): a tiny package at 1.0.0 when alice snapshots it, upgraded to 1.1.0 after, and
back at 1.0.0 once carol's server has restored alice's snapshot.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.core.conftest import build_wheel
from tests.e2e.conftest import HubProcess, user_token
from westtek_core.store import Repository

pytestmark = pytest.mark.slow

PACKAGE = "westtek_succession_probe"
BOB_SNAPSHOT = "b0" * 32


def wait_for(what: str, check: Callable[[], Any], timeout: float, hub: HubProcess) -> Any:
    """``check()``'s first truthy answer, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s\n{hub.log()}")
        time.sleep(0.5)


def pip(venv: Path, wheels: Path, requirement: str) -> None:
    """Install into the pip-less venv with the test interpreter's pip, offline."""
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "-q", "--no-index", "--find-links", str(wheels), "--disable-pip-version-check",
         requirement],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def installed_version(venv: Path) -> str:
    """The package's version as the venv's own interpreter sees it."""
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         f"import importlib.metadata as m; print(m.version({PACKAGE!r}))"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()  # fmt: skip


@pytest.fixture
def research_venv(tmp_path: Path) -> dict[str, Path]:
    """A venv without pip holding the tiny package at 1.0.0, and the wheels of 1.0.0 and 1.1.0."""
    for version in ("1.0.0", "1.1.0"):
        wheels = build_wheel(tmp_path / "wheel-src", PACKAGE, version)  # the same directory
    venv = tmp_path / "research-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip(venv, wheels, f"{PACKAGE}==1.0.0")
    assert installed_version(venv) == "1.0.0"
    return {"venv": venv, "wheels": wheels}


@pytest.fixture
def demo_hub(tmp_path: Path, research_venv: dict[str, Path]) -> Iterator[HubProcess]:
    """The demo hub (as the ``hub`` fixture) whose servers capture and restore only the venv."""
    workdir = tmp_path / "hub"
    workdir.mkdir()
    hub = HubProcess(workdir)
    python = research_venv["venv"] / "bin" / "python"
    with open(hub.config, "a") as config:
        config.write(
            f"c.Spawner.args = [{f'--WestTekExtension.pythons={python}'!r}]\n"
            'c.WestTekSpawner.restore_areas = ["packages"]\n'
        )
    hub.start()
    yield hub
    for user in ("alice", "carol"):
        try:
            hub.api("DELETE", f"users/{user}/server")
        except requests.RequestException:
            pass
    hub.stop()
    hub.kill_user_servers()
    print(hub.log())  # pytest shows captured output only when the test failed


class Researcher:
    """Calls with one user's token: the hub service's API and their own server's."""

    def __init__(self, hub: HubProcess, name: str) -> None:
        self.hub, self.name = hub, name
        self.headers = {"Authorization": f"token {user_token(hub, name)}"}

    def _request(self, method: str, api: str, path: str, body: Any) -> requests.Response:
        return requests.request(
            method, f"{self.hub.url}/{api}/{path}", json=body, headers=self.headers, timeout=120
        )

    def service(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self._request(method, "services/westtek/api", path, body)

    def server(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self._request(method, f"user/{self.name}/westtek/api", path, body)

    def environments(self) -> dict[str, dict[str, Any]]:
        response = self.service("GET", "environments")
        assert response.status_code == 200, response.text
        return {env["id"]: env for env in response.json()["environments"]}


def server_model(hub: HubProcess, user: str) -> dict[str, Any]:
    model: dict[str, Any] = hub.api("GET", f"users/{user}").json()
    return model


def wait_until_ready(hub: HubProcess, user: str, timeout: float = 180) -> None:
    def ready() -> bool:
        model = server_model(hub, user)
        server = model["servers"].get("")
        assert server or model.get("pending"), f"{user}'s server failed to start\n{hub.log()}"
        return bool(server and server.get("ready"))

    wait_for(f"{user}'s server ready", ready, timeout, hub)


def wait_until_stopped(hub: HubProcess, user: str, timeout: float = 60) -> None:
    wait_for(
        f"{user}'s server stopped",
        lambda: not server_model(hub, user)["servers"] and not server_model(hub, user)["pending"],
        timeout,
        hub,
    )


def test_a_shared_snapshot_restores_in_another_lab_and_an_environment_changes_hands(
    demo_hub: HubProcess, research_venv: dict[str, Path]
) -> None:
    hub, venv, wheels = demo_hub, research_venv["venv"], research_venv["wheels"]
    alice, bob = Researcher(hub, "alice"), Researcher(hub, "bob")
    carol, overseer = Researcher(hub, "carol"), Researcher(hub, "overseer")

    # Given alice's server, which snapshots the venv (its package at 1.0.0),
    assert hub.api("POST", "users/alice/server").status_code in (201, 202)
    wait_until_ready(hub, "alice")
    started = alice.server("POST", "snapshots", {"note": "before the drift", "labels": {}})
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]

    def finished_job() -> dict[str, Any] | None:
        job: dict[str, Any] = alice.server("GET", f"jobs/{job_id}").json()
        return job if job["state"] in ("succeeded", "failed") else None

    job = wait_for("alice's snapshot job", finished_job, 180, hub)
    assert job["state"] == "succeeded", job
    snapshot_id = job["result"]["id"]
    # and reports it to the hub service, where her environment's last snapshot is it,
    wait_for(
        "alice's snapshot reported to the hub service",
        lambda: alice.environments().get("alice", {}).get("last_snapshot_id") == snapshot_id,
        60,
        hub,
    )
    assert hub.api("DELETE", "users/alice/server").status_code in (202, 204)
    wait_until_stopped(hub, "alice")
    # and the venv drifts after it.
    pip(venv, wheels, f"{PACKAGE}==1.1.0")
    assert installed_version(venv) == "1.1.0"

    # carol, in another lab, neither sees alice's environment nor launches from its snapshot,
    assert "alice" not in carol.environments()
    refused = carol.service("POST", "environments/jupyter", {"snapshot_id": snapshot_id})
    assert refused.status_code == 404, refused.text  # as missing as a snapshot never taken
    assert not server_model(hub, "carol")["servers"]

    # until alice shares the snapshot with vault-101 (restore allowed);
    share = alice.service(
        "POST",
        "collaboration/share",
        {"snapshot_id": snapshot_id, "to_lab": "vault-101", "permission": "restore"},
    )
    assert share.status_code == 201, share.text
    assert carol.environments()["alice"]["access"] == "shared-restore"
    # then carol's launch from it is accepted,
    launched = carol.service("POST", "environments/jupyter", {"snapshot_id": snapshot_id})
    assert launched.status_code == 202, launched.text
    copied = launched.json()["user_options"]["westtek_restore_snapshot"]
    wait_until_ready(hub, "carol")
    # the snapshot was copied into vault-101's own store,
    store = Repository.open(str(hub.workdir / "westtek-stores" / "vault-101"), create=False)
    try:
        assert copied in store.list_manifests()
    finally:
        store.close()
    # and carol's server restored it before it started: the package is back at 1.0.0.
    prestart = hub.workdir / "westtek-state" / "carol" / "data"
    outcome = json.loads((prestart / "prestart.json").read_text())
    assert outcome["status"] == "restored", outcome
    assert outcome["snapshot"] == copied
    assert installed_version(venv) == "1.0.0"

    # bob's environment, registered as his server would report a snapshot,
    report = {
        "id": BOB_SNAPSHOT,
        "environment_id": "bob",
        "created_by": "bob",
        "timestamp": "2026-11-20T10:00:00+00:00",
        "size_bytes": 123456,
        "checksum": "c0ffee",
        "metadata": {"installed_packages": [f"{PACKAGE}==1.0.0"], "notebook_count": 1},
    }
    reported = bob.service("POST", "snapshots", report)
    assert reported.status_code == 201, reported.text
    assert "bob" not in carol.environments()
    # is reassigned to carol by the hub admin, and becomes her own.
    moved = overseer.service(
        "POST", "knowledge/transfer", {"environment_id": "bob", "to_researcher": "carol"}
    )
    assert moved.status_code == 200, moved.text
    bobs = carol.environments()["bob"]
    assert (bobs["access"], bobs["researcher_id"], bobs["lab_id"]) == ("own", "carol", "vault-101")

    # The audit log shows every step, and its hash chain verifies,
    audit = overseer.service("GET", "audit")
    assert audit.status_code == 200, audit.text
    log = audit.json()
    assert log["verified"] is True, log["problem"]
    seen = {(e["actor"], e["action"], e["outcome"]) for e in log["entries"]}
    for step in [
        ("carol", "server.launch", "denied"),
        ("alice", "share.create", "ok"),
        ("carol", "snapshot.copy", "ok"),
        ("carol", "server.launch", "ok"),
        ("overseer", "environment.reassign", "ok"),
    ]:
        assert step in seen, (step, sorted(seen))
    # in the order they happened,
    order = [
        (e["actor"], e["action"], e["outcome"])
        for e in sorted(log["entries"], key=lambda e: e["seq"])
    ]
    assert (
        order.index(("carol", "server.launch", "denied"))
        < order.index(("alice", "share.create", "ok"))
        < order.index(("carol", "snapshot.copy", "ok"))
        < order.index(("carol", "server.launch", "ok"))
        < order.index(("overseer", "environment.reassign", "ok"))
    )
    copy_entry = next(e for e in log["entries"] if e["action"] == "snapshot.copy")
    assert copy_entry["detail"]["copy"] == copied
    # as the command-line check of the registry's database agrees.
    service_dir = hub.workdir / "westtek-hub"  # the registry, the chain's key and its anchor
    verify = subprocess.run(
        [sys.executable, "-m", "westtek_core.cli", "audit", "verify", "--json",
         "--db", f"sqlite:///{service_dir / 'registry.sqlite'}",
         "--key-file", str(service_dir / "audit_key"),
         "--anchor", str(service_dir / "audit_anchor.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["verified"] is True

    assert hub.api("DELETE", "users/carol/server").status_code in (202, 204)
    wait_until_stopped(hub, "carol")
