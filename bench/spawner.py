"""Benchmark the ecs spawner backend: 500 simulated users spawning in waves of 100.

A real JupyterHub and configurable-http-proxy (the e2e harness's ``HubProcess``) run
WestTekSpawner's ecs backend against a moto server in this process, over HTTP on
loopback. The stand-in for Fargate of the tests (``tests/spawner/fake_fargate.py``) moves
each task through provisioning → pending → pulling → running, ``--stage-seconds`` a stage
(AWS's own wait), and resolves every running task to one shared tiny HTTP server on
127.0.0.1 — the benchmark is about the hub, the spawner and the ECS API, not about
starting 500 Jupyter servers on two cores.

Measured:

1. **hub API latency** (``GET /hub/api/users/<name>`` every 100 ms) while idle, during the
   waves, and in the steady state with every server running: p50, p99, max;
2. **time from spawn request to the progress event "Task running", minus AWS's own wait**
   (the task's time in provisioning/pending, as the stand-in recorded it): what the hub
   and the spawner add, per user, from the hub log's timestamps;
3. **ECS API calls per poll cycle** once all servers run: DescribeTasks calls (and tasks
   per call) over ``--poll-cycles`` cycles of ``Spawner.poll_interval``; the target is at
   most one DescribeTasks per 100 running servers per cycle;
4. AWS calls per spawn during the waves, by operation.

The run is bounded (``--timeout``), inside a fresh network namespace with only loopback
(``unshare --net``) when the machine allows it. Raw numbers go to
``bench/results/spawner.json``, the table into ``bench/README.md`` between the
``bench:spawner`` markers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


from benchlib import busy_seconds, cpu_model, log, reexec_offline, replace_readme_block  # noqa: E402

from tests.conftest import free_port  # noqa: E402
from tests.e2e.conftest import ADMIN_TOKEN, HubProcess  # noqa: E402
from tests.spawner.conftest import hold_tasks_running, make_world  # noqa: E402
from tests.spawner.fake_fargate import ACCOUNT, FakeFargate  # noqa: E402

BENCH = REPO_ROOT / "bench"
RESULTS = BENCH / "results" / "spawner.json"
README = BENCH / "README.md"
MARK_START = "<!-- bench:spawner:start -->"
MARK_END = "<!-- bench:spawner:end -->"
_NETNS_FLAG = "WESTTEK_BENCH_SPAWNER_NETNS"
REGION = "us-east-1"
TARGET_DESCRIBES_PER_100 = 1.0
COUNTED = {
    "ecs": ["run_task", "describe_tasks", "stop_task", "register_task_definition"],
    "efs": ["create_access_point", "describe_access_points"],
    "ec2": ["describe_subnets", "describe_security_groups"],
}

BENCH_CONFIG = """
# -- bench/spawner.py: the ecs backend against moto, every task served by one stub ---------
import sys
sys.path.insert(0, {repo!r})
from tests.spawner.fake_fargate import address_from

c.JupyterHub.concurrent_spawn_limit = {wave}
c.JupyterHub.last_activity_interval = 3600
c.Spawner.poll_interval = {poll_interval}
c.Spawner.start_timeout = 600
c.Spawner.http_timeout = 120
c.WestTekSpawner.backend = "ecs"
c.WestTekSpawner.restore_environment = False
c.WestTekSpawner.cmd = ["jupyterhub-singleuser"]
c.EcsBackend.cluster = {cluster!r}
c.EcsBackend.subnets = [{subnet!r}]
c.EcsBackend.security_groups = [{security_group!r}]
c.EcsBackend.file_system_id = {file_system!r}
c.EcsBackend.image = "westtek/notebook:bench"
c.EcsBackend.address_hook = address_from({addresses!r})
"""


def summary(values: Sequence[float]) -> dict[str, float]:
    """n, p50, p95, p99 and max of ``values`` (empty: n only)."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "n": len(ordered),
        "p50": statistics.median(ordered),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": ordered[-1],
    }


# -- the world around the hub ----------------------------------------------------------------


class Stub:
    """One HTTP server answering every request: every task's "container"."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = ("127.0.0.1", int(self.server.server_address[1]))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


class CallCounter:
    """Counts the AWS operations moto serves, by wrapping its in-memory backends."""

    def __init__(self) -> None:
        from moto.ec2.models import ec2_backends
        from moto.ecs.models import ecs_backends
        from moto.efs.models import efs_backends

        backends = {
            "ecs": ecs_backends[ACCOUNT][REGION],
            "efs": efs_backends[ACCOUNT][REGION],
            "ec2": ec2_backends[ACCOUNT][REGION],
        }
        self.lock = threading.Lock()
        self.calls: list[tuple[float, str, int]] = []  # (time, operation, tasks described)
        for service, operations in COUNTED.items():
            for operation in operations:
                backend = backends[service]
                setattr(backend, operation, self._wrap(operation, getattr(backend, operation)))

    def _wrap(self, operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            tasks = kwargs.get("tasks") or (args[1] if operation == "describe_tasks" else [])
            with self.lock:
                self.calls.append((time.time(), operation, len(tasks or [])))
            return method(*args, **kwargs)

        return counted

    def between(self, start: float, end: float) -> list[tuple[float, str, int]]:
        """The calls made in [start, end)."""
        with self.lock:
            return [c for c in self.calls if start <= c[0] < end]


SAMPLER = """
import sys, time, requests
url, token, interval, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
session = requests.Session()
with open(out, "a", buffering=1) as f:
    while True:
        started = time.perf_counter()
        try:
            status = session.get(url, headers={"Authorization": f"token {token}"}, timeout=30)
            status = status.status_code
        except requests.RequestException:
            status = 0
        f.write(f"{time.time()} {time.perf_counter() - started} {status}\\n")
        time.sleep(interval)
"""


class LatencySampler:
    """GETs one user's model from the hub API every ``interval`` s, from its own process.

    Its own process, so the latency measured is the hub's, not this process's (moto and
    the stand-in for Fargate share this one's interpreter lock).
    """

    def __init__(self, hub: HubProcess, user: str, workdir: Path, interval: float = 0.1) -> None:
        self.output = workdir / "latency.txt"
        self.command = [
            sys.executable,
            "-c",
            SAMPLER,
            f"{hub.url}/hub/api/users/{user}",
            ADMIN_TOKEN,
            str(interval),
            str(self.output),
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> LatencySampler:
        """Start sampling."""
        self.process = subprocess.Popen(self.command)
        return self

    def stop(self) -> None:
        """Stop sampling."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def during(self, start: float, end: float) -> dict[str, Any]:
        """Latency statistics (ms) of the samples taken in [start, end), and errors."""
        samples = []
        if self.output.exists():
            for line in self.output.read_text().splitlines():
                parts = line.split()
                if len(parts) == 3:
                    samples.append((float(parts[0]), float(parts[1]), int(parts[2])))
        chosen = [s for s in samples if start <= s[0] < end]
        stats = summary([s[1] * 1000 for s in chosen])
        stats["errors"] = sum(1 for s in chosen if s[2] != 200)
        return stats


# -- the run ---------------------------------------------------------------------------------

_LOG_LINE = re.compile(
    r"^\[I (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) JupyterHub \S+\] (\S+): Task running$"
)


def task_running_times(log_text: str) -> dict[str, float]:
    """When the hub reported each user's 'Task running' event (wall clock, from its log)."""
    found: dict[str, float] = {}
    for line in log_text.splitlines():
        match = _LOG_LINE.match(line)
        if match and match.group(2) not in found:
            stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f")
            found[match.group(2)] = stamp.timestamp()  # the hub logs local time
    return found


def list_users(hub: HubProcess, state: str) -> list[dict[str, Any]]:
    """Every user in ``state`` (the API pages at most 200 a request)."""
    found: list[dict[str, Any]] = []
    while True:
        page = hub.api("GET", f"users?state={state}&offset={len(found)}&limit=200").json()
        found += page
        if len(page) < 200:
            return found


def ready_users(hub: HubProcess) -> set[str]:
    """Users whose default server is ready."""
    return {user["name"] for user in list_users(hub, "ready")}


def run_waves(
    hub: HubProcess, names: list[str], wave: int, timeout: float
) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """Spawn ``names`` ``wave`` at a time; request and ready times, and failures."""
    requested: dict[str, float] = {}
    ready_at: dict[str, float] = {}
    failed: list[str] = []
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(32) as pool:
        for first in range(0, len(names), wave):
            batch = names[first : first + wave]
            log(f"wave {first // wave + 1}: spawning {len(batch)} servers")

            def spawn(name: str) -> tuple[str, int]:
                requested[name] = time.time()
                return name, hub.api("POST", f"users/{name}/server").status_code

            for name, status in pool.map(spawn, batch):
                if status not in (201, 202):
                    failed.append(name)
            waiting = set(batch) - set(failed)
            while waiting:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(waiting)} servers not ready in time")
                ready = ready_users(hub)
                now = time.time()
                for name in waiting & ready:
                    ready_at[name] = now
                waiting -= ready
                if waiting:
                    for user in list_users(hub, "inactive"):
                        if user["name"] in waiting and not user.get("pending"):
                            # neither ready nor starting: its spawn failed
                            failed.append(user["name"])
                            waiting.discard(user["name"])
                    time.sleep(0.5)
    return requested, ready_at, failed


STUB_CONFIG = """
# -- bench/spawner.py baseline: JupyterHub with a spawner that does nothing -----------------
from jupyterhub.spawner import Spawner


class StubSpawner(Spawner):
    async def start(self):
        return ("127.0.0.1", {stub_port})

    async def poll(self):
        return None

    async def stop(self, now=False):
        pass


c.JupyterHub.spawner_class = StubSpawner
c.JupyterHub.concurrent_spawn_limit = {wave}
c.JupyterHub.last_activity_interval = 3600
c.Spawner.poll_interval = {poll_interval}
"""


class World:
    """moto on loopback, the counted AWS calls, the stub server and the stand-in for Fargate."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        port = free_port()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.moto.start()
        endpoint = f"http://127.0.0.1:{port}"
        os.environ.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION=REGION,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_ENDPOINT_URL=endpoint,
            AWS_CONFIG_FILE=str(workdir / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(workdir / "no-aws-credentials"),
        )
        hold_tasks_running(endpoint)
        self.ids = make_world(endpoint)
        self.counter = CallCounter()
        self.stub = Stub()
        self.fargate = FakeFargate(
            workdir / "fargate",
            clusters={self.ids["cluster"]},
            stage_seconds=args.stage_seconds,
            serve_at=self.stub.address,
        ).start()

    def close(self) -> None:
        """Stop the stand-in, the stub and moto."""
        self.fargate.close()
        self.stub.close()
        self.moto.stop()


def run_hub(args: argparse.Namespace, world: World, workdir: Path, backend: str) -> dict[str, Any]:
    """Spawn every user on ``backend`` (ecs, or the do-nothing baseline); the raw results."""
    workdir.mkdir(parents=True)
    hub = HubProcess(workdir)
    # The hub's SQLite commits happen on its event loop: keep the shared disk's fsync
    # latency out of the numbers (production uses PostgreSQL). Same for both backends.
    db = Path("/dev/shm") if Path("/dev/shm").is_dir() else workdir
    database = db / f"westtek-bench-spawner-{os.getpid()}-{backend}.sqlite"
    with open(hub.config, "a") as config:
        config.write(f"c.JupyterHub.db_url = {f'sqlite:///{database}'!r}\n")
        if backend == "ecs":
            config.write(
                BENCH_CONFIG.format(
                    repo=str(REPO_ROOT),
                    wave=args.wave,
                    poll_interval=args.poll_interval,
                    addresses=str(world.fargate.addresses),
                    **world.ids,
                )
            )
        else:
            config.write(
                STUB_CONFIG.format(
                    stub_port=world.stub.address[1],
                    wave=args.wave,
                    poll_interval=args.poll_interval,
                )
            )
    names = [f"u{i:04d}" for i in range(args.users)]
    result: dict[str, Any] = {}
    sampler: LatencySampler | None = None
    try:
        hub.start(timeout=120)
        for first in range(0, len(names), 100):
            hub.api("POST", "users", json={"usernames": names[first : first + 100]})
        hub.api("POST", "users", json={"usernames": ["latency-probe"]})
        sampler = LatencySampler(hub, "latency-probe", workdir).start()
        idle_start = time.time()
        time.sleep(args.idle_seconds)
        waves_start = time.time()
        busy_before = busy_seconds()
        requested, ready_at, failed = run_waves(hub, names, args.wave, args.timeout)
        waves_end = time.time()
        busy_waves = busy_seconds() - busy_before
        log(f"{backend}: all waves done in {waves_end - waves_start:.1f} s ({len(failed)} failed)")
        # the steady state: every server running, JupyterHub polling each on its timer
        # two cycles for every spawner's poll timer to start and the batches to settle
        time.sleep(2 * args.poll_interval)
        steady_start = time.time()
        log(f"{backend}: steady state, {args.poll_cycles} poll cycles of {args.poll_interval} s")
        time.sleep(args.poll_cycles * args.poll_interval)
        steady_end = time.time()
        sampler.stop()
        hub_log = hub.log_path.read_text(errors="replace")
        if args.hub_log:
            Path(f"{args.hub_log}.{backend}").write_text(hub_log)
        result.update(
            failed=failed,
            running=len(ready_at),
            waves_wall_s=waves_end - waves_start,
            machine_busy_cores_during_waves=busy_waves / max(waves_end - waves_start, 1e-9),
            api_latency_ms={
                "idle": sampler.during(idle_start, waves_start),
                "waves": sampler.during(waves_start, waves_end),
                "steady": sampler.during(steady_start, steady_end),
            },
            request_to_ready_s=summary(
                [ready_at[n] - requested[n] for n in ready_at if n in requested]
            ),
        )
        if backend == "ecs":
            result.update(
                ecs_measures(args, world, requested, hub_log, waves_start, waves_end)
                | steady_measures(args, world, len(ready_at), steady_start, steady_end)
            )
    finally:
        if sampler is not None:
            sampler.stop()
        hub.stop()
        if not result.get("running"):
            print(hub.log()[-3000:], file=sys.stderr)
        database.unlink(missing_ok=True)
    return result


def ecs_measures(
    args: argparse.Namespace,
    world: World,
    requested: dict[str, float],
    hub_log: str,
    waves_start: float,
    waves_end: float,
) -> dict[str, Any]:
    """Spawn request → 'Task running' (minus AWS's wait), and AWS calls per spawn."""
    running_logged = task_running_times(hub_log)
    by_user = user_task_times(world.fargate)
    overhead, end_to_end, aws_wait = [], [], []
    for name, asked in requested.items():
        times = by_user.get(name)
        if name not in running_logged or times is None or "running" not in times:
            continue
        waited = times["running"] - times["created"]
        total = running_logged[name] - asked
        aws_wait.append(waited)
        end_to_end.append(total)
        overhead.append(total - waited)
    wave_calls = Counter(c[1] for c in world.counter.between(waves_start, waves_end))
    spawned = max(1, len(requested))
    return {
        "task_running_s": {
            "minus_aws_wait": summary(overhead),
            "request_to_event": summary(end_to_end),
            "aws_wait": summary(aws_wait),
        },
        "aws_calls_per_spawn": {op: n / spawned for op, n in sorted(wave_calls.items())},
    }


def steady_measures(
    args: argparse.Namespace, world: World, running: int, start: float, end: float
) -> dict[str, Any]:
    """DescribeTasks per poll cycle, per 100 running servers, and tasks per call."""
    describes = [c for c in world.counter.between(start, end) if c[1] == "describe_tasks"]
    per_cycle = len(describes) / args.poll_cycles
    return {
        "describe_tasks_per_cycle": per_cycle,
        "describe_tasks_per_100_running": per_cycle / max(running / 100, 1e-9),
        "tasks_per_describe": summary([c[2] for c in describes]),
        "describe_times_s": [round(c[0] - start, 2) for c in describes],
    }


def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The baseline, then the ecs backend, on the same machine in the same run."""
    world = World(args, workdir)
    try:
        baseline = run_hub(args, world, workdir / "baseline", "baseline")
        ecs = run_hub(args, world, workdir / "ecs", "ecs")
    finally:
        world.close()
    return {
        "users": args.users,
        "wave": args.wave,
        "poll_interval_s": args.poll_interval,
        "poll_cycles": args.poll_cycles,
        "stage_seconds": args.stage_seconds,
        "baseline": baseline,
        "ecs": ecs,
        "failed": ecs["failed"] + baseline["failed"],
    }


def user_task_times(fargate: FakeFargate) -> dict[str, dict[str, float]]:
    """Each user's task timeline (created, running), by the task's researcher_id tag."""
    from tests.spawner.fake_fargate import _ecs_backend

    tasks = _ecs_backend(REGION).tasks
    by_user: dict[str, dict[str, float]] = {}
    for cluster in fargate.clusters:
        for arn, task in tasks.get(cluster, {}).items():
            tags = {t["key"]: t["value"] for t in task.tags}
            if "researcher_id" in tags and arn in fargate.timeline:
                by_user[tags["researcher_id"]] = fargate.timeline[arn]
    return by_user


# -- reporting -------------------------------------------------------------------------------


def machine_facts(netns: bool) -> dict[str, Any]:
    """nproc, CPU, Python, the git revision, the network."""
    cpu = cpu_model()
    head = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "westtek_spawner"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "git": head + (" (spawner sources modified)" if dirty else ""),
        "network": "none (unshare --net, loopback only)" if netns else "loopback, not isolated",
    }


def _ms(stats: dict[str, Any], key: str) -> str:
    return f"{stats[key]:.0f}" if key in stats else "—"


def _s(stats: dict[str, Any], key: str) -> str:
    return f"{stats[key]:.2f}" if key in stats else "—"


def _cells(stats: dict[str, Any], fmt: Callable[[dict[str, Any], str], str]) -> str:
    return f"{fmt(stats, 'p50')} / {fmt(stats, 'p99')} / {fmt(stats, 'max')}"


def render(result: dict[str, Any]) -> str:
    """The markdown block written between the README markers."""
    ecs, base = result["ecs"], result["baseline"]
    task = ecs["task_running_s"]
    per100 = ecs["describe_tasks_per_100_running"]
    allowed = max(1, -(-ecs["running"] // 100)) * TARGET_DESCRIBES_PER_100
    verdict = "met" if ecs["describe_tasks_per_cycle"] <= allowed else "**missed**"
    machine = result["machine"]
    calls = ", ".join(f"{op} {n:.2f}" for op, n in ecs["aws_calls_per_spawn"].items())
    lat_rows = []
    for phase, label in (
        ("idle", "hub API latency, idle (ms)"),
        ("waves", "hub API latency during the waves (ms)"),
        ("steady", f"hub API latency, {ecs['running']} servers running (ms)"),
    ):
        lat_rows.append(
            f"| {label} | {_cells(base['api_latency_ms'][phase], _ms)} "
            f"| {_cells(ecs['api_latency_ms'][phase], _ms)} |"
        )
    lines = [
        f"Latest run: {result['started']}, {result['users']} users in waves of "
        f"{result['wave']}, `poll_interval` {result['poll_interval_s']} s, AWS's own wait "
        f"{3 * result['stage_seconds']:.1f} s a task (the stand-in for Fargate), "
        f"{machine['nproc']} cores ({machine['cpu']}, shared with other work), network: "
        f"{machine['network']}, git {machine['git']}. Baseline: the same hub with a spawner "
        "that returns at once (JupyterHub's own cost). Servers that ran: "
        f"{base['running']} baseline, {ecs['running']} ecs; spawns failed: "
        f"{len(result['failed'])}. The waves took {base['waves_wall_s']:.0f} s (baseline) and "
        f"{ecs['waves_wall_s']:.0f} s (ecs), the machine "
        f"{ecs['machine_busy_cores_during_waves']:.2f} cores busy on average during the ecs "
        "waves (this run, moto and the hub included).",
        "",
        "| measure: p50 / p99 / max | baseline | ecs backend |",
        "|---|---|---|",
        *lat_rows,
        f"| spawn request → server ready (s, checked every 0.5 s) "
        f"| {_cells(base['request_to_ready_s'], _s)} | {_cells(ecs['request_to_ready_s'], _s)} |",
        f"| spawn request → 'Task running', minus AWS's wait (s) | — "
        f"| {_cells(task['minus_aws_wait'], _s)} |",
        f"| spawn request → 'Task running', as seen (s) | — "
        f"| {_cells(task['request_to_event'], _s)} |",
        "",
        f"DescribeTasks per poll cycle with {ecs['running']} servers running: "
        f"{ecs['describe_tasks_per_cycle']:.1f}, that is {per100:.2f} per 100 servers (target: "
        f"≤ {TARGET_DESCRIBES_PER_100:g} per 100 started, so ≤ {allowed:g} here: {verdict}); "
        f"{ecs['tasks_per_describe'].get('p50', 0):.0f} tasks per call (median), over "
        f"{result['poll_cycles']} cycles.",
        "",
        f"AWS calls per spawn during the waves: {calls}.",
    ]
    return "\n".join(lines)


def write_readme(block: str) -> None:
    """Replace this benchmark's block in bench/README.md."""
    replace_readme_block(MARK_START, MARK_END, block, "## spawner: latest results")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, write the JSON results and the README table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--wave", type=int, default=100)
    parser.add_argument("--poll-interval", type=int, default=30, help="Spawner.poll_interval")
    parser.add_argument("--poll-cycles", type=int, default=3)
    parser.add_argument("--stage-seconds", type=float, default=0.5, help="AWS's wait a stage")
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=900, help="bound on the waves (s)")
    parser.add_argument("--hub-log", help="also save the hub's log to this file")
    parser.add_argument("--no-readme", action="store_true", help="leave bench/README.md alone")
    parser.add_argument("--no-netns", action="store_true", help="do not isolate the network")
    args = parser.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    # a TERM (the time bound, or the user) still stops the hub and moto on the way out
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if not args.no_netns:
        code = reexec_offline(__file__, argv, _NETNS_FLAG, args.timeout + 120)
        if code is not None:
            return code
    netns = bool(os.environ.get(_NETNS_FLAG))
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="westtek-bench-spawner-") as tmp:
        result = bench(args, Path(tmp))
    result = {"started": started, "machine": machine_facts(netns), **result}
    block = render(result)
    print(block)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1, default=str) + "\n")
    if not args.no_readme:
        write_readme(block)
    return 0 if not result["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
