"""Benchmark the restore on start: spawn request → JupyterLab, with 0, 1 and 20 packages back.

A real JupyterHub and proxy (the e2e harness's ``HubProcess`` on the docker demo's
configuration, ``make demo-docker``) start alice's server as a fresh container of the
notebook image, whose pre-start step (``westtek_spawner/prestart.py``) restores her latest
snapshot before the server starts. The extra packages are 20 generated pure-Python
distributions (``wtbench_restore_01`` … ``_20``: 100 modules of ~10 KB each, ~1 MB per
package, distinct seeded content), built offline with hatchling and served to pip as a
PEP 503 simple index by an HTTP server on 127.0.0.1 (the containers use the host's network).

Measured, each ``--reps`` times, medians and min–max reported:

1. **pip install from the index**: ``pip install --no-cache-dir --index-url
   http://127.0.0.1:<port>/simple/`` of the N packages inside alice's running container
   (``docker exec`` as jovyan, timed inside the container), as pip does it by default
   (byte-compiling) and with ``--no-compile`` (what a restore writes: no ``.pyc``);
2. **spawn request → JupyterLab answering**: from ``POST /hub/api/users/alice/server`` to
   the first ``GET /user/alice/lab`` through the proxy that ends (after the OAuth
   redirects a browser follows) in a 200 from her server, polled every 0.2 s, for a fresh
   container whose latest snapshot holds N extra packages (restore on), against the same
   spawn whose snapshot holds none (the restore compares and finds nothing to do) and the
   same spawn with ``WestTekSpawner.restore_environment = False`` (the hub restarted on
   that setting, at the end of the run);
3. **the restore stage itself**: the ``seconds`` the pre-start step records in its
   ``prestart.json``, and the span of its progress events as the spawn page receives them.

The run is bounded (``--timeout``). Nothing leaves loopback: hub, proxy, containers (host
network) and the package index all live on 127.0.0.1. Containers and volumes carry a
per-run prefix and are removed at the end. Raw numbers go to
``bench/results/spawn_restore.json``, the table into ``bench/README.md`` between the
``bench:spawn_restore`` markers.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker
import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchlib import log, machine_facts, publish, replace_readme_block, summary, verdict  # noqa: E402

from images.build import image_reference  # noqa: E402
from tests.core.conftest import build_wheel  # noqa: E402
from tests.e2e.conftest import HubProcess  # noqa: E402
from tests.e2e.researcher import Researcher  # noqa: E402

BENCH = REPO_ROOT / "bench"
RESULTS = BENCH / "results" / "spawn_restore.json"
MARKS = ("<!-- bench:spawn_restore:start -->", "<!-- bench:spawn_restore:end -->")
SECTION = "## spawn_restore: latest results"
TARGET_ADDED_S = 5.0  # issue 20: restore adds at most 5 s for 20 packages
COUNTS = (1, 20)
PACKAGES = [f"wtbench_restore_{i:02d}" for i in range(1, max(COUNTS) + 1)]
MODULES_PER_PACKAGE = 100
OUTCOMES = ("Restored ", "Your environment matches", "Could not restore")
USER = "alice"
SOURCES = ["westtek_spawner", "westtek_core", "images", "hub_config"]


# -- the packages and their index ------------------------------------------------------------


def module_source(rng: random.Random, package: str, index: int) -> str:
    """One ~10 KB module of plausible Python: constants, functions and a class or two."""
    parts = [f'"""{package}.mod_{index:03d}: generated for bench/spawn_restore.py."""\n']
    parts.append("from __future__ import annotations\n\nimport math\n\n")
    parts.append(f"TABLE = {[rng.randint(0, 10**6) for _ in range(40)]!r}\n\n")
    for f in range(12):
        a, b = rng.randint(2, 99), rng.random()
        parts.append(
            textwrap.dedent(
                f'''
                def f{f:02d}_{rng.getrandbits(32):08x}(x: float, y: float = {b:.6f}) -> float:
                    """Combine ``x`` and ``y`` ({rng.getrandbits(64):016x})."""
                    total = 0.0
                    for i, value in enumerate(TABLE[:{a % 40 + 1}]):
                        total += math.sin(x * i + value) * y ** ({a} % (i + 2))
                    return total / {a}

                '''
            )
        )
    for k in range(3):
        name = f"Model{k}_{rng.getrandbits(24):06x}"
        parts.append(
            textwrap.dedent(
                f'''
                class {name}:
                    """A small model with a state ({rng.getrandbits(64):016x})."""

                    def __init__(self, scale: float = {rng.random():.6f}) -> None:
                        self.scale = scale
                        self.history: list[float] = []

                    def step(self, value: float) -> float:
                        result = value * self.scale + {rng.randint(0, 999)}
                        self.history.append(result)
                        return result

                    def summary(self) -> dict[str, float]:
                        if not self.history:
                            return {{"n": 0.0}}
                        mean = sum(self.history) / len(self.history)
                        return {{"n": float(len(self.history)), "mean": mean}}

                '''
            )
        )
    text = "".join(parts)
    # pad to ~10 KB with a data block, as generated modules (tables, schemas) often carry
    while len(text) < 10_000:
        text += f'_DATA_{len(text)} = "{rng.getrandbits(256):064x}"\n'
    return text


def build_packages(workdir: Path) -> tuple[Path, dict[str, Any]]:
    """The 20 wheels, built offline with the running venv's hatchling; a PEP 503 index root."""
    index = workdir / "index"
    wheels = workdir / "src" / "wheels"
    source_bytes = 0
    for number, name in enumerate(PACKAGES, 1):
        rng = random.Random(f"westtek-bench-spawn-restore-{number}")
        modules = {
            f"mod_{m:03d}.py": module_source(rng, name, m) for m in range(1, MODULES_PER_PACKAGE)
        }
        source_bytes += sum(len(text) for text in modules.values())
        build_wheel(workdir / "src", name, f"1.0.{number}", extra_modules=modules)
    for wheel in sorted(wheels.glob("*.whl")):
        normalized = wheel.name.split("-")[0].lower().replace("_", "-")
        folder = index / "simple" / normalized
        folder.mkdir(parents=True)
        (folder / wheel.name).write_bytes(wheel.read_bytes())
        (folder / "index.html").write_text(
            f'<!DOCTYPE html><html><body><a href="{wheel.name}">{wheel.name}</a></body></html>\n'
        )
    facts = {
        "packages": len(PACKAGES),
        "files_per_package": MODULES_PER_PACKAGE,
        "source_mb_per_package": source_bytes / len(PACKAGES) / 1e6,
        "wheel_mb_per_package": sum(w.stat().st_size for w in wheels.glob("*.whl"))
        / len(PACKAGES)
        / 1e6,
    }
    return index, facts


class Index:
    """A PEP 503 simple index over HTTP on 127.0.0.1 (the containers share the host's network)."""

    def __init__(self, root: Path) -> None:
        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

        handler = functools.partial(Handler, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


# -- alice's container -------------------------------------------------------------------------


class Bench:
    """The hub, alice's session, her container and the measurements of one run."""

    def __init__(self, args: argparse.Namespace, workdir: Path, index: Index) -> None:
        self.args, self.workdir, self.index = args, workdir, index
        self.client = docker.from_env(timeout=120)
        self.client.ping()
        self.image = image_reference("notebook")
        self.client.images.get(self.image)  # built by `make images`
        self.prefix = f"westtek-bench-sr-{uuid.uuid4().hex[:8]}"
        self.hub = HubProcess(workdir / "hub", demo_config="jupyterhub_docker_config.py")
        with open(self.hub.config, "a") as config:
            config.write(
                f"""
# -- bench/spawn_restore.py: containers and volumes of this run only
c.DockerSpawner.prefix = {self.prefix!r}
c.DockerBackend.home_volume = {self.prefix + "-home-{username}"!r}
"""
            )
        self.alice: Researcher | None = None
        self.spawns: list[dict[str, Any]] = []
        self.installs: list[dict[str, Any]] = []
        self.snapshots: list[dict[str, Any]] = []

    # the container

    def containers(self) -> list[Any]:
        """The run's containers (alice's, at most one)."""
        # sparse: no inspect of each, which fails on one removed meanwhile
        return list(
            self.client.containers.list(all=True, sparse=True, filters={"name": self.prefix})
        )

    def container(self) -> Any:
        """Alice's one container."""
        (container,) = self.containers()
        return container

    def exec(self, script: str, timeout: float = 300) -> str:
        """Run ``sh -c script`` in alice's container as jovyan; its output (must succeed)."""
        command = ["docker", "exec", "-u", "1000", self.container().id, "sh", "-c", script]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"{script!r} failed ({done.returncode}): {done.stderr[-2000:]}")
        return done.stdout

    def timed_pip(self, packages: Sequence[str], compile_: bool) -> float:
        """``pip install`` of ``packages`` from the loopback index, timed inside the container."""
        args = ["pip", "install", "-q", "--no-cache-dir", "--index-url", self.index.url]
        args += [] if compile_ else ["--no-compile"]
        timer = (
            "import subprocess, sys, time; t = time.monotonic(); "
            f"subprocess.run({[*args, *packages]!r}, check=True); "
            "print(time.monotonic() - t)"
        )
        return float(self.exec(f"python -c {shlex.quote(timer)}").strip().splitlines()[-1])

    def uninstall_all(self) -> None:
        """Remove every benchmark package from her environment (untimed)."""
        self.exec(f"pip uninstall -y -q {' '.join(PACKAGES)} 2>/dev/null || true")

    def installed(self) -> set[str]:
        """The benchmark packages her environment holds."""
        listing = json.loads(self.exec("pip list --format json 2>/dev/null"))
        return {p["name"].replace("-", "_") for p in listing} & set(PACKAGES)

    def prestart_record(self) -> dict[str, Any]:
        """What the pre-start step of her container recorded (``prestart.json``)."""
        path = "${XDG_DATA_HOME:-$HOME/.local/share}/westtek/prestart.json"
        return json.loads(self.exec(f"cat {path}"))

    # the hub

    def start(self) -> None:
        """Start the hub, log alice in, spawn her first server (nothing to restore)."""
        self.hub.start(timeout=120)
        self.alice = Researcher(self.hub, USER)
        self.alice.wait_for_server(timeout=300)

    def snapshot(self, note: str) -> dict[str, Any]:
        """Take a snapshot of her environment through her server's API (untimed)."""
        assert self.alice is not None
        started = time.monotonic()
        job = self.alice.json("POST", "westtek/api/snapshots", json={"note": note})
        result = self.alice.wait_for_job(job, timeout=600)["result"]
        record = {"note": note, "id": result["id"], "seconds": time.monotonic() - started}
        self.snapshots.append(record)
        log(f"  snapshot {result['id'][:12]} ({note}) in {record['seconds']:.1f} s")
        return record

    def stop_server(self) -> None:
        """Stop her server; wait until its container is gone and the hub forgot it."""
        response = self.hub.api("DELETE", f"users/{USER}/server")
        assert response.status_code in (202, 204), response.text
        deadline = time.monotonic() + 120
        while self.containers():
            assert time.monotonic() < deadline, "alice's container was not removed"
            time.sleep(0.25)
        deadline = time.monotonic() + 60  # the hub has forgotten the server
        while self.hub.api("GET", f"users/{USER}").json().get("servers", {}).get(""):
            assert time.monotonic() < deadline, "the hub still lists alice's server"
            time.sleep(0.25)

    def timed_spawn(self, case: str, extras: int, rep: int) -> dict[str, Any]:
        """Stop alice's server, spawn a fresh one, time it to JupyterLab's 200."""
        assert self.alice is not None
        self.stop_server()
        events: list[tuple[float, dict[str, Any]]] = []
        started = time.monotonic()

        def follow() -> None:
            try:
                with self.hub.api_stream(f"users/{USER}/server/progress") as stream:
                    for line in stream.iter_lines(decode_unicode=True):
                        if line.startswith("data:"):
                            event = json.loads(line[len("data:") :])
                            events.append((time.monotonic() - started, event))
                            if event.get("ready") or event.get("failed"):
                                return
            except requests.RequestException as e:
                log(f"  progress stream: {e}")

        response = self.hub.api("POST", f"users/{USER}/server")
        assert response.status_code in (201, 202), response.text
        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        lab = self.alice.base + "lab"
        deadline = started + self.args.spawn_timeout
        lab_s = None
        while time.monotonic() < deadline:
            try:
                got = self.alice.session.get(lab, timeout=30)
                if got.status_code == 200 and got.url.split("?")[0] == lab:
                    lab_s = time.monotonic() - started
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        follower.join(30)
        if lab_s is None:
            raise RuntimeError(f"{case}: JupyterLab did not answer in {self.args.spawn_timeout}s")
        messages = [(round(t, 3), e.get("message", "")) for t, e in events]
        ready = [t for t, e in events if e.get("ready")]
        restoring = [t for t, m in messages if m.startswith("Restoring your environment")]
        outcome = [t for t, m in messages if m.startswith(OUTCOMES)]
        record: dict[str, Any] = {
            "case": case,
            "extras": extras,
            "rep": rep,
            "lab_s": lab_s,
            "ready_event_s": ready[0] if ready else None,
            "restore_events_s": (outcome[0] - restoring[0]) if restoring and outcome else None,
            "events": messages,
            "loadavg_1min": os.getloadavg()[0],
        }
        # the restore on the container's own clock, and what it put back
        if case != "restore off":
            prestart = self.prestart_record()
            record["prestart"] = prestart
            record["prestart_s"] = prestart.get("seconds")
        record["installed"] = len(self.installed())
        self.spawns.append(record)
        log(
            f"  {case}, {extras} extra: lab {lab_s:.2f} s, prestart "
            f"{record.get('prestart_s')} s, {record['installed']} extra packages installed"
        )
        if case == "restore on":
            status = record["prestart"].get("status")
            if record["installed"] != extras or status not in ("restored", "unchanged"):
                raise RuntimeError(f"the restore did not bring back {extras} packages: {record}")
        return record

    def timed_install(self, count: int, rep: int) -> None:
        """Time `pip install` of ``count`` packages, with ``--no-compile`` then without."""
        packages = PACKAGES[:count]
        for compile_ in (False, True):
            self.uninstall_all()
            seconds = self.timed_pip(packages, compile_)
            record = {"extras": count, "rep": rep, "compile": compile_, "seconds": seconds}
            self.installs.append(record)
            log(f"  pip install of {count} (compile={compile_}): {seconds:.2f} s")
        assert len(self.installed()) == count

    def run(self) -> None:
        """Each repetition: 1, 20 and 0 extras restored; then restore off, on its own hub."""
        self.start()
        deadline = time.monotonic() + self.args.timeout
        for rep in range(self.args.reps):
            for count in (*COUNTS, 0):
                log(f"rep {rep + 1}/{self.args.reps}: {count} extra package(s)")
                if count:
                    self.timed_install(count, rep)
                else:
                    self.uninstall_all()
                self.snapshot(f"bench: {count} extra packages")
                self.timed_spawn("restore on", count, rep)
            if time.monotonic() > deadline:
                log("time bound reached: no more repetitions")
                break
        self.stop_server()
        self.hub.stop()
        with open(self.hub.config, "a") as config:
            config.write("c.WestTekSpawner.restore_environment = False\n")
        self.hub.start(timeout=120)
        for rep in range(len({s["rep"] for s in self.spawns})):
            log(f"restore off: spawn {rep + 1}")
            self.timed_spawn("restore off", 0, rep)

    def close(self) -> None:
        """Stop alice's server and the hub; remove every container and volume of the run."""
        try:
            self.hub.api("DELETE", f"users/{USER}/server")
        except requests.RequestException:
            pass
        self.hub.stop()
        for container in self.containers():
            container.remove(force=True)
        for volume in self.client.volumes.list(filters={"name": self.prefix}):
            volume.remove(force=True)


# -- reporting -------------------------------------------------------------------------------


def _stats(values: Sequence[float | None]) -> dict[str, float] | None:
    kept = [v for v in values if v is not None]
    return summary(kept) if kept else None


STAGES = (
    ("container started → pre-start's first status", "Notebook server running", "Restoring "),
    (
        "finding the latest snapshot",
        "Restoring your environment: looking",
        "Restoring your environment: comparing",
    ),
    (
        "comparing, safety snapshot (→ first step or outcome)",
        "Restoring your environment: comparing",
        ("Restoring your environment from", *OUTCOMES),
    ),
    ("install steps, final check (→ outcome)", "Restoring your environment from", OUTCOMES),
    (
        "server start (outcome, or container started → answering)",
        (*OUTCOMES, "Notebook server running"),
        "Notebook server answering",
    ),
)


def stage_times(events: Sequence[Sequence[Any]]) -> dict[str, float | None]:
    """The spans between progress events, as the hub's progress stream delivered them."""

    def first(prefixes: str | tuple[str, ...]) -> float | None:
        return next((t for t, m in events if m.startswith(prefixes)), None)

    spans: dict[str, float | None] = {}
    for name, start, end in STAGES:
        if name.startswith("server start"):  # from the outcome when there was a restore
            began = first(start[:-1]) or first(start[-1])
        else:
            began = first(start)
        ended = first(end)
        spans[name] = None if began is None or ended is None else ended - began
    return spans


def aggregate(bench: Bench) -> dict[str, Any]:
    """Medians and ranges of every measure, by case."""

    def spawns(case: str, extras: int, key: str) -> dict[str, float] | None:
        return _stats(
            [s.get(key) for s in bench.spawns if s["case"] == case and s["extras"] == extras]
        )

    out: dict[str, Any] = {"pip": {}, "spawn": {}}
    for count in COUNTS:
        for compile_ in (True, False):
            picked = [
                i["seconds"]
                for i in bench.installs
                if i["extras"] == count and i["compile"] == compile_
            ]
            out["pip"][f"{count}/{'compile' if compile_ else 'no-compile'}"] = _stats(picked)
    for case, extras in [("restore off", 0), ("restore on", 0)] + [
        ("restore on", n) for n in COUNTS
    ]:
        out["spawn"][f"{case}/{extras}"] = {
            key: spawns(case, extras, key)
            for key in ("lab_s", "ready_event_s", "restore_events_s", "prestart_s")
        }
    return out


def _cell(stats: dict[str, float] | None) -> str:
    if not stats:
        return "—"
    return f"{stats['median']:.2f} ({stats['min']:.2f}–{stats['max']:.2f})"


def _median(stats: dict[str, float] | None) -> float | None:
    return stats["median"] if stats else None


def render(result: dict[str, Any]) -> str:
    """The markdown block written between the README markers."""
    agg, machine, pkgs = result["aggregate"], result["machine"], result["packages"]
    spawn, pip = agg["spawn"], agg["pip"]
    off = _median(spawn["restore off/0"]["lab_s"])
    zero = _median(spawn["restore on/0"]["lab_s"])

    def added(stats: dict[str, float] | None, base: float | None) -> str:
        value = _median(stats)
        return "—" if value is None or base is None else f"{value - base:+.2f}"

    rows = [
        "| case | spawn → JupyterLab 200 (s) | restore adds vs restore off (s) "
        "| vs 0-package snapshot (s) | restore stage, prestart.json (s) "
        "| restore stage, progress events (s) | `pip install` from the index (s) "
        "| `pip install --no-compile` (s) |",
        "|---|---|---|---|---|---|---|---|",
        f"| restore off (`restore_environment = False`) | {_cell(spawn['restore off/0']['lab_s'])} "
        "| — | — | — | — | — | — |",
        f"| restore on, snapshot with 0 extra packages | {_cell(spawn['restore on/0']['lab_s'])} "
        f"| {added(spawn['restore on/0']['lab_s'], off)} | — "
        f"| {_cell(spawn['restore on/0']['prestart_s'])} "
        f"| {_cell(spawn['restore on/0']['restore_events_s'])} | — | — |",
    ]
    for count in COUNTS:
        cell = spawn[f"restore on/{count}"]
        rows.append(
            f"| restore on, snapshot with {count} extra package{'s' if count > 1 else ''} "
            f"| {_cell(cell['lab_s'])} | {added(cell['lab_s'], off)} "
            f"| {added(cell['lab_s'], zero)} | {_cell(cell['prestart_s'])} "
            f"| {_cell(cell['restore_events_s'])} | {_cell(pip[f'{count}/compile'])} "
            f"| {_cell(pip[f'{count}/no-compile'])} |"
        )
    top = spawn[f"restore on/{max(COUNTS)}"]
    added_top = None if off is None or not top["lab_s"] else top["lab_s"]["median"] - off
    pip_top = _median(pip[f"{max(COUNTS)}/compile"])
    restore_top = _median(top["prestart_s"])
    ratio = f"{restore_top / pip_top:.2f}×" if restore_top is not None and pip_top else "—"
    loads = [s["loadavg_1min"] for s in result["spawns"] if "loadavg_1min" in s]
    load = (
        f" Load average (1 min) at the end of each spawn: {min(loads):.1f}–{max(loads):.1f}."
        if loads
        else ""
    )
    lines = [
        f"Latest run: {result['date']}, {result['reps']} repetition(s), cells: median "
        "(min–max). Machine: "
        f"{machine['nproc']} cores ({machine['cpu']}, shared with other work), Python "
        f"{machine['python']}, kernel {machine['kernel']}, git {machine['git']}, notebook "
        f"image `{result['image']}`. Network: loopback only (hub, proxy, containers on the "
        "host network, the package index on 127.0.0.1), not isolated in a namespace. Run "
        f"took {result['wall_s'] / 60:.1f} min.{load}",
        "",
        *rows,
        "",
        f"Target (issue 20): the restore adds ≤ {TARGET_ADDED_S:g} s to a spawn for "
        f"{max(COUNTS)} packages, against restore off: "
        f"{'—' if added_top is None else f'{added_top:.2f} s'}, "
        f"{verdict(added_top, TARGET_ADDED_S)}. The restore stage for {max(COUNTS)} "
        f"packages takes {ratio} the time of `pip install` of the same packages from the "
        f"index. Packages: {pkgs['packages']} generated pure-Python distributions, "
        f"{pkgs['files_per_package']} modules each, {pkgs['source_mb_per_package']:.2f} MB "
        f"of source and a {pkgs['wheel_mb_per_package']:.2f} MB wheel per package.",
        "",
        *stage_table(result["spawns"]),
    ]
    return "\n".join(lines)


def stage_table(spawns: Sequence[dict[str, Any]]) -> list[str]:
    """Where a spawn's time goes: median spans between its progress events, by case."""
    cases = [("restore off", 0), ("restore on", 0)] + [("restore on", n) for n in COUNTS]
    heads = ["restore off", "0 extra"] + [f"{n} extra" for n in COUNTS]
    lines = [
        "Where the time goes, from the progress events (s, median; the spawner polls the "
        "pre-start's status every 0.5 s):",
        "",
        "| stage | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(heads),
    ]
    for name, _, _ in STAGES:
        cells = []
        for case, extras in cases:
            values = [
                stage_times(s["events"])[name]
                for s in spawns
                if s["case"] == case and s["extras"] == extras
            ]
            stats = _stats(values)
            cells.append(f"{stats['median']:.2f}" if stats else "—")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, write the JSON results and the README table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900, help="no new rep after this (s)")
    parser.add_argument("--spawn-timeout", type=float, default=300, help="bound on a spawn (s)")
    parser.add_argument("--no-readme", action="store_true", help="leave bench/README.md alone")
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite the README block from the last JSON"
    )
    args = parser.parse_args(argv)
    if args.render_only:
        saved = json.loads(RESULTS.read_text())
        block = render(saved)
        print(block)
        if not args.no_readme:
            replace_readme_block(*MARKS, block, SECTION)
        return 0
    # a TERM still stops the hub and removes the containers on the way out
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.monotonic()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="westtek-bench-spawn-restore-") as tmp:
        workdir = Path(tmp)
        (workdir / "hub").mkdir()
        log("building the packages")
        root, packages = build_packages(workdir / "packages")
        index = Index(root)
        bench = Bench(args, workdir, index)
        try:
            bench.run()
        finally:
            bench.close()
            index.close()
    result = {
        "started": started_at,
        "reps": len({s["rep"] for s in bench.spawns if s["case"] == "restore on"}),
        "image": bench.image,
        "machine": machine_facts(False, SOURCES),
        "packages": packages,
        "wall_s": time.monotonic() - started,
        "aggregate": aggregate(bench),
        "spawns": bench.spawns,
        "installs": bench.installs,
        "snapshots": bench.snapshots,
    }
    publish(RESULTS, result, MARKS, render, SECTION, write=not args.no_readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
