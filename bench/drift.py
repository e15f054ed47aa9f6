"""Benchmark the drift detector: event latency, watcher idle cost, warm CLI, import analysis.

1. **event latency**: a throwaway venv (offline) with a tiny local wheel at 1.0.0, a
   workspace whose notebook imports it, a baseline snapshot and a ``DriftWatcher`` in a
   thread; pip alternately upgrades to 1.1.0 and downgrades to 1.0.0, and the latency is
   the time from the pip process's exit to the watcher's ``on_event`` callback reporting
   the new state.
1b. **event latency over the WebSocket**: the same fixture watched by a real ``jupyter
   server`` subprocess with the West Tek extension (baseline snapshot through
   ``POST westtek/api/snapshots``); the latency is the time from pip's exit to the
   matching ``{"type": "event"}`` message arriving on ``WS westtek/api/drift/stream``.
2. **idle cost**: CPU the process uses while the watcher runs and nothing changes.
3. **warm ``westtek drift``** on the snapshot benchmark's tree (``bench/.cache/tree``), if built.
4. **import analysis** of 1,000 generated notebooks (``analyse_workspace``).

The whole run happens in a fresh network namespace with only loopback up (``unshare
--net``) when the machine allows it. The table goes into ``bench/README.md`` between the
``bench:drift`` markers and the raw numbers into ``bench/results/drift.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import pstats
import queue
import random
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
sys.path.insert(0, str(REPO_ROOT))  # the tests' offline wheel builder is reused below
from benchlib import (  # noqa: E402
    cpu_model,
    free_port,
    log,
    reexec_offline,
    replace_readme_block,
    run_step,
    summary,
)

from tests.core.conftest import build_wheel  # noqa: E402

sys.path.insert(0, str(REPO_ROOT))

VENV_PY = REPO_ROOT / ".venv" / "bin" / "python"
WESTTEK = REPO_ROOT / ".venv" / "bin" / "westtek"
TREE = BENCH / ".cache" / "tree"
TREE_PY = TREE / "env" / "bin" / "python"
TREE_WORKSPACE = TREE / "workspace"
RESULTS = BENCH / "results" / "drift.json"
README = BENCH / "README.md"
MARK_START = "<!-- bench:drift:start -->"
MARK_END = "<!-- bench:drift:end -->"

PKG = "westtek_bench_pkg"
OLD, NEW = "1.0.0", "1.1.0"
SEED = 20261126
DEBOUNCE_MS = 300  # the watchers' debounce, in-process and in the server (both defaults)
WS_TRIAL_TIMEOUT = 10.0  # seconds from pip's exit to the WS message; longer is a timeout
SERVER_START_TIMEOUT = 90.0
JUPYTER = REPO_ROOT / ".venv" / "bin" / "jupyter"
STEPS = ("watcher", "websocket", "cli", "imports")
RUN_TIMEOUT = 25 * 60  # the whole run, in seconds
_NETNS_FLAG = "WESTTEK_BENCH_DRIFT_NETNS"

TARGETS = {
    "latency_p95_s": 2.0,
    "idle_cpu_pct": 1.0,
    "drift_warm_s": 1.0,
    "import_analysis_s": 5.0,
}


def run(
    argv: Sequence[str | Path],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command with a timeout, capturing its output; raise on failure if ``check``."""
    args = [str(a) for a in argv]
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    if check and done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"exit {done.returncode}: {' '.join(args)}\n{tail}")
    return done


# --------------------------------------------------------------------------- fixtures


def pip_argv(python: Path, wheels: Path, requirement: str) -> list[str]:
    """An offline ``pip install`` of one requirement from ``wheels``."""
    return [
        str(python),
        "-m",
        "pip",
        "install",
        "-q",
        "--no-index",
        "--find-links",
        str(wheels),
        "--disable-pip-version-check",
        requirement,
    ]


def notebook_json(cells: list[dict[str, Any]], kernel: str = "research") -> str:
    """An nbformat 4 notebook around ``cells``."""
    return json.dumps(
        {
            "cells": cells,
            "metadata": {
                "kernelspec": {"name": kernel, "display_name": kernel, "language": "python"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        },
        indent=1,
    )


def code_cell(source: str, outputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A code cell (source split into lines, as Jupyter saves it)."""
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": outputs or [],
        "source": source.splitlines(keepends=True),
    }


def make_latency_fixture(tmp: Path) -> dict[str, Path]:
    """Wheels, a venv with the package at 1.0.0, a kernelspec and a workspace."""
    wheels = build_wheel(tmp, PKG, OLD)
    build_wheel(tmp, PKG, NEW)
    venv = tmp / "env"
    run([VENV_PY, "-m", "venv", venv], timeout=300)
    python = venv / "bin" / "python"
    run(pip_argv(python, wheels, f"{PKG}=={OLD}"), timeout=300)

    jupyter_data, jupyter_config = tmp / "jupyter-data", tmp / "jupyter-config"
    kernel = jupyter_data / "kernels" / "research"
    kernel.mkdir(parents=True)
    jupyter_config.mkdir()
    (kernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Research",
                "language": "python",
            }
        )
    )
    os.environ.update(
        JUPYTER_DATA_DIR=str(jupyter_data),
        JUPYTER_CONFIG_DIR=str(jupyter_config),
        JUPYTER_PATH=str(jupyter_data),
        JUPYTER_CONFIG_PATH=str(jupyter_config),
        JUPYTER_PREFER_ENV_PATH="0",
        JUPYTER_PLATFORM_DIRS="0",
    )
    workspace = tmp / "workspace"
    (workspace / "data").mkdir(parents=True)
    (workspace / "data" / "measurements.csv").write_text(
        "t,x\n" + "".join(f"{i},{i * i}\n" for i in range(5000))
    )
    (workspace / "analysis.ipynb").write_text(
        notebook_json(
            [
                code_cell(f"import {PKG}\nimport pandas as pd"),
                code_cell("df = pd.read_csv('data/measurements.csv')"),
                code_cell(f"print({PKG}.VERSION, len(df))"),
            ]
        )
    )
    return {"python": python, "wheels": wheels, "workspace": workspace}


# --------------------------------------------------------------------------- steps 1 and 2


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def bench_watcher(tmp: Path, trials: int, idle_seconds: float) -> dict[str, Any]:
    """Event latency over ``trials`` pip installs, then the watcher's idle CPU."""
    from westtek_core.capture import capture_environment
    from westtek_core.drift.events import EventLog
    from westtek_core.drift.watch import DriftWatcher
    from westtek_core.snapshot import create_snapshot, load_snapshot
    from westtek_core.store import Repository

    log("latency: building wheels, venv and workspace")
    fx = make_latency_fixture(tmp)
    python, workspace = str(fx["python"]), fx["workspace"]
    repo = Repository.open(str(tmp / "store"), cache_dir=tmp / "store-cache")
    snapshot = create_snapshot(repo, capture_environment([python], workspace))
    baseline = load_snapshot(repo, snapshot.id)
    events = EventLog(tmp / "events.sqlite")
    seen: queue.Queue[tuple[float, str, dict[str, Any]]] = queue.Queue()
    holder: dict[str, DriftWatcher] = {}

    def package_state() -> str:
        """The package's version as the watcher's current report has it."""
        for change in holder["watcher"].report.changes:
            if change.kind == "package" and _canonical(change.name) == _canonical(PKG):
                return change.after or "absent"
        return OLD

    def on_event(event: dict[str, Any]) -> None:
        seen.put((time.monotonic(), package_state(), event))

    watcher = DriftWatcher([python], workspace, baseline, events, on_event, debounce_ms=DEBOUNCE_MS)
    holder["watcher"] = watcher
    assert watcher.report.status.value == "STABLE", watcher.report.status
    thread = threading.Thread(target=watcher.run, name="drift-watcher", daemon=True)
    thread.start()
    out: dict[str, Any] = {"watched": watcher.watched_paths(), "trials": []}
    # wait until the file watches are live (the ready event), or a fixed 1.5 s without one
    ready: threading.Event | None = getattr(watcher, "ready", None)
    if ready is None:
        time.sleep(1.5)
    elif not ready.wait(30):
        raise RuntimeError("the watcher did not become ready within 30 s")
    out["ready_signal"] = ready is not None
    try:
        for trial in range(trials):
            target = NEW if trial % 2 == 0 else OLD
            start = time.monotonic()
            proc = subprocess.Popen(
                pip_argv(fx["python"], fx["wheels"], f"{PKG}=={target}"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                raise RuntimeError(f"pip install {PKG}=={target} took over 120 s") from None
            exited = time.monotonic()
            if proc.returncode != 0:
                raise RuntimeError(f"pip install {PKG}=={target}: exit {proc.returncode}")
            record: dict[str, Any] = {
                "target": target,
                "pip_seconds": exited - start,
                "latency_s": None,
                "events_seen": 0,
            }
            deadline = exited + 30
            while True:
                try:
                    when, state, event = seen.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    log(f"  trial {trial}: no event reaching {target} within 30 s")
                    break
                record["events_seen"] += 1
                if when >= start and state == target:
                    record["latency_s"] = when - exited
                    record["status"] = event["status"]
                    break
            out["trials"].append(record)
            lat = record["latency_s"]
            log(f"  trial {trial:2d} → {target}: " + ("timeout" if lat is None else f"{lat:.3f} s"))
            time.sleep(0.5)  # let late batches of this install settle before the next
        latencies = [t["latency_s"] for t in out["trials"] if t["latency_s"] is not None]
        out["latency"] = summary(latencies) if latencies else None
        out["timeouts"] = sum(1 for t in out["trials"] if t["latency_s"] is None)

        log(f"idle: watcher running, nothing changing, {idle_seconds:.0f} s")
        time.sleep(2)
        while not seen.empty():
            seen.get_nowait()
        self0, kids0 = (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
        wall0 = time.monotonic()
        time.sleep(idle_seconds)
        wall = time.monotonic() - wall0
        self1, kids1 = (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
        cpu = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
        kids = (kids1.ru_utime - kids0.ru_utime) + (kids1.ru_stime - kids0.ru_stime)
        out["idle"] = {
            "wall_s": wall,
            "cpu_s": cpu,
            "user_s": self1.ru_utime - self0.ru_utime,
            "sys_s": self1.ru_stime - self0.ru_stime,
            "children_cpu_s": kids,
            "cpu_pct_of_one_core": 100 * (cpu + kids) / wall,
            "events_during_idle": seen.qsize(),
            "threads": threading.active_count(),
        }
        log(f"  idle CPU {out['idle']['cpu_pct_of_one_core']:.3f}% of one core")
    finally:
        watcher.stop_event.set()
        thread.join(10)
        events.close()
    out["watcher_stopped"] = not thread.is_alive()
    return out


# --------------------------------------------------------------------------- step 1b


def _event_package_state(event: dict[str, Any]) -> str | None:
    """The version of the bench package an event leaves the environment at.

    A new package change gives its ``after`` (``absent`` when removed); a resolved one with
    no new one means the package is back at the baseline's version; ``None`` when the
    event does not mention the package.
    """
    for change in event.get("changes") or []:
        if change.get("kind") == "package" and _canonical(change["name"]) == _canonical(PKG):
            return str(change.get("after") or "absent")
    for change in event.get("resolved") or []:
        if change.get("kind") == "package" and _canonical(change["name"]) == _canonical(PKG):
            return OLD
    return None


class JupyterServer:
    """A ``jupyter server`` subprocess with the West Tek extension, in its own session."""

    def __init__(self, tmp: Path, python: Path, workspace: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.base_url = f"http://127.0.0.1:{self.port}/"
        self.log_path = tmp / "server.log"
        dirs = {name: tmp / name for name in ("runtime", "xdg-data", "xdg-config", "xdg-cache")}
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        self.argv = [
            str(JUPYTER),
            "server",
            "--no-browser",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={workspace}",
            "--allow-root",
            "--ServerApp.jpserver_extensions=westtek_server_ext=True",
            f"--WestTekExtension.pythons={python}",
            f"--WestTekExtension.workspace={workspace}",
            f"--WestTekExtension.store={tmp / 'store'}",
            "--WestTekExtension.environment_id=bench",
            f"--WestTekExtension.debounce_ms={DEBOUNCE_MS}",
            "--WestTekExtension.watch=True",
        ]
        # the JUPYTER_* dirs are the fixture's (make_latency_fixture set them in os.environ)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WESTTEK_")}
        self.env.update(
            JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
            XDG_DATA_HOME=str(dirs["xdg-data"]),  # the event log and baselines
            XDG_CONFIG_HOME=str(dirs["xdg-config"]),
            XDG_CACHE_HOME=str(dirs["xdg-cache"]),
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server process (not waiting for it to answer)."""
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.tmp,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, for the kill on timeout
            )

    def log_tail(self, lines: int = 25) -> str:
        """The last lines of the server's output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> dict[str, Any]:
        """SIGTERM, wait up to ``timeout``, then SIGKILL its process group."""
        proc = self.proc
        if proc is None:
            return {"stopped": "never started"}
        if proc.poll() is not None:
            return {"stopped": "had exited", "returncode": proc.returncode}
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
            how = "SIGTERM"
        except subprocess.TimeoutExpired:
            log(f"  server did not stop within {timeout:.0f} s of SIGTERM: killing it")
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(10)
            how = "SIGKILL after SIGTERM timed out"
        return {"stopped": how, "returncode": proc.returncode, "stop_s": time.monotonic() - started}


async def _ws_trials(
    server: JupyterServer, fx: dict[str, Path], trials: int, out: dict[str, Any]
) -> None:
    """Baseline through the API, wait for the watcher, then the pip trials over the WS."""
    from tornado.httpclient import AsyncHTTPClient, HTTPRequest
    from tornado.websocket import websocket_connect

    auth = {"Authorization": f"token {server.token}"}
    client = AsyncHTTPClient()
    proc = server.proc
    assert proc is not None

    async def api(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        request = HTTPRequest(
            server.base_url + path,
            method=method,
            headers={**auth, "Content-Type": "application/json"},
            body=None if body is None else json.dumps(body),
            request_timeout=30,
        )
        response = await client.fetch(request, raise_error=False)
        try:
            payload = json.loads(response.body or b"null")
        except ValueError:
            payload = (response.body or b"")[:200].decode(errors="replace")
        return response.code, payload

    # 1. the server answers
    started = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter server exited ({proc.returncode}):\n{server.log_tail()}")
        try:
            code, _ = await api("GET", "api/status")
        except OSError:
            code = 0
        if code == 200:
            break
        if time.monotonic() - started > SERVER_START_TIMEOUT:
            raise RuntimeError(f"jupyter server silent for {SERVER_START_TIMEOUT:.0f} s")
        await asyncio.sleep(0.25)
    out["server_start_s"] = time.monotonic() - started
    log(f"  server answering after {out['server_start_s']:.1f} s")

    # 2. the baseline snapshot, as a job
    started = time.monotonic()
    code, job = await api("POST", "westtek/api/snapshots", {"note": "bench", "baseline": True})
    if code != 202:
        raise RuntimeError(f"POST westtek/api/snapshots: {code} {job}")
    while job["state"] not in ("succeeded", "failed"):
        if time.monotonic() - started > 300:
            raise RuntimeError(f"snapshot job {job['id']} still {job['state']} after 300 s")
        await asyncio.sleep(0.2)
        code, job = await api("GET", f"westtek/api/jobs/{job['id']}")
        if code != 200:
            raise RuntimeError(f"GET westtek/api/jobs: {code} {job}")
    if job["state"] != "succeeded":
        raise RuntimeError(f"snapshot job failed: {job.get('error')}")
    snapshot_id = job["result"]["id"]
    out["baseline_snapshot_s"] = time.monotonic() - started

    # 3. the server's watcher is live against that baseline
    started = time.monotonic()
    while True:
        code, drift = await api("GET", "westtek/api/drift")
        if (
            code == 200
            and drift.get("watching")
            and drift.get("baseline") == snapshot_id
            and drift.get("status") == "STABLE"
        ):
            break
        if time.monotonic() - started > 60:
            raise RuntimeError(f"the server's watcher not live within 60 s: {code} {drift}")
        await asyncio.sleep(0.1)
    out["watching_after_s"] = time.monotonic() - started
    log(f"  baseline {snapshot_id[:12]} in {out['baseline_snapshot_s']:.1f} s; watching")

    # 4. the WebSocket: a reader task stamps each message as it arrives
    ws_url = server.base_url.replace("http://", "ws://") + "westtek/api/drift/stream"
    conn = await websocket_connect(
        HTTPRequest(ws_url, headers=auth, connect_timeout=10, request_timeout=10)
    )
    first = await asyncio.wait_for(conn.read_message(), 10)
    if first is None or json.loads(first).get("type") != "state":
        raise RuntimeError(f"the stream's first message is not the state: {first!r}")
    arrived: asyncio.Queue[tuple[float, float, dict[str, Any]] | None] = asyncio.Queue()

    async def reader() -> None:
        while True:
            raw = await conn.read_message()
            now, wall = time.monotonic(), time.time()
            if raw is None:
                await arrived.put(None)
                return
            await arrived.put((now, wall, json.loads(raw)))

    reading = asyncio.create_task(reader())
    loop = asyncio.get_running_loop()
    out["messages"] = {"state": 1, "event": 0, "other": 0}
    try:
        await asyncio.sleep(1.0)  # the watcher's own "ready" state broadcast, if any
        for trial in range(trials):
            target = NEW if trial % 2 == 0 else OLD
            argv = pip_argv(fx["python"], fx["wheels"], f"{PKG}=={target}")
            start, exited, exited_wall, rc = await loop.run_in_executor(None, _timed_pip, argv)
            if rc != 0:
                raise RuntimeError(f"pip install {PKG}=={target}: exit {rc}")
            record: dict[str, Any] = {
                "target": target,
                "pip_seconds": exited - start,
                "latency_s": None,
                "messages_seen": 0,
            }
            deadline = exited + WS_TRIAL_TIMEOUT
            while True:
                try:
                    item = await asyncio.wait_for(
                        arrived.get(), max(0.0, deadline - time.monotonic())
                    )
                except asyncio.TimeoutError:
                    log(
                        f"  trial {trial}: no WS event reaching {target} within "
                        f"{WS_TRIAL_TIMEOUT:.0f} s"
                    )
                    break
                if item is None:
                    raise RuntimeError(f"the WebSocket closed:\n{server.log_tail()}")
                when, wall, message = item
                kind = message.get("type")
                out["messages"][kind if kind in ("state", "event") else "other"] += 1
                record["messages_seen"] += 1
                if kind != "event" or when < start:
                    continue
                event = message["event"]
                if _event_package_state(event) == target:
                    record["latency_s"] = when - exited
                    record["status"] = event.get("status")
                    # the server's side: pip exit → event logged; the rest is delivery
                    record["logged_after_exit_s"] = float(event["time"]) - exited_wall
                    record["delivery_s"] = wall - float(event["time"])
                    break
            out["trials"].append(record)
            lat = record["latency_s"]
            log(
                f"  ws trial {trial:2d} → {target}: "
                + ("timeout" if lat is None else f"{lat:.3f} s")
            )
            await asyncio.sleep(0.5)  # as step 1: let late batches settle
        code, listed = await api("GET", "westtek/api/drift/events?limit=1000")
        out["events_logged"] = len(listed.get("events", [])) if code == 200 else None
    finally:
        reading.cancel()
        conn.close()
        client.close()


def _timed_pip(argv: list[str]) -> tuple[float, float, float, int]:
    """Run pip; its start, its exit (``monotonic`` and wall clock) and its exit code."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        raise RuntimeError(f"{' '.join(argv[-1:])}: pip took over 120 s") from None
    exited, exited_wall = time.monotonic(), time.time()
    return start, exited, exited_wall, proc.returncode


def bench_websocket(tmp: Path, trials: int) -> dict[str, Any]:
    """Event latency from pip's exit to the message on a real server's drift WebSocket."""
    log("ws latency: building wheels, venv and workspace")
    fx = make_latency_fixture(tmp)
    server = JupyterServer(tmp / "server", fx["python"], fx["workspace"])
    out: dict[str, Any] = {"trials": [], "debounce_ms": DEBOUNCE_MS, "port": server.port}
    log(f"ws latency: starting jupyter server on 127.0.0.1:{server.port}")
    try:
        server.start()
        asyncio.run(_ws_trials(server, fx, trials, out))
    except Exception as exc:
        log("ws latency failed:\n" + traceback.format_exc())
        tail = server.log_tail()
        raise RuntimeError(f"{type(exc).__name__}: {exc}\n--- server log tail ---\n{tail}") from exc
    finally:
        out["server_stop"] = server.stop()
        log(f"  server stopped: {out['server_stop']}")
    latencies = [t["latency_s"] for t in out["trials"] if t["latency_s"] is not None]
    out["timeouts"] = sum(1 for t in out["trials"] if t["latency_s"] is None)
    out["latency"] = summary(latencies) if latencies else None
    delivery = [t["delivery_s"] for t in out["trials"] if t.get("delivery_s") is not None]
    out["delivery"] = summary(delivery) if delivery else None
    detected = [t["logged_after_exit_s"] for t in out["trials"] if "logged_after_exit_s" in t]
    out["detection"] = summary(detected) if detected else None
    return out


# --------------------------------------------------------------------------- step 3


def westtek_env(tmp: Path) -> dict[str, str]:
    """The environment for westtek subprocesses: temp XDG cache/data/config dirs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WESTTEK_", "JUPYTER_"))}
    env.update(
        XDG_CACHE_HOME=str(tmp / "xdg-cache"),
        XDG_DATA_HOME=str(tmp / "xdg-data"),
        XDG_CONFIG_HOME=str(tmp / "xdg-config"),
    )
    return env


def _short_path(file: str) -> str:
    if file.startswith(str(REPO_ROOT) + "/"):
        return os.path.relpath(file, REPO_ROOT)
    return "/".join(Path(file).parts[-2:]) if file.startswith("/") else file


def _top_cumulative(profile: Path, count: int) -> list[dict[str, Any]]:
    """The ``count`` largest cumulative costs below the CLI's entry point.

    A frame calling or called by an already seen one for ≥ 93% of its time (a wrapper, a
    chain of import frames, a future's ``result`` → ``wait`` → lock) is the same cost and
    is left out.
    """
    stats = pstats.Stats(str(profile))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = max((v[3] for v in raw.values()), default=0.0)
    # frames covering (nearly) the whole run are the entry point, not a cost
    wrappers = {"<module>", "main", "_run_code", "_run_module_as_main", "run", "runctx", "exec"}
    wrappers |= {"_run", "_cmd_drift"}  # the CLI's dispatch: the whole command
    seen: list[Any] = []
    picked: list[dict[str, Any]] = []
    for key in sorted(raw, key=lambda k: -raw[k][3]):
        file, line, func = key
        _, calls, tt, ct, callers = raw[key]
        if (
            ct >= 0.9 * total
            or func in wrappers
            or func.startswith("<built-in method builtins.exec")
        ):
            continue
        related = [
            other
            for other in seen
            if (other in callers or key in raw[other][4]) and ct >= 0.93 * raw[other][3]
        ]
        seen.append(key)
        if related:
            continue
        row: dict[str, Any] = {
            "total_s": total,
            "function": func,
            "where": f"{_short_path(file)}:{line}",
            "calls": calls,
            "tottime_s": tt,
            "cumtime_s": ct,
        }
        if func in ("wait", "result") or ("acquire" in func and "lock" in func):
            row["note"] = (
                "the main thread waiting, mostly for the interpreter probe and prefix walk"
            )
        elif "importlib" in file:
            row["note"] = "module imports"
        picked.append(row)
        if len(picked) == count:
            break
    return picked


def bench_cli_drift(tmp: Path, reps: int) -> dict[str, Any] | None:
    """``westtek drift --json`` on the snapshot benchmark's tree, warm."""
    if not TREE_PY.exists():
        log(f"drift warm: {TREE_PY} missing, step skipped (run bench/snapshot_vs_restic.py)")
        return None
    env = westtek_env(tmp)
    store = tmp / "store"
    log("drift warm: baseline snapshot of the benchmark tree")
    started = time.monotonic()
    create_argv: list[str | Path] = [WESTTEK, "snapshot", "create", "--python", TREE_PY]
    create_argv += ["--root", TREE_WORKSPACE, "--store", store, "--json"]
    create = run(create_argv, timeout=900, env=env)
    snapshot_s = time.monotonic() - started
    argv: list[str | Path] = [WESTTEK, "drift", "--python", TREE_PY, "--root", TREE_WORKSPACE]
    argv += ["--store", store, "--json"]
    seconds: list[float] = []
    status = ""
    for rep in range(reps + 1):
        started = time.monotonic()
        done = run(argv, timeout=300, env=env)
        elapsed = time.monotonic() - started
        report = json.loads(done.stdout)
        status = str(report.get("status"))
        if rep:
            seconds.append(elapsed)
        log(f"  drift {'warm-up' if rep == 0 else rep}: {elapsed:.2f} s ({status})")
    out: dict[str, Any] = {
        "baseline_snapshot_s": snapshot_s,
        "baseline_snapshot": json.loads(create.stdout).get("id"),
        "seconds": seconds,
        "summary": summary(seconds),
        "status": status,
        "changes": len(report.get("changes", [])),
    }
    if out["summary"]["median"] > TARGETS["drift_warm_s"]:
        log("  missed the target: profiling once with cProfile")
        profile = tmp / "drift.prof"
        started = time.monotonic()
        run(
            [VENV_PY, "-m", "cProfile", "-o", profile, "-m", "westtek_core", *argv[1:]],
            timeout=300,
            env=env,
        )
        out["profiled_s"] = time.monotonic() - started
        out["profile_top"] = _top_cumulative(profile, 5)
        out["profile_top_tottime"] = sorted(
            _top_cumulative(profile, 40), key=lambda r: -r["tottime_s"]
        )[:10]
    return out


# --------------------------------------------------------------------------- step 4

_IMPORTS = (
    "import numpy as np",
    "import pandas as pd",
    "import matplotlib.pyplot as plt",
    "import seaborn as sns",
    "from scipy import stats",
    "from sklearn.model_selection import train_test_split",
    "from sklearn.linear_model import LogisticRegression",
    "import statsmodels.api as sm",
    "import statsmodels.formula.api as smf",
    "import os, sys, json",
    "from pathlib import Path",
    "import requests",
    "import torch",
    "from tqdm.auto import tqdm",
    "import xarray as xr",
    "import polars as pl",
)
_READS = (
    "df = pd.read_csv('data/{name}.csv', parse_dates=['date'])",
    "df = pd.read_parquet('../data/{name}.parquet')",
    "arr = np.load('data/{name}.npy')",
    "with open('data/{name}.json') as f:\n    meta = json.load(f)",
    "raw = Path('data') / '{name}.txt'\ntext = raw.read_text()",
    "df = pd.read_excel('data/{name}.xlsx', sheet_name=0)",
    "ds = xr.open_dataset('data/{name}.nc')",
)
_MAGICS = (
    "%matplotlib inline",
    "%load_ext autoreload\n%autoreload 2",
    "%pip install -q seaborn==0.13.2",
    "!ls -la data/",
    "%%time\nresult = model.fit()",
    "%timeit np.sum(arr)",
    "%env OMP_NUM_THREADS=2",
    "files = !ls data\nprint(files)",
)
_BODIES = (
    "df.head()",
    "df.describe()",
    "X = df.drop(columns=['target'])\ny = df['target']\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2)",
    "model = smf.ols('y ~ x1 + x2', data=df)\nres = model.fit()\nprint(res.summary())",
    "fig, ax = plt.subplots(figsize=(8, 4))\nax.plot(df['x'], df['y'])\nax.set_title('{name}')",
    "def clean(frame):\n    frame = frame.dropna()\n    return frame[frame['x'] > 0]\n\n"
    "df = clean(df)",
    "for col in df.columns:\n    print(col, df[col].dtype, df[col].isna().sum())",
    "grouped = df.groupby('group').agg({{'x': 'mean', 'y': ['min', 'max']}})\ngrouped",
    "stat, p = stats.ttest_ind(df['a'], df['b'])\nprint(f'{{stat:.3f}} {{p:.4f}}')",
)
_NAMES = ("sales", "sensors", "survey", "trades", "weather", "patients", "clicks", "genes")


def _outputs(rng: random.Random, png: bytes) -> list[dict[str, Any]]:
    roll = rng.random()
    if roll < 0.5:
        lines = [f"{rng.random():.6f} {rng.randint(0, 10**6)}\n" for _ in range(rng.randint(1, 30))]
        return [{"name": "stdout", "output_type": "stream", "text": lines}]
    if roll < 0.6:
        return [
            {
                "data": {"image/png": base64.b64encode(png).decode(), "text/plain": ["<Figure>"]},
                "metadata": {},
                "output_type": "display_data",
            }
        ]
    return []


def generate_notebooks(root: Path, count: int, cells: int) -> dict[str, Any]:
    """``count`` notebooks of ~``cells`` cells: imports, magics, data reads, outputs."""
    rng = random.Random(SEED)
    png = rng.randbytes(6000)  # an incompressible stand-in for a small plot
    total = 0
    code: list[int] = []
    for index in range(count):
        name = rng.choice(_NAMES)
        cell_list: list[dict[str, Any]] = [
            {"cell_type": "markdown", "metadata": {}, "source": [f"# Analysis {index}\n"]},
            code_cell("\n".join(rng.sample(_IMPORTS, rng.randint(3, 8)))),
        ]
        for _ in range(cells - 2):
            roll = rng.random()
            if roll < 0.15:
                cell_list.append(
                    {"cell_type": "markdown", "metadata": {}, "source": ["Some notes.\n"] * 3}
                )
            elif roll < 0.3:
                cell_list.append(code_cell(rng.choice(_MAGICS)))
            elif roll < 0.45:
                read = rng.choice(_READS).format(name=rng.choice(_NAMES))
                cell_list.append(code_cell(read, _outputs(rng, png)))
            elif roll < 0.5:
                cell_list.append(code_cell(rng.choice(_IMPORTS)))
            else:
                parts = rng.sample(_BODIES, rng.randint(2, 5))
                body = "\n\n".join(b.format(name=name) for b in parts)
                cell_list.append(code_cell(body, _outputs(rng, png)))
        sub = root / f"project{index % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"{name}_{index:04d}.ipynb"
        path.write_text(notebook_json(cell_list, kernel="python3"))
        code.extend(len("".join(c["source"])) for c in cell_list if c["cell_type"] == "code")
        total += path.stat().st_size
    return {
        "notebooks": count,
        "cells_per_notebook": cells,
        "bytes": total,
        "code_cells": len(code),
        "mean_code_chars_per_cell": statistics.mean(code),
    }


def bench_import_analysis(tmp: Path, count: int, reps: int) -> dict[str, Any]:
    """Time ``analyse_workspace`` over ``count`` generated notebooks."""
    from westtek_core.notebooks import analyse_workspace

    root = tmp / "notebooks"
    log(f"import analysis: generating {count} notebooks")
    facts = generate_notebooks(root, count, cells=20)
    seconds: list[float] = []
    results: list[Any] = []
    for rep in range(reps):
        started = time.perf_counter()
        results = analyse_workspace(root)
        seconds.append(time.perf_counter() - started)
        log(f"  analyse_workspace {rep + 1}: {seconds[-1]:.2f} s")
    facts.update(
        seconds=seconds,
        summary=summary(seconds),
        analysed=len(results),
        errors=sum(1 for r in results if r.error),
        imports=sum(len(r.imports) for r in results),
        data_files=sum(len(r.data_files) for r in results),
        pip_installs=sum(len(r.pip_installs) for r in results),
    )
    return facts


# --------------------------------------------------------------------------- report


def machine_facts(netns: bool) -> dict[str, Any]:
    """nproc, CPU, Python, westtek's git revision."""
    cpu = cpu_model()
    head = run(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"], timeout=30)
    dirty = run(
        [
            "git",
            "-C",
            REPO_ROOT,
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            "westtek_core",
            "westtek_server_ext",
        ],
        timeout=30,
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "git": head.stdout.strip() + (" (sources modified)" if dirty.stdout.strip() else ""),
        "network": "none (unshare --net, loopback only)" if netns else "not isolated",
    }


def _verdict(actual: float | None, target: float, strict: bool = False) -> str:
    if actual is None:
        return "—"
    ok = actual < target if strict else actual <= target
    sign = "<" if strict else "≤"
    if ok:
        return f"met ({sign} {target:g})"
    over = 100 * (actual / target - 1)
    return f"**missed** by {over:.0f}% ({actual - target:.2f} over {sign} {target:g})"


def ws_p95(ws: dict[str, Any]) -> float:
    """The WebSocket latency's p95 with each timeout counted as slower than any arrival."""
    values = [t["latency_s"] for t in ws["trials"] if t["latency_s"] is not None]
    values += [float("inf")] * sum(1 for t in ws["trials"] if t["latency_s"] is None)
    return summary(values)["p95"] if values else float("inf")


def render(result: dict[str, Any]) -> str:
    """The markdown block written between the README markers."""
    m = result["machine"]
    lines = [
        f"Latest run: {result['started']}, {result['elapsed_s']:.0f} s in all.",
        "",
        "| step | measured | target | verdict |",
        "|---|---|---|---|",
    ]
    w = result.get("watcher") or {}
    if "error" in w:
        lines.append(f"| 1–2. watcher | failed: {w['error'][:200]} | — | — |")
    lat = w.get("latency")
    if lat:
        trials = len(w["trials"])
        lines.append(
            f"| 1. event latency, pip exit → `on_event` (s), {trials} trials "
            f"({w['timeouts']} timeouts) | min {lat['min']:.3f}, median {lat['median']:.3f}, "
            f"p95 {lat['p95']:.3f}, max {lat['max']:.3f} | p95 ≤ 2 | "
            f"{_verdict(lat['p95'], TARGETS['latency_p95_s'])} |"
        )
    ws = result.get("websocket")
    if ws and "error" in ws:
        first = ws["error"].splitlines()[0][:200].replace("|", "/")
        lines.append(
            "| 1b. event latency over WebSocket (pip exit → WS message) | "
            f"failed: {first} | p95 ≤ 2 | — |"
        )
        ws = None
    ws_lat = ws.get("latency") if ws else None
    if ws:
        trials = len(ws["trials"])
        head = (
            f"| 1b. event latency over WebSocket (pip exit → WS message) (s), {trials} trials "
            f"({ws['timeouts']} timeouts over {WS_TRIAL_TIMEOUT:g} s) | "
        )
        if ws_lat is None:
            lines.append(head + "no event arrived | p95 ≤ 2 | **missed** |")
        else:
            # a timeout counts as slower than any arrival in the p95 the target judges
            p95 = ws_p95(ws)
            shown = f"p95 {p95:.3f}" if p95 != float("inf") else "p95 timeout"
            lines.append(
                head + f"min {ws_lat['min']:.3f}, median {ws_lat['median']:.3f}, {shown}, "
                f"max {ws_lat['max']:.3f} | p95 ≤ 2 | "
                + (
                    _verdict(p95, TARGETS["latency_p95_s"])
                    if p95 != float("inf")
                    else "**missed** (timeouts)"
                )
                + " |"
            )
    idle = w.get("idle")
    if idle:
        lines.append(
            f"| 2. watcher idle CPU, {idle['wall_s']:.0f} s (% of one core) | "
            f"{idle['cpu_pct_of_one_core']:.3f} ({idle['cpu_s']:.3f} CPU s, "
            f"{idle['events_during_idle']} events) | < 1 | "
            f"{_verdict(idle['cpu_pct_of_one_core'], TARGETS['idle_cpu_pct'], strict=True)} |"
        )
    c = result.get("cli_drift")
    if c and "error" in c:
        lines.append(f"| 3. `westtek drift --json` warm | failed: {c['error'][:200]} | ≤ 1 | — |")
        c = None
    elif c:
        s = c["summary"]
        lines.append(
            f"| 3. `westtek drift --json` warm, benchmark tree (s), median of {s['n']} | "
            f"{s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f}) | ≤ 1 | "
            f"{_verdict(s['median'], TARGETS['drift_warm_s'])} |"
        )
    elif "cli_drift" in result:
        lines.append("| 3. `westtek drift --json` warm | not run (no tree) | ≤ 1 | — |")
    a = result.get("import_analysis")
    if a and "error" in a:
        lines.append(f"| 4. `analyse_workspace` | failed: {a['error'][:200]} | ≤ 5 | — |")
        a = None
    if a:
        s = a["summary"]
        lines.append(
            f"| 4. `analyse_workspace`, {a['notebooks']} notebooks (s), median of {s['n']} | "
            f"{s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f}) | ≤ 5 | "
            f"{_verdict(s['median'], TARGETS['import_analysis_s'])} |"
        )
    lines.append("")
    if lat:
        pip = statistics.median(t["pip_seconds"] for t in w["trials"])
        lines.append(
            f"Step 1: pip itself took {pip:.2f} s (median); min latency {lat['min']:.3f} s "
            "(negative means the watcher reported the new version before pip's process exited)."
        )
    if ws_lat and ws:
        pip = statistics.median(t["pip_seconds"] for t in ws["trials"])
        d = ws.get("delivery")
        lines.append(
            f"Step 1b: a `jupyter server` subprocess (West Tek extension, debounce "
            f"{ws['debounce_ms']} ms, as step 1) answered after {ws['server_start_s']:.1f} s; "
            "baseline snapshot through `POST westtek/api/snapshots` "
            f"{ws['baseline_snapshot_s']:.1f} s; pip took {pip:.2f} s (median)"
            + (
                f"; pip exit → event logged by the server: median {ws['detection']['median']:.3f} "
                f"s; event logged → message on the socket: median {1000 * d['median']:.1f} ms, "
                f"max {1000 * d['max']:.1f} ms"
                if d
                else ""
            )
            + f"; {ws.get('events_logged')} events in `GET westtek/api/drift/events`; server "
            f"stopped by {ws['server_stop'].get('stopped')}."
        )
    if c:
        lines.append(
            f"Step 3: baseline snapshot {c['baseline_snapshot_s']:.1f} s; drift status "
            f"{c['status']} ({c['changes']} changes)."
        )
        if c.get("profile_top"):
            lines += [
                "",
                f"Top 5 cumulative costs of one `westtek drift` under cProfile "
                f"({c['profile_top'][0]['total_s']:.2f} s profiled; the entry point and the "
                "CLI's dispatch left out):",
                "",
            ]
            for r in c["profile_top"]:
                note = f"; {r['note']}" if r.get("note") else ""
                lines.append(
                    f"- `{r['function']}` ({r['where']}): {r['cumtime_s']:.2f} s cumulative, "
                    f"{r['calls']} call(s){note}"
                )
    if a:
        lines += [
            "",
            f"Step 4: {a['bytes'] / 1e6:.0f} MB of notebooks, {a['cells_per_notebook']} cells "
            f"each ({a['code_cells']} code cells, {a['mean_code_chars_per_cell']:.0f} characters "
            "of code per code cell on average; the 81 statsmodels notebooks: 198); "
            f"{a['imports']} imports, {a['data_files']} data files, {a['pip_installs']} "
            f"`%pip` requirements found, {a['errors']} errors.",
        ]
    load = result.get("other_load") or {}
    if load:
        parts = ", ".join(f"{k} {v['other_cpu_cores']:.2f}" for k, v in load.items())
        lines += [
            "",
            "CPU used by other processes on the machine during each step (cores, from "
            f"`/proc/stat` minus this run's own): {parts}.",
        ]
    lines += [
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), kernel {m['kernel']}, Python "
        f"{m['python']}; westtek git {m['git']}. Network: {m['network']}.",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def write_readme(block: str) -> None:
    """Replace this benchmark's block in bench/README.md."""
    replace_readme_block(MARK_START, MARK_END, block, "## drift: latest results")


def main(argv: Sequence[str] | None = None) -> int:
    """Run every step, write the JSON results and the README table."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="latency trials (20)")
    parser.add_argument("--idle", type=float, default=30, help="idle seconds (30)")
    parser.add_argument("--reps", type=int, default=5, help="warm drift repetitions (5)")
    parser.add_argument("--notebooks", type=int, default=1000, help="generated notebooks")
    parser.add_argument("--no-readme", action="store_true", help="leave bench/README.md alone")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated steps to run ({', '.join(STEPS)}); a partial run prints its "
        "table but writes neither bench/README.md nor bench/results/drift.json",
    )
    args = parser.parse_args(args_list)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if only - set(STEPS):
        parser.error(f"--only: unknown step(s) {', '.join(sorted(only - set(STEPS)))}")
    steps = only or set(STEPS)

    code = reexec_offline(__file__, args_list, _NETNS_FLAG, RUN_TIMEOUT + 60)
    if code is not None:
        return code

    # a hard bound on the whole run, whatever hangs
    def give_up() -> None:
        log("time bound hit")
        os._exit(124)

    watchdog = threading.Timer(RUN_TIMEOUT, give_up)
    watchdog.daemon = True
    watchdog.start()

    started = time.monotonic()
    result: dict[str, Any] = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_facts(bool(os.environ.get(_NETNS_FLAG))),
        "targets": TARGETS,
    }
    with tempfile.TemporaryDirectory(prefix="westtek-bench-drift-") as scratch:
        tmp = Path(scratch)
        for sub in ("xdg-cache", "xdg-data", "xdg-config"):
            (tmp / sub).mkdir()
        os.environ.update(
            XDG_CACHE_HOME=str(tmp / "xdg-cache"),
            XDG_DATA_HOME=str(tmp / "xdg-data"),
            XDG_CONFIG_HOME=str(tmp / "xdg-config"),
        )
        (tmp / "w").mkdir()
        (tmp / "c").mkdir()
        (tmp / "n").mkdir()
        load: dict[str, Any] = {}
        result["other_load"] = load
        (tmp / "s").mkdir()
        if "watcher" in steps:
            result["watcher"] = run_step(
                "watcher", lambda: bench_watcher(tmp / "w", args.trials, args.idle), load
            )
        if "websocket" in steps:
            result["websocket"] = run_step(
                "websocket", lambda: bench_websocket(tmp / "s", args.trials), load
            )
        if "cli" in steps:
            result["cli_drift"] = run_step(
                "cli drift", lambda: bench_cli_drift(tmp / "c", args.reps), load
            )
        if "imports" in steps:
            result["import_analysis"] = run_step(
                "import analysis",
                lambda: bench_import_analysis(tmp / "n", args.notebooks, 3),
                load,
            )
        log("cleaning up")
        shutil.rmtree(tmp, ignore_errors=True)
    result["elapsed_s"] = time.monotonic() - started
    block = render(result)
    print(block)
    if only:
        print(json.dumps(result, indent=1, default=str))
        log("partial run (--only): bench/README.md and bench/results/drift.json left alone")
        return 0
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1, default=str) + "\n")
    if not args.no_readme:
        write_readme(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
