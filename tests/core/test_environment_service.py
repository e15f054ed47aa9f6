"""The server's environment service: its live capture is reused until something changes."""

from __future__ import annotations

import os
import time

import pytest

from tests.core.conftest import pip_install
from westtek_core import environment_service
from westtek_core.environment_service import EnvironmentService
from westtek_core.events import EventLog


@pytest.fixture
def service(research_env, tmp_path):
    return EnvironmentService(
        store=str(tmp_path / "store"),
        key_file=tmp_path / "store.key",
        root=research_env["workspace"],
        pythons=[str(research_env["python"])],
        environment_id="alice",
        event_log=EventLog(tmp_path / "events.sqlite"),
    )


@pytest.fixture
def captures(monkeypatch):
    """Count the live captures; ``during`` runs inside the next one (then is cleared)."""
    real = environment_service.capture_live
    seen = {"count": 0, "during": None}

    def counted(pythons, root):
        seen["count"] += 1
        capture = real(pythons, root)
        during, seen["during"] = seen["during"], None
        if during:
            during()
        return capture

    monkeypatch.setattr(environment_service, "capture_live", counted)
    return seen


def packages(view):
    return {p["name"]: p["version"] for i in view["interpreters"] for p in i["packages"]}


def test_the_capture_is_reused_until_a_package_changes(service, captures, research_env, wheelhouse):
    time.sleep(0.2)  # the fixture's directories are older than the first capture
    first = service.environment_view()
    assert packages(service.environment_view()) == packages(first)
    assert captures["count"] == 1
    pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==1.1.0")
    assert packages(service.environment_view())["westtek_probe_pkg"] == "1.1.0"
    assert captures["count"] == 2


def test_a_change_during_the_first_capture_is_seen_next_time(service, captures, research_env):
    # Given a kernelspec edited while the first capture runs (after it read the kernels),
    kernel = research_env["tmp"] / "jupyter-data" / "kernels" / "research" / "kernel.json"

    def edit():
        kernel.write_text(kernel.read_text().replace('"Research"', '"Research v2"'))
        os.utime(kernel.parent)  # the spec directory changes too, as an editor's rename does

    captures["during"] = edit
    service.environment_view()
    # the next look captures again rather than trust the first, and shows the edit
    kernels = {k["name"]: k["display_name"] for k in service.environment_view()["kernels"]}
    assert kernels["research"] == "Research v2"
    assert captures["count"] == 2
