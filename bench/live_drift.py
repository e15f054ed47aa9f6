"""Live drift in the real demo: an idle server's CPU, and pip → sidebar latency.

Starts the demo configuration (JupyterHub, configurable-http-proxy, the West Tek hub
service, alice's local single-user server with her own kernel environment) on 127.0.0.1,
as the e2e tests do, and measures:

1. **idle CPU**: alice's server (with its drift watcher running against a fresh baseline)
   left alone for ``--idle`` seconds; CPU seconds of its whole process tree over wall time,
   as % of one core. Target < 1 %.
2. **pip → sidebar latency**: ``--installs`` times, alice's own ``pip`` (the one first on her
   terminal's PATH) switches a small package between two versions; the latency is from
   pip's exit to the drift event arriving on ``westtek/api/drift/stream``, the WebSocket the
   sidebar listens on. Target p95 ≤ 2 s.

Writes ``bench/results/live_drift.json`` and the table between
``<!-- bench:live_drift:start -->`` and ``<!-- bench:live_drift:end -->`` in bench/README.md.

    .venv/bin/python bench/live_drift.py                   # 60 s idle, 20 installs (~3 min)
    .venv/bin/python bench/live_drift.py --idle 10 --installs 4 --no-readme
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(BENCH))

import psutil  # noqa: E402
from benchlib import log, publish, summary  # noqa: E402

from tests.core.conftest import build_wheel  # noqa: E402
from tests.e2e.conftest import HubProcess  # noqa: E402
from tests.e2e.researcher import Researcher  # noqa: E402

RESULTS = BENCH / "results" / "live_drift.json"
MARK_BEGIN = "<!-- bench:live_drift:start -->"
MARK_END = "<!-- bench:live_drift:end -->"
PACKAGE = "westtek_bench_pkg"
IDLE_TARGET_PERCENT = 1.0
LATENCY_TARGET_S = 2.0
SECTION = """## live_drift

`live_drift.py` runs the demo configuration for real (hub, proxy, hub service, alice's
server with her own kernel environment) and measures what a researcher meets: the CPU an
idle server burns while its drift watcher runs, and how long after `pip install` exits the
drift event reaches the sidebar's WebSocket."""


def server_tree(workdir: Path) -> psutil.Process:
    """The single-user server process of alice (started by the hub from ``workdir``)."""
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "jupyterhub.singleuser" in cmdline and str(proc.info["cwd"] or "").startswith(
            str(workdir / "westtek-users" / "alice")
        ):
            return proc
    raise RuntimeError("alice's server process was not found")


def cpu_seconds(proc: psutil.Process) -> float:
    """CPU seconds used so far by ``proc`` and its children (kernels, terminals)."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def measure_idle(server: psutil.Process, seconds: float) -> dict[str, float]:
    """CPU of the server's process tree while nobody uses it, as % of one core."""
    before, began = cpu_seconds(server), time.monotonic()
    time.sleep(seconds)
    used, wall = cpu_seconds(server) - before, time.monotonic() - began
    return {"cpu_seconds": used, "wall_seconds": wall, "percent_of_core": 100 * used / wall}


async def measure_latency(
    alice: Researcher, pip: Path, wheels: Path, installs: int
) -> list[dict[str, float]]:
    """From the exit of pip to the event on the drift stream, for alternating versions."""
    stream = await alice.websocket("westtek/api/drift/stream")
    rows = []
    try:
        for i in range(installs):
            # never back to the baseline's 1.0.0: each install is then a new change
            version = "2.0.0" if i % 2 == 0 else "3.0.0"
            began = time.monotonic()
            await asyncio.to_thread(
                subprocess.run,
                [str(pip), "install", "-q", "--no-index", "--find-links", str(wheels),
                 "--disable-pip-version-check", f"{PACKAGE}=={version}"],
                check=True,
            )  # fmt: skip
            exited = time.monotonic()
            deadline = exited + 30
            while True:
                raw = await asyncio.wait_for(stream.read_message(), deadline - time.monotonic())
                if raw is None:
                    raise RuntimeError("the drift stream closed")
                message = json.loads(raw)
                changes = (message.get("event") or {}).get("changes", [])
                if any(c["name"] == PACKAGE and c["after"] == version for c in changes):
                    break
            arrived = time.monotonic()
            rows.append({"pip_seconds": exited - began, "latency_seconds": arrived - exited})
            log(f"install {i + 1}/{installs}: {version} seen {arrived - exited:.2f} s after pip")
            await asyncio.sleep(1)
    finally:
        stream.close()
    return rows


async def run(idle: float, installs: int) -> dict[str, Any]:
    """Start the demo, snapshot alice's environment, then measure idle CPU and latency."""
    with tempfile.TemporaryDirectory(prefix="westtek-bench-live-") as tmp:
        for version in ("1.0.0", "2.0.0", "3.0.0"):
            wheels = build_wheel(Path(tmp) / "wheel-src", PACKAGE, version)
        workdir = Path(tmp) / "hub"
        workdir.mkdir()
        hub = HubProcess(workdir)
        hub.start()
        try:
            alice = Researcher(hub, "alice")
            began = time.monotonic()
            await asyncio.to_thread(alice.wait_for_server)
            spawn_seconds = time.monotonic() - began
            pip = workdir / "westtek-users" / "alice" / ".venv" / "bin" / "pip"
            subprocess.run(
                [str(pip), "install", "-q", "--no-index", "--find-links", str(wheels),
                 "--disable-pip-version-check", f"{PACKAGE}==1.0.0"],
                check=True,
            )  # fmt: skip
            job = alice.json("POST", "westtek/api/snapshots", json={"baseline": True})
            await asyncio.to_thread(alice.wait_for_job, job)
            await asyncio.sleep(5)  # the watcher restarts against the new baseline
            server = server_tree(workdir)
            log(f"idle for {idle:.0f} s")
            idle_row = measure_idle(server, idle)
            log(f"idle: {idle_row['percent_of_core']:.2f} % of a core")
            latencies = await measure_latency(alice, pip, wheels, installs)
        finally:
            hub.api("DELETE", "users/alice/server")
            hub.stop()
            hub.kill_user_servers()
    return {"spawn_seconds": spawn_seconds, "idle": idle_row, "installs": latencies}


def table(result: dict[str, Any]) -> str:
    """The README table: each measure against its target."""
    idle = result["idle"]
    latency = summary([r["latency_seconds"] for r in result["installs"]])
    pip = summary([r["pip_seconds"] for r in result["installs"]])
    idle_met = idle["percent_of_core"] < IDLE_TARGET_PERCENT
    latency_met = latency["p95"] <= LATENCY_TARGET_S
    return "\n".join([
        f"Latest run: {result['date']}.",
        "",
        "| measure | result | target | verdict |",
        "|---|---|---|---|",
        f"| idle server CPU over {idle['wall_seconds']:.0f} s (server + kernels) | "
        f"{idle['percent_of_core']:.2f} % of a core ({idle['cpu_seconds']:.2f} CPU-s) | "
        f"< {IDLE_TARGET_PERCENT:g} % | {'met' if idle_met else 'missed'} |",
        f"| pip exit → drift event on the sidebar's WebSocket, {latency['n']} installs | "
        f"median {latency['median']:.2f} s, p95 {latency['p95']:.2f} s, max "
        f"{latency['max']:.2f} s | p95 ≤ {LATENCY_TARGET_S:g} s | "
        f"{'met' if latency_met else 'missed'} |",
        f"| the pip install itself (for scale) | median {pip['median']:.2f} s | | |",
        f"| alice's first spawn (creates her environment) | {result['spawn_seconds']:.1f} s | | |",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python "
        f"{platform.python_version()}; load average (1 min) at the end "
        f"{os.getloadavg()[0]:.1f}.",
    ])  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=float, default=60, help="seconds of idle measurement")
    parser.add_argument("--installs", type=int, default=20, help="pip installs timed")
    parser.add_argument("--no-readme", action="store_true", help="leave bench/ files alone")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.idle, args.installs))
    publish(RESULTS, result, (MARK_BEGIN, MARK_END), table, SECTION, write=not args.no_readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
