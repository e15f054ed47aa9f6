"""Stale kernels: a running kernel that imported a package before it was upgraded on disk."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from jupyter_client.manager import AsyncKernelManager

from tests.core.conftest import pip_install, research_kernel
from westtek_core.drift.events import EventLog
from westtek_core.drift.report import STALE_KERNEL
from westtek_core.drift.stale_kernels import (
    LoadedDistribution,
    ProbeReplyError,
    StaleKernelTracker,
    parse_probe_reply,
    probe_request,
    stale_change,
    stale_modules,
)
from westtek_core.environment_service import EnvironmentService

PROBE = "westtek-probe-pkg"


def loaded(version: str, where: str = "/env/site-packages") -> dict[str, LoadedDistribution]:
    return {PROBE: LoadedDistribution("westtek_probe_pkg", version, where)}


def test_a_distribution_run_at_another_version_than_installed_is_stale():
    (module,) = stale_modules("k1", "analysis.ipynb", loaded("1.0.0"), {PROBE: "2.0.0"})
    assert module.message == (
        "kernel 'analysis.ipynb' still runs westtek_probe_pkg 1.0.0; 2.0.0 is installed: "
        "restart the kernel"
    )
    change = stale_change(module)
    assert (change.kind, change.name, change.change) == (
        STALE_KERNEL,
        "westtek_probe_pkg in analysis.ipynb",
        "upgraded",
    )
    assert (change.before, change.after, change.affected_notebooks) == (
        "1.0.0",
        "2.0.0",
        ("analysis.ipynb",),
    )
    # the same version, or a kernel with no notebook whose package was uninstalled
    assert stale_modules("k1", None, loaded("1.0.0"), {PROBE: "1.0.0"}) == []
    assert stale_modules("k1", None, loaded("1.0"), {PROBE: "1.0.0"}) == []  # one release
    (gone,) = stale_modules("k2", None, loaded("1.0.0"), {PROBE: None})
    assert gone.message == (
        "kernel 'k2' still runs westtek_probe_pkg 1.0.0; it is uninstalled: restart the kernel"
    )
    assert stale_change(gone).change == "removed"


def test_the_tracker_says_what_appeared_and_what_a_restart_resolved():
    tracker = StaleKernelTracker()
    a = stale_modules("a", "a.ipynb", loaded("1.0.0"), {PROBE: "2.0.0"})
    b = stale_modules("b", "b.ipynb", loaded("1.0.0"), {PROBE: "2.0.0"})
    assert tracker.update("a", a) == ([stale_change(a[0])], [])
    assert tracker.update("b", b) == ([stale_change(b[0])], [])
    assert tracker.update("a", a) == ([], [])  # checked again, unchanged: no news
    # restarting one of two stale kernels resolves its change alone
    assert tracker.forget("a") == [stale_change(a[0])]
    assert tracker.current() == b and tracker.kernels() == {"b"}


def test_an_unreadable_probe_answer_is_an_error():
    with pytest.raises(ProbeReplyError):
        parse_probe_reply({"status": "error", "ename": "NameError"})
    with pytest.raises(ProbeReplyError):
        parse_probe_reply({"status": "ok", "user_expressions": {}})


async def ask(client) -> dict[str, LoadedDistribution]:
    """Send the probe as the server extension does; the kernel's record."""
    msg_id = client.execute(**probe_request())
    while True:
        reply = await client.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            return parse_probe_reply(reply["content"])


def service_over(env, tmp_path: Path) -> EnvironmentService:
    return EnvironmentService(
        store=str(tmp_path / "store"),
        key_file=tmp_path / "store.key",
        root=env["workspace"],
        pythons=[str(env["python"])],
        environment_id="alice@vault-13",
        event_log=EventLog(tmp_path / "events.sqlite"),
    )


async def test_a_real_kernel_goes_stale_on_a_pip_upgrade_and_a_restart_clears_it(
    research_env, wheelhouse, tmp_path
):
    # Given a running kernel of the research venv, with the recorder sent when it started
    manager = AsyncKernelManager(kernel_name=research_kernel(research_env))
    await manager.start_kernel()
    client = manager.client()
    client.start_channels()
    service = service_over(research_env, tmp_path)
    try:
        await client.wait_for_ready(timeout=60)
        assert PROBE not in await ask(client)
        # and a cell that imports the package (which has no __version__: only the record
        # made when the cell ended can know it ran 1.0.0)
        await client.execute_interactive("import westtek_probe_pkg", timeout=30)
        record = await ask(client)
        assert record[PROBE].version == "1.0.0"
        assert service.check_kernel("k1", "analysis.ipynb", record) is None

        # When the package is upgraded on disk under the running kernel
        await asyncio.to_thread(
            pip_install, research_env["python"], wheelhouse, "westtek_probe_pkg==2.0.0"
        )

        # Then the kernel still says it runs 1.0.0, and the comparison with the disk makes
        # a stale-kernel event naming the notebook, the package and both versions
        record = await ask(client)
        assert record[PROBE].version == "1.0.0"
        event = service.check_kernel("k1", "analysis.ipynb", record)
        assert event is not None and event["status"] == "CRITICAL_DRIFT"
        (change,) = event["changes"]
        assert change["kind"] == STALE_KERNEL
        assert change["affected_notebooks"] == ["analysis.ipynb"]
        assert change["reason"] == (
            "kernel 'analysis.ipynb' still runs westtek_probe_pkg 1.0.0; 2.0.0 is installed: "
            "restart the kernel"
        )
        (stale,) = service.drift_state(fresh=True)["stale_kernels"]
        assert (stale["kernel_id"], stale["loaded"], stale["installed"]) == ("k1", "1.0.0", "2.0.0")
        assert service.check_kernel("k1", "analysis.ipynb", record) is None  # no news twice

        # When the kernel restarts, it imports the new version
        await manager.restart_kernel()
        await client.wait_for_ready(timeout=60)
        await client.execute_interactive("import westtek_probe_pkg", timeout=30)
        record = await ask(client)

        # Then the change is resolved and no kernel is stale
        assert record[PROBE].version == "2.0.0"
        event = service.check_kernel("k1", "analysis.ipynb", record)
        assert event is not None and event["changes"] == []
        assert [c["name"] for c in event["resolved"]] == ["westtek_probe_pkg in analysis.ipynb"]
        assert service.drift_state(fresh=True)["stale_kernels"] == []
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)
        service.event_log.close()


def test_the_drift_analyzer_leaves_stale_kernels_alone():
    # a stale kernel's remedy is known: restart it; there is no risk to assess
    from westtek_core.agents import AgentLoop, DriftAutoAnalyzer

    (module,) = stale_modules("k1", "analysis.ipynb", loaded("1.0.0"), {PROBE: "2.0.0"})
    event = {"id": 1, "status": "CRITICAL_DRIFT", "changes": [stale_change(module).to_json()]}
    analyzer = DriftAutoAnalyzer(AgentLoop(provider="offline"), lambda: None)
    analyzer({"type": "event", "event": event})
    analyzer.stop()
    assert analyzer.pending == []
