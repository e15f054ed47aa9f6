"""Benchmark the hub service under load: drift events from 1,000 servers, and the list API.

Set-up: 1,000 environments in 50 labs (20 researchers each) are registered through the API,
each with a snapshot report. Load: 1,000 simulated single-user servers post drift events
at 200 events/s for 60 s (paced by a schedule, so a slow service shows as lag, not as a
lower rate), while a lab admin lists environments every 100 ms. Measured: the list API's
latency (median, p95, p99) during the load, the events' post latency, and that every event
posted is stored exactly once. The service runs in its own process (``python -m
westtek_hub``), against SQLite and against a real PostgreSQL server; the hub's REST API it
asks about tokens and users is a small fake served here. Everything is on 127.0.0.1 and
bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
sys.path.insert(0, str(REPO_ROOT))  # the tests' PostgreSQL helper is reused below
from benchlib import free_port, replace_readme_block  # noqa: E402

from tests.postgres_server import create_database, running_postgres  # noqa: E402

RESULTS = BENCH / "results" / "hub_load.json"
README = BENCH / "README.md"
MARK_BEGIN = "<!-- hub-load:begin -->"
MARK_END = "<!-- hub-load:end -->"
LABS, PER_LAB = 50, 20
TARGETS = {"list_p99_ms": 300.0, "lost_events": 0}

from tornado import web  # noqa: E402
from tornado.httpclient import AsyncHTTPClient, HTTPRequest  # noqa: E402

SERVICE_TOKEN = "bench-service-token"


def users() -> dict[str, tuple[bool, list[str]]]:
    """Name → (admin, groups): 50 labs of 20 researchers, one lab admin each, a hub admin."""
    found: dict[str, tuple[bool, list[str]]] = {"overseer": (True, [])}
    for lab in range(LABS):
        for member in range(PER_LAB):
            groups = [f"lab-l{lab:02d}"] + ([f"lab-l{lab:02d}-admins"] if member == 0 else [])
            found[f"r{lab:02d}-{member:02d}"] = (False, groups)
    return found


def fake_hub_app(known: dict[str, tuple[bool, list[str]]]) -> web.Application:
    """The two hub API calls the service makes: token owner and user model."""

    class UserForToken(web.RequestHandler):
        def get(self) -> None:
            name = self.request.headers.get("Authorization", "").removeprefix("token ")
            name = name.removesuffix("-token")
            if name not in known:
                raise web.HTTPError(403)
            self.finish({"kind": "user", "name": name, "admin": known[name][0], "scopes": []})

    class UserModel(web.RequestHandler):
        def get(self, name: str) -> None:
            if name not in known:
                raise web.HTTPError(404)
            admin, groups = known[name]
            self.finish({"kind": "user", "name": name, "admin": admin, "groups": groups,
                         "servers": {}})  # fmt: skip

    return web.Application(
        [(r"/hub/api/user", UserForToken), (r"/hub/api/users/([^/]+)", UserModel)]
    )


def start_service(db_url: str, hub_port: int, data_dir: Path) -> tuple[subprocess.Popen[str], int]:
    """Start ``python -m westtek_hub`` on a free port against ``db_url``."""
    port = free_port()
    command = [
        sys.executable, "-m", "westtek_hub",
        f"--WestTekHubService.port={port}", "--WestTekHubService.ip=127.0.0.1",
        f"--WestTekHubService.db_url={db_url}", f"--WestTekHubService.data_dir={data_dir}",
        f"--HubAuth.api_url=http://127.0.0.1:{hub_port}/hub/api",
        f"--HubAuth.api_token={SERVICE_TOKEN}",
    ]  # fmt: skip
    env = dict(os.environ, JUPYTERHUB_SERVICE_PREFIX="/services/westtek/")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=open(data_dir / "service.log", "w"), text=True)  # fmt: skip
    return process, port


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM, then kill if it does not exit."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(values: Sequence[float]) -> dict[str, float]:
    """Count, median, p95, p99 and max."""
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p95": quantile(values, 0.95),
        "p99": quantile(values, 0.99),
        "max": max(values),
    }


async def wait_up(base: str, timeout: float = 60) -> None:
    """Wait until the service answers its status."""
    client = AsyncHTTPClient()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            await client.fetch(base + "status")
            return
        except Exception:  # noqa: BLE001 — not listening yet
            await asyncio.sleep(0.2)
    raise RuntimeError("the hub service did not start")


async def post(client: AsyncHTTPClient, url: str, user: str, body: Any) -> tuple[int, float]:
    """POST JSON as ``user``; the status and how long it took."""
    started = time.perf_counter()
    response = await client.fetch(
        HTTPRequest(url, method="POST", headers={"Authorization": f"token {user}-token"},
                    body=json.dumps(body), request_timeout=60),
        raise_error=False,
    )  # fmt: skip
    return response.code, time.perf_counter() - started


async def run_load(base: str, rate: float, seconds: float) -> dict[str, Any]:
    """Register the environments, then post events at ``rate`` while listing."""
    AsyncHTTPClient.configure(None, max_clients=64)
    client = AsyncHTTPClient()
    researchers = [u for u in users() if u != "overseer"]
    # set-up: every researcher's server reports a snapshot, registering 1,000 environments
    setup_started = time.perf_counter()
    for start in range(0, len(researchers), 50):
        batch = researchers[start : start + 50]
        codes = await asyncio.gather(
            *(
                post(client, base + "snapshots", user, {
                    "id": f"{index:064x}", "environment_id": user, "created_by": user,
                    "timestamp": "2026-11-20T10:00:00+00:00", "size_bytes": 1 << 20,
                    "metadata": {"installed_packages": ["numpy==2.0.0"]},
                })
                for index, user in enumerate(batch, start=start)
            )
        )  # fmt: skip
        assert all(code in (200, 201) for code, _ in codes), codes[:3]
    setup = time.perf_counter() - setup_started

    total = int(rate * seconds)
    event_times: list[float] = []
    failures: list[int] = []
    list_times: list[float] = []
    began = time.perf_counter()
    stop_listing = asyncio.Event()

    async def one_event(index: int) -> None:
        user = researchers[index % len(researchers)]
        body = {"id": index, "time": 1_790_000_000 + index, "environment_id": user,
                "baseline": "0" * 64, "status": "MINOR_DRIFT" if index % 3 else "CRITICAL_DRIFT",
                "changes": [{"kind": "package", "name": "numpy", "change": "upgraded",
                             "before": "1.26", "after": "2.0", "severity": "minor",
                             "affected_notebooks": [], "reason": "numpy upgraded"}],
                "resolved": []}  # fmt: skip
        code, took = await post(client, base + "events", user, body)
        event_times.append(took)
        if code != 201:
            failures.append(code)

    async def lister() -> None:
        admin = "r00-00"  # lab l00's admin: the list is filtered by access
        while not stop_listing.is_set():
            started = time.perf_counter()
            response = await client.fetch(
                base + "environments", headers={"Authorization": f"token {admin}-token"},
                raise_error=False, request_timeout=60,
            )  # fmt: skip
            if response.code == 200:
                list_times.append(time.perf_counter() - started)
            await asyncio.sleep(0.1)

    listing = asyncio.create_task(lister())
    tasks = []
    for index in range(total):  # paced by the schedule: index / rate seconds after the start
        delay = began + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one_event(index)))
    await asyncio.gather(*tasks)
    duration = time.perf_counter() - began
    stop_listing.set()
    await listing

    # every event stored once: the admin's view of all events counts them
    response = await client.fetch(
        base + "events?limit=100000",
        headers={"Authorization": "token overseer-token"},
        request_timeout=120,
    )
    stored = len(json.loads(response.body)["events"])
    return {
        "environments": len(researchers),
        "labs": LABS,
        "setup_s": round(setup, 2),
        "events_posted": total,
        "events_stored": stored,
        "lost_events": total - stored,
        "failed_posts": len(failures),
        "offered_rate": rate,
        "achieved_rate": round(total / duration, 1),
        "duration_s": round(duration, 1),
        "post_latency_ms": {k: round(v * 1000, 1) if k != "n" else v
                            for k, v in summary(event_times).items()},
        "list_latency_ms": {k: round(v * 1000, 1) if k != "n" else v
                            for k, v in summary(list_times).items()},
    }  # fmt: skip


async def bench_database(kind: str, db_url: str, rate: float, seconds: float) -> dict[str, Any]:
    """The whole load against one database."""
    hub_port = free_port()
    hub = fake_hub_app(users()).listen(hub_port, "127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="westtek-hub-bench-") as tmp:
        process, port = start_service(db_url, hub_port, Path(tmp))
        try:
            base = f"http://127.0.0.1:{port}/services/westtek/api/"
            await wait_up(base)
            print(f"{kind}: loading {rate:.0f} events/s for {seconds:.0f} s", flush=True)
            result = await run_load(base, rate, seconds)
        finally:
            stop(process)
            hub.stop()
    return {"database": kind, **result}


def render(results: list[dict[str, Any]], facts: dict[str, Any]) -> str:
    """The README table."""
    lines = [
        MARK_BEGIN,
        f"Hub service load (`bench/hub_load.py`, {facts['date']}, {facts['cpus']} cores, "
        f"load average before {facts['load_before']}): {LABS} labs, "
        f"{LABS * PER_LAB} environments, drift events from {LABS * PER_LAB} simulated servers "
        f"while a lab admin lists environments every 100 ms.",
        "",
        "| database | events posted / stored / lost | rate offered → achieved (ev/s) "
        "| event POST p50 / p99 (ms) | list p50 / p95 / p99 (ms) | target list p99 ≤ 300 ms |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        post, lst = r["post_latency_ms"], r["list_latency_ms"]
        met = lst["p99"] <= TARGETS["list_p99_ms"] and r["lost_events"] == 0
        lines.append(
            f"| {r['database']} | {r['events_posted']} / {r['events_stored']} / "
            f"{r['lost_events']} | {r['offered_rate']:.0f} → {r['achieved_rate']} | "
            f"{post['median']} / {post['p99']} | {lst['median']} / {lst['p95']} / {lst['p99']} "
            f"| {'met' if met else 'MISSED'} |"
        )
    lines += ["", MARK_END]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    """Run every database's load and record the results."""
    facts = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_before": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }
    results = []
    if "sqlite" in args.databases:
        with tempfile.TemporaryDirectory(prefix="westtek-hub-db-") as tmp:
            url = f"sqlite:///{tmp}/registry.sqlite"
            results.append(await bench_database("SQLite", url, args.rate, args.seconds))
    if "postgresql" in args.databases:
        with running_postgres() as server:
            url = create_database(server, "bench")
            results.append(await bench_database("PostgreSQL", url, args.rate, args.seconds))
    facts["load_after"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    for r in results:
        print(json.dumps(r), flush=True)
    if args.write_readme:  # a quick run (--no-readme) only prints
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({"facts": facts, "results": results}, indent=2) + "\n")
        replace_readme_block(
            MARK_BEGIN, MARK_END, render(results, facts), "## Hub service under load"
        )
    ok = all(r["lost_events"] == 0 and r["list_latency_ms"]["p99"] <= 300 for r in results)
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="events per second (200)")
    parser.add_argument("--seconds", type=float, default=60.0, help="load duration (60)")
    parser.add_argument(
        "--databases", nargs="+", default=["sqlite", "postgresql"],
        choices=["sqlite", "postgresql"],
    )  # fmt: skip
    parser.add_argument(
        "--no-readme",
        dest="write_readme",
        action="store_false",
        help="print the results; leave bench/README.md and bench/results/hub_load.json alone",
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 or not 0 < args.seconds <= 600:
        parser.error("--rate must be positive and --seconds between 0 and 600")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
