"""A day in the lab on the real demo configuration: hub, proxy, alice's server and kernel.

alice snapshots, works in JupyterLab for a while (a kernel runs cells, the notebook and the
lab layout are saved), and her environment stays STABLE with nothing but her notebook
changed; then she pip-installs from a notebook cell and from a terminal, and both reach
her drift events, graded by the notebook that imports the package.
"""

from __future__ import annotations

import asyncio
import sysconfig
import time
from pathlib import Path

import pytest

from tests.core.conftest import build_wheel
from tests.e2e.conftest import HubProcess
from tests.e2e.researcher import Researcher

pytestmark = pytest.mark.slow

PACKAGE = "westtek_probe_pkg"
NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": f"import {PACKAGE}\nprint({PACKAGE}.VERSION)",
        }
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    for version in ("1.0.0", "2.0.0", "2.1.0"):
        found = build_wheel(tmp_path / "wheel-src", PACKAGE, version)
    return found


@pytest.fixture
def demo(tmp_path: Path):
    workdir = tmp_path / "hub"
    workdir.mkdir()
    hub = HubProcess(workdir)
    hub.start()
    yield hub
    hub.api("DELETE", "users/alice/server")
    hub.stop()
    hub.kill_user_servers()
    print(hub.log())  # shown only when the test failed
    print((workdir / "westtek-state" / "alice" / "singleuser.log").read_text()[-20000:])


async def test_a_day_in_the_lab(demo: HubProcess, wheels: Path) -> None:
    alice = Researcher(demo, "alice")
    await asyncio.to_thread(alice.wait_for_server)
    home = demo.workdir / "westtek-users" / "alice"
    pip = f"pip install -q --no-index --find-links {wheels} --disable-pip-version-check"
    # Given alice's own environment with the package her notebook imports, snapshotted,
    await alice.run_in_terminal(f"{pip} {PACKAGE}==1.0.0")
    alice.json("PUT", "api/contents/analysis.ipynb", json={"type": "notebook", "content": NOTEBOOK})
    job = alice.json("POST", "westtek/api/snapshots", json={"note": "clean", "baseline": True})
    await asyncio.to_thread(alice.wait_for_job, job)

    # when she works in JupyterLab for a while — a kernel runs her cells, the notebook and
    # the lab's layout are saved (autosave), a terminal runs —
    kernel = alice.json("POST", "api/kernels", json={"name": "python3"})["id"]
    for round_ in range(3):
        assert (await alice.run_cell(kernel, f"import {PACKAGE}; print({PACKAGE}.VERSION)")) == (
            "1.0.0\n"
        )
        alice.json("PUT", "api/contents/analysis.ipynb",
                   json={"type": "notebook", "content": NOTEBOOK})  # fmt: skip
        layout = {"data": {"round": round_}, "metadata": {"id": "default"}}
        autosave = alice.request("PUT", "lab/api/workspaces/default", json=layout)
        assert autosave.ok, autosave.text
        await alice.run_in_terminal("ls -la > /dev/null")
        await asyncio.sleep(1)
    await asyncio.sleep(2)
    # then her environment is STABLE, with no change but her own notebook's, and no event.
    drift = alice.json("GET", "westtek/api/drift")
    found = [(c["kind"], c["name"], c["change"], c["severity"]) for c in drift["changes"]]
    assert drift["status"] == "STABLE", found
    assert {c["name"] for c in drift["changes"]} <= {"analysis.ipynb"}, drift["changes"]
    assert [e for e in alice.drift_events() if e["status"] != "STABLE"] == []

    # When she upgrades the package from a notebook cell with %pip,
    began = time.monotonic()
    await alice.run_cell(kernel, f"%{pip} {PACKAGE}==2.0.0")
    event = await asyncio.to_thread(alice.wait_for_event, PACKAGE, "2.0.0")
    # then a drift event says so within seconds, critical for the notebook that imports it,
    assert time.monotonic() - began < 30
    change = next(c for c in event["changes"] if c["name"] == PACKAGE)
    assert (change["change"], change["before"], change["severity"]) == (
        "upgraded", "1.0.0", "critical"
    )  # fmt: skip
    assert change["affected_notebooks"] == ["analysis.ipynb"]
    # and the environment view shows the new version without being asked to refresh.
    view = alice.json("GET", "westtek/api/environment")
    # (her environment is the one interpreter captured: the suite's packages layered in it)
    assert [i["prefix"] for i in view["interpreters"]] == [str(home / ".venv")]
    versions = {p["name"]: p["version"] for i in view["interpreters"] for p in i["packages"]
                if str(i["prefix"] or "").startswith(str(home))}  # fmt: skip
    assert versions[PACKAGE] == "2.0.0"

    # When she upgrades it again from a terminal (her own environment's pip, first on PATH),
    out = await alice.run_in_terminal(f"command -v pip && {pip} {PACKAGE}==2.1.0")
    assert f"{home}/.venv/bin/pip" in out
    event = await asyncio.to_thread(alice.wait_for_event, PACKAGE, "2.1.0")
    change = next(c for c in event["changes"] if c["name"] == PACKAGE)
    assert change["affected_notebooks"] == ["analysis.ipynb"]
    # and the hub's own packages (the test's interpreter runs the hub) never changed.
    hub_site = Path(sysconfig.get_paths()["purelib"])
    assert not [p for p in hub_site.iterdir() if p.name.startswith(PACKAGE)]
