#!/usr/bin/env python3
"""Benchmark ``westtek snapshot`` against restic, side by side, on a real scientific tree.

The tree (built once under ``bench/.cache/``, then reused) is a ~700 MB venv with numpy,
pandas, scipy, matplotlib, scikit-learn, statsmodels, jupyterlab and ipykernel, plus a
workspace with the real example notebooks of the statsmodels sdist and ~200 MB of seeded
CSV and binary data. Every measured command runs in its own subprocess, inside a network
namespace with only loopback (``unshare --net``) when the machine allows it, with a timeout.

Run ``.venv/bin/python bench/snapshot_vs_restic.py --help`` for the options; the latest table
goes into ``bench/README.md`` and the raw timings into ``bench/results/snapshot_vs_restic.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchlib import cpu_model

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
sys.path.insert(0, str(REPO_ROOT))  # the tests' example-notebook fetcher is reused below
from tests.example_notebooks import (  # noqa: E402
    NOTEBOOK_SDIST,
    download_sdist,
    extract_notebooks,
)

CACHE = BENCH / ".cache"
TREE = CACHE / "tree"
ENV = TREE / "env"
ENV2 = TREE / "env2"
WORKSPACE = TREE / "workspace"
NOTEBOOKS = WORKSPACE / "notebooks" / "statsmodels"
DATA = WORKSPACE / "data"
WHEELS = CACHE / "wheels"
SCRATCH = CACHE / "runs"
BUILD_FACTS = TREE / "build.json"
RESULTS = BENCH / "results" / "snapshot_vs_restic.json"
README = BENCH / "README.md"
WESTTEK = REPO_ROOT / ".venv" / "bin" / "westtek"

ENV_PACKAGES = (
    "numpy",
    "pandas",
    "scipy",
    "matplotlib",
    "scikit-learn",
    "statsmodels==0.15.0",
    "jupyterlab",
    "ipykernel",
)
UPGRADE_PKG, OLD_VERSION, NEW_VERSION = "six", "1.16.0", "1.17.0"
EXTRA_PKG, EXTRA_VERSION = "tabulate", "0.9.0"
SEED = 20261126
MIB = 1024 * 1024

MARK_START = "<!-- bench:snapshot_vs_restic:start -->"
MARK_END = "<!-- bench:snapshot_vs_restic:end -->"

STEPS = ("first", "unchanged", "changed", "pip", "size", "restore", "second-env", "memory", "cold")
TOOLS = ("westtek", "westtek-encrypted", "restic", "restic-nopyc", "cp")

# Targets from the issues (22 for unchanged, pip, memory and cold): westtek / restic ratio at
# most this (second-env: percent added; cold: seconds, no restic counterpart).
TARGETS: dict[str, tuple[str, float]] = {
    "first": ("ratio", 0.8),
    "unchanged": ("ratio", 0.3),
    "changed": ("ratio", 0.8),
    "pip": ("ratio", 0.3),
    "size": ("ratio", 1.0),
    "restore": ("ratio", 1.0),
    "second-env": ("percent", 5.0),
    "memory": ("ratio", 1.0),
    "cold": ("seconds", 0.5),
}
# Cold processes timed per repetition (after one untimed run that fills the on-disk caches).
COLD_RUNS = 5
KB_QUERY = "autoregressive model with seasonal terms"


def log(message: str) -> None:
    """Print a progress line to stderr with a timestamp."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


@dataclass
class Run:
    """One finished subprocess: wall time, its own rusage, and its output."""

    argv: list[str]
    seconds: float
    returncode: int
    max_rss_kib: int
    cpu_user: float
    cpu_sys: float
    stdout: str
    stderr: str

    def check(self) -> Run:
        """Raise if the command failed, with the tail of its stderr."""
        if self.returncode != 0:
            tail = "\n".join(self.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"exit {self.returncode}: {' '.join(self.argv)}\n{tail}")
        return self


_NETNS: bool | None = None


def netns_available() -> bool:
    """Whether ``unshare --net`` works here (root in a VM or a privileged container)."""
    global _NETNS
    if _NETNS is None:
        try:
            probe = subprocess.run(
                ["unshare", "--net", "--", "true"], capture_output=True, timeout=10
            )
            _NETNS = probe.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _NETNS = False
    return _NETNS


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run(
    argv: Sequence[str | Path],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 1800,
    offline: bool = True,
    cwd: Path | None = None,
) -> Run:
    """Run ``argv`` in its own session and return its wall time and own rusage (``wait4``).

    ``offline`` runs it in a fresh network namespace where only loopback is up; the wrapper
    ``exec``s the command, so the measured pid and its maximum RSS are the command's own.
    """
    args = [str(a) for a in argv]
    full = args
    if offline and netns_available():
        wrapper = 'ip link set lo up 2>/dev/null; exec "$@"'
        full = ["unshare", "--net", "--", "sh", "-c", wrapper, "sh", *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            full, stdout=out, stderr=err, env=env, cwd=cwd, start_new_session=True
        )
        timer = threading.Timer(timeout, _kill_group, (proc.pid,))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if proc.returncode == -signal.SIGKILL and seconds >= timeout:
        stderr += f"\n(killed after the {timeout:.0f} s timeout)"
    return Run(
        argv=args,
        seconds=seconds,
        returncode=proc.returncode,
        max_rss_kib=usage.ru_maxrss,
        cpu_user=usage.ru_utime,
        cpu_sys=usage.ru_stime,
        stdout=stdout,
        stderr=stderr,
    )


def du_bytes(path: Path) -> int:
    """``du -sb`` of ``path`` in bytes."""
    out = subprocess.run(
        ["du", "-sb", str(path)], capture_output=True, text=True, timeout=600, check=True
    )
    return int(out.stdout.split()[0])


def tree_stats(path: Path) -> tuple[int, int]:
    """Number of regular files and their total size under ``path`` (symlinks not followed)."""
    files = size = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            st = os.lstat(os.path.join(root, name))
            if not os.path.islink(os.path.join(root, name)):
                files += 1
                size += st.st_size
    return files, size


_LAST_DELETE = 0.0


def rmtree(path: Path) -> None:
    """Remove ``path`` if it exists (also read-only trees); remember when, for :func:`settle`."""
    global _LAST_DELETE
    if path.exists() or path.is_symlink():
        subprocess.run(["rm", "-rf", str(path)], check=True, timeout=900)
        _LAST_DELETE = time.monotonic()


def mark_deleted_now() -> None:
    """Make the next :func:`settle` wait out the slow-creation window from now."""
    global _LAST_DELETE
    _LAST_DELETE = time.monotonic()


# After an ``rm -rf`` of a 30k-file tree, creating files on this disk (ext4 without a journal,
# mounted ``discard``) costs 3-4x more kernel time for minutes: measured here, ``cp -a`` of the
# env took 5.7 s with no deletion before it, 13 s 40 s after one, 16 s after 120 s and 5.4 s
# after 300 s (perf: ext4's ``recently_deleted``/``find_get_block`` in inode allocation).
# So the benchmark deletes nothing between measured commands, and waits this long after any
# big deletion it must do (leftovers of an interrupted run, or too little free disk).
DELETE_SETTLE_SECONDS = 300.0


def _disk_counters(device: str) -> tuple[str, str] | None:
    try:
        fields = Path(f"/sys/block/{device}/stat").read_text().split()
    except OSError:
        return None
    return fields[6], fields[8]  # sectors written, I/Os in flight


def settle(device: str | None) -> float:
    """Flush, wait out the slow window after a big deletion, let the disk idle; seconds waited.

    Without this, write-back, online discard (the root fs is mounted ``discard``) and inode
    allocation after the previous step's deletions land in the next measured command.
    """
    start = time.monotonic()
    os.sync()
    remaining = _LAST_DELETE + DELETE_SETTLE_SECONDS - time.monotonic()
    if _LAST_DELETE and remaining > 0:
        time.sleep(remaining)
        os.sync()
    if device:
        previous = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            counters = _disk_counters(device)
            if counters is None or (counters == previous and counters[1] == "0"):
                break
            previous = counters
            time.sleep(0.25)
    return time.monotonic() - start


def block_device(path: Path) -> str | None:
    """The /sys/block name of the disk holding ``path`` (e.g. ``vda``), if it is one."""
    out = subprocess.run(["findmnt", "-no", "SOURCE", "--target", str(path)],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    name = os.path.basename(out.stdout.strip())
    if not name:
        return None
    if Path(f"/sys/block/{name}").exists():
        return name
    parent = Path(f"/sys/class/block/{name}/..").resolve()
    return parent.name if (parent / "stat").exists() else None


# --------------------------------------------------------------------------- the tree


def _timed(facts: dict[str, Any], name: str, func: Callable[[], None]) -> None:
    start = time.perf_counter()
    func()
    facts.setdefault("build_seconds", {})[name] = round(time.perf_counter() - start, 1)
    log(f"  {name}: {facts['build_seconds'][name]:.1f} s")


def _pip(python: Path, *args: str, timeout: float = 1800) -> None:
    cmd = [str(python), "-m", "pip", "--disable-pip-version-check", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")


def _build_env() -> None:
    rmtree(ENV)
    subprocess.run([sys.executable, "-m", "venv", str(ENV)], check=True, timeout=300)
    _pip(ENV / "bin" / "python", "install", "--quiet", *ENV_PACKAGES)


def _download_wheels() -> None:
    WHEELS.mkdir(parents=True, exist_ok=True)
    for spec in (
        f"{UPGRADE_PKG}=={OLD_VERSION}",
        f"{UPGRADE_PKG}=={NEW_VERSION}",
        f"{EXTRA_PKG}=={EXTRA_VERSION}",
    ):
        _pip(
            Path(sys.executable),
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary",
            ":all:",
            "-d",
            str(WHEELS),
            spec,
            timeout=600,
        )


def _pin_old_version() -> None:
    python = ENV / "bin" / "python"
    _pip(python, "install", "--quiet", "--no-index", "--find-links", str(WHEELS),
         f"{UPGRADE_PKG}=={OLD_VERSION}")  # fmt: skip
    check = subprocess.run(
        [str(python), "-m", "pip", "show", EXTRA_PKG], capture_output=True, timeout=120
    )
    if check.returncode == 0:
        raise RuntimeError(f"{EXTRA_PKG} is already in the env: pick another extra package")


def _build_env2() -> None:
    rmtree(ENV2)
    subprocess.run(["cp", "-a", str(ENV), str(ENV2)], check=True, timeout=900)
    _pip(ENV2 / "bin" / "python", "install", "--quiet", "--no-index", "--find-links",
         str(WHEELS), f"{EXTRA_PKG}=={EXTRA_VERSION}")  # fmt: skip


def _fetch_notebooks() -> None:
    rmtree(NOTEBOOKS)
    NOTEBOOKS.mkdir(parents=True)
    extract_notebooks(download_sdist(CACHE), NOTEBOOKS)


def _generate_data() -> None:
    rmtree(DATA)
    run([ENV / "bin" / "python", __file__, "--generate-data", DATA], offline=True,
        timeout=1800).check()  # fmt: skip


def generate_data(out: Path) -> None:
    """Write ~120 MB of CSV and ~80 MB of binary data, seeded (runs in the tree's env)."""
    import numpy as np  # only in the tree's env
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    rows = 500_000
    start = np.datetime64("2024-01-01T00:00:00")
    for i in range(4):
        frame = pd.DataFrame(
            {
                "id": np.arange(rows, dtype=np.int64) + i * rows,
                "time": start + rng.integers(0, 3600 * 24 * 365, rows).astype("timedelta64[s]"),
                "site": rng.choice(["vault-13", "vault-101", "vault-8", "shady-sands"], rows),
                "temperature": rng.normal(20.0, 5.0, rows).round(3),
                "pressure": rng.normal(1013.0, 8.0, rows).round(2),
                "rads": rng.gamma(2.0, 3.0, rows).round(4),
                "flag": rng.integers(0, 2, rows),
            }
        )
        frame.to_csv(out / f"measurements_{i}.csv", index=False)
    # Partly compressible binaries: smooth int16 "images", small-range labels, a mixed file,
    # and incompressible random bytes.
    x = np.linspace(0, 40 * np.pi, 1024)
    images = (np.sin(x)[None, :] * np.cos(x[:, None] / 3) * 1000).astype(np.int16)
    stack = np.stack([np.roll(images, k, axis=1) for k in range(10)])  # 10 x 1024 x 1024
    np.save(out / "images.npy", stack)  # ~20 MiB
    np.save(out / "labels.npy", rng.integers(0, 8, 10 * MIB // 4).astype(np.int32))
    blocks = []
    for k in range(20):
        kind = k % 4
        if kind == 0:
            blocks.append(bytes(MIB))
        elif kind == 1:
            blocks.append(rng.bytes(MIB))
        elif kind == 2:
            record = b"West Tek FEV sample %08d;" % k
            blocks.append((record * (MIB // len(record) + 1))[:MIB])
        else:
            blocks.append(rng.normal(0, 1, MIB // 8).astype(np.float64).tobytes())
    (out / "mixed.bin").write_bytes(b"".join(blocks))  # 20 MiB
    for i in range(2):
        (out / f"random_{i}.bin").write_bytes(rng.bytes(15 * MIB))


def build_tree(*, skip_build: bool) -> dict[str, Any]:
    """Build whatever part of the tree is missing; return the build facts."""
    facts: dict[str, Any] = json.loads(BUILD_FACTS.read_text()) if BUILD_FACTS.exists() else {}
    done = set(facts.get("done", []))
    if skip_build:
        if not {"env", "wheels", "pin", "env2", "notebooks", "data"} <= done:
            raise SystemExit(f"--skip-build: the tree in {TREE} is not complete; build it first")
        return facts
    steps: list[tuple[str, Callable[[], None]]] = [
        ("env", _build_env),
        ("wheels", _download_wheels),
        ("pin", _pin_old_version),
        ("env2", _build_env2),
        ("notebooks", _fetch_notebooks),
        ("data", _generate_data),
    ]
    TREE.mkdir(parents=True, exist_ok=True)
    WORKSPACE.mkdir(parents=True, exist_ok=True)
    rebuild_rest = ran_any = False
    for name, func in steps:
        if name in done and not rebuild_rest:
            continue
        ran_any = True
        if name in ("env", "pin"):
            rebuild_rest = True  # env2 copies env: redo it when env changes
        log(f"build: {name}")
        _timed(facts, name, func)
        done.add(name)
        facts["done"] = sorted(done)
        BUILD_FACTS.write_text(json.dumps(facts, indent=2))
    if "facts" not in facts or ran_any:
        facts["facts"] = describe_tree()
        BUILD_FACTS.write_text(json.dumps(facts, indent=2))
    return facts


def describe_tree() -> dict[str, Any]:
    """Files and sizes of the tree's parts, and the env's packages."""
    facts: dict[str, Any] = {}
    for name, path in (("env", ENV), ("workspace", WORKSPACE), ("data", DATA),
                       ("notebooks", NOTEBOOKS)):  # fmt: skip
        files, size = tree_stats(path)
        facts[name] = {"files": files, "bytes": size}
    facts["notebook_count"] = len(list(NOTEBOOKS.rglob("*.ipynb")))
    facts["notebook_source"] = f"examples/notebooks of the {NOTEBOOK_SDIST} sdist (PyPI)"
    freeze = subprocess.run(
        [str(ENV / "bin" / "python"), "-m", "pip", "freeze"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    facts["packages"] = freeze.stdout.split()
    facts["pyc_files"] = sum(1 for _ in ENV.rglob("*.pyc"))
    return facts


# --------------------------------------------------------------------------- measurement


def westtek_env(xdg_cache: Path) -> dict[str, str]:
    """The environment for a westtek run: a given stat cache dir, isolated config/data."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WESTTEK_")}
    env.update(
        XDG_CACHE_HOME=str(xdg_cache),
        XDG_CONFIG_HOME=str(SCRATCH / "xdg-config"),
        XDG_DATA_HOME=str(SCRATCH / "xdg-data"),
    )
    return env


def restic_env() -> dict[str, str]:
    """The environment for a restic run (the password; no other RESTIC_* settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")}
    env["RESTIC_PASSWORD"] = "bench"
    return env


def _json_tail(text: str) -> Any:
    """The last JSON document in ``text`` (whole output first, then line by line)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    for line in reversed(text.strip().splitlines()):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    return None


def _scalars(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        return {}
    return {k: v for k, v in doc.items() if isinstance(v, str | int | float | bool) or v is None}


@dataclass
class Sample:
    """One measured command within one repetition."""

    step: str
    tool: str
    rep: int
    seconds: float
    cpu_seconds: float
    max_rss_mib: float
    value: float | None = None  # bytes or percent for size-like steps
    cpu_user: float = 0.0
    cpu_sys: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


class Bench:
    """The measured steps of one benchmark invocation."""

    def __init__(self, steps: set[str], tools: set[str], timeout: float) -> None:
        self.steps = steps
        self.tools = tools
        self.timeout = timeout
        self.samples: list[Sample] = []
        self.errors: list[str] = []
        self.key_file = SCRATCH / "store.key"
        self.device = block_device(CACHE)
        self.keep_trees = True  # set by main: False when the disk cannot hold every rep

    # -- helpers

    def _record(
        self, step: str, tool: str, rep: int, result: Run, info: dict[str, Any] | None = None
    ) -> Sample:
        sample = Sample(
            step=step,
            tool=tool,
            rep=rep,
            seconds=round(result.seconds, 3),
            cpu_seconds=round(result.cpu_user + result.cpu_sys, 3),
            max_rss_mib=round(result.max_rss_kib / 1024, 1),
            cpu_user=round(result.cpu_user, 3),
            cpu_sys=round(result.cpu_sys, 3),
            info=info or {},
        )
        self.samples.append(sample)
        log(
            f"  rep {rep} {step:<10} {tool:<18} {result.seconds:7.2f} s  "
            f"cpu {result.cpu_user:5.1f}+{result.cpu_sys:4.1f} s  rss {sample.max_rss_mib:6.1f} MiB"
        )
        return sample

    def _timed(self, argv: Sequence[str | Path], env: dict[str, str]) -> Run:
        waited = settle(self.device)
        if waited > 1:
            log(f"  (settled {waited:.0f} s)")
        return run(argv, env=env, timeout=self.timeout).check()

    def westtek_create(
        self, python: Path, root: Path, store: Path, xdg: Path, *, encrypt: bool = False
    ) -> tuple[Run, dict[str, Any]]:
        """``westtek snapshot create`` of one interpreter and root into ``store``."""
        argv: list[str | Path] = [WESTTEK, "snapshot", "create", "--python", python,
                                  "--root", root, "--store", store, "--json"]  # fmt: skip
        if encrypt:
            argv += ["--encrypt", "--key-file", self.key_file]
        result = self._timed(argv, westtek_env(xdg))
        return result, _scalars(_json_tail(result.stdout))

    def restic(self, repo: Path, cache: Path, *args: str | Path) -> Run:
        """Run ``restic -r repo --cache-dir cache ARGS`` (timed)."""
        argv: list[str | Path] = ["restic", "-r", repo, "--cache-dir", cache, *args]
        return self._timed(argv, restic_env())

    def restic_backup(
        self, repo: Path, cache: Path, *paths: Path, exclude: str | None = None
    ) -> tuple[Run, dict[str, Any]]:
        """``restic backup --json PATHS``: the run and its summary message."""
        extra = ["--exclude", exclude] if exclude else []
        result = self.restic(repo, cache, "backup", "--json", *extra, *paths)
        summary: dict[str, Any] = {}
        for line in result.stdout.splitlines():
            if '"summary"' in line:
                summary = _scalars(json.loads(line))
        return result, summary

    # -- one repetition

    def repetition(self, rep: int) -> None:
        """All selected steps once, on fresh stores; tool order alternates between reps."""
        base = SCRATCH / f"rep{rep}"
        rmtree(base)
        base.mkdir(parents=True)
        if not self.key_file.exists():
            self.key_file.write_bytes(os.urandom(32))
            self.key_file.chmod(0o600)
        py = ENV / "bin" / "python"
        store, xdg = base / "store", base / "xdg-cache"
        repo, rcache = base / "restic-repo", base / "restic-cache"
        order = ["westtek", "restic"] if rep % 2 == 0 else ["restic", "westtek"]
        order = [t for t in order if t in self.tools]
        restore_order = order + (["cp"] if "cp" in self.tools else [])
        snapshot_id: str | None = None
        first_bytes: dict[str, int] = {}

        # 1. first snapshot (and 7. its peak memory); 4. stored bytes
        for tool in order:
            if tool == "westtek":
                result, info = self.westtek_create(py, WORKSPACE, store, xdg)
                snapshot_id = str(info.get("id") or "") or None
                self._record("first", "westtek", rep, result, info)
                first_bytes["westtek"] = du_bytes(store)
            else:
                run(["restic", "-r", repo, "--cache-dir", rcache, "init"], env=restic_env(),
                    timeout=300).check()  # fmt: skip
                result, info = self.restic_backup(repo, rcache, ENV, WORKSPACE)
                self._record("first", "restic", rep, result, info)
                first_bytes["restic"] = du_bytes(repo)
        for tool, size in first_bytes.items():
            sample = Sample("size", tool, rep, 0.0, 0.0, 0.0, value=float(size))
            self.samples.append(sample)
            log(f"  rep {rep} size       {tool:<18} {size / 1e6:9.1f} MB")
        if "westtek-encrypted" in self.tools and "first" in self.steps:
            estore = base / "store-encrypted"
            result, info = self.westtek_create(
                py, WORKSPACE, estore, base / "xdg-enc", encrypt=True
            )
            self._record("first", "westtek-encrypted", rep, result, info)
            sample = Sample("size", "westtek-encrypted", rep, 0, 0, 0, value=du_bytes(estore))
            self.samples.append(sample)
        if "restic-nopyc" in self.tools:
            # westtek leaves the env's .pyc files out: the same file set, for restic.
            nrepo, ncache = base / "restic-nopyc-repo", base / "restic-nopyc-cache"
            run(["restic", "-r", nrepo, "--cache-dir", ncache, "init"], env=restic_env(),
                timeout=300).check()  # fmt: skip
            result, info = self.restic_backup(nrepo, ncache, ENV, WORKSPACE, exclude="*.pyc")
            self._record("first", "restic-nopyc", rep, result, info)
            sample = Sample("size", "restic-nopyc", rep, 0, 0, 0, value=du_bytes(nrepo))
            self.samples.append(sample)
            if "restore" in self.steps:
                target = base / "restore-restic-nopyc"
                result = self.restic(nrepo, ncache, "restore", "latest", "--target", target)
                files, size = tree_stats(target)
                info = {"restored_files": files, "restored_bytes": size}
                self._record("restore", "restic-nopyc", rep, result, info)

        # 2. unchanged re-snapshot
        if "unchanged" in self.steps:
            for tool in order:
                if tool == "westtek":
                    result, info = self.westtek_create(py, WORKSPACE, store, xdg)
                    self._record("unchanged", "westtek", rep, result, info)
                else:
                    result, info = self.restic_backup(repo, rcache, ENV, WORKSPACE)
                    self._record("unchanged", "restic", rep, result, info)

        # 5. full restore
        if "restore" in self.steps:
            for tool in restore_order:
                target = base / f"restore-{tool}"
                if tool == "westtek" and snapshot_id:
                    result = self._timed(
                        [WESTTEK, "snapshot", "restore", snapshot_id, "--to", target,
                         "--store", store, "--no-validate", "--json"],
                        westtek_env(xdg),
                    )  # fmt: skip
                    info = _scalars(_json_tail(result.stdout))
                elif tool == "restic":
                    result = self.restic(repo, rcache, "restore", "latest", "--target", target)
                    info = {}
                elif tool == "cp":
                    # The floor: creating the same files with cp -a (no store involved).
                    target.mkdir()
                    result = self._timed(["cp", "-a", ENV, WORKSPACE, target], os.environ.copy())
                    info = {}
                else:
                    continue
                files, size = tree_stats(target)
                info.update(restored_files=files, restored_bytes=size)
                self._record("restore", tool, rep, result, info)
                # deleted with the whole repetition: deleting now slows the next restore

        # 3. 1% of the data changed and one package upgraded
        if "changed" in self.steps:
            with changed_tree():
                for tool in order:
                    if tool == "westtek":
                        result, info = self.westtek_create(py, WORKSPACE, store, xdg)
                        self._record("changed", "westtek", rep, result, info)
                    else:
                        result, info = self.restic_backup(repo, rcache, ENV, WORKSPACE)
                        self._record("changed", "restic", rep, result, info)

        # 3b. one small package installed with pip, against a snapshot of the env just before
        if "pip" in self.steps:
            self.pip_install_step(rep, order, store, xdg, repo, rcache)

        # 8. cold `westtek kb search` and `westtek drift` on the tree
        if "cold" in self.steps and "westtek" in self.tools and snapshot_id:
            self.cold_step(rep, base, store, xdg, snapshot_id)

        # 6. a second near-identical env into the same store
        if "second-env" in self.steps:
            empty = base / "empty-root"
            empty.mkdir()
            for tool in order:
                if tool == "westtek":
                    before = du_bytes(store)
                    result, info = self.westtek_create(ENV2 / "bin" / "python", empty, store, xdg)
                    added = du_bytes(store) - before
                    ref = first_bytes["westtek"]
                else:
                    before = du_bytes(repo)
                    result, info = self.restic_backup(repo, rcache, ENV2)
                    added = du_bytes(repo) - before
                    ref = first_bytes["restic"]
                info.update(added_bytes=added, first_bytes=ref)
                sample = self._record("second-env", tool, rep, result, info)
                sample.value = round(100.0 * added / ref, 3)
                log(f"  rep {rep} second-env {tool:<18} +{added / 1e6:.1f} MB ({sample.value}%)")
        if not self.keep_trees:
            log("  deleting this repetition's trees (low disk): the next one waits 300 s")
            rmtree(base)

    def pip_install_step(
        self, rep: int, order: list[str], store: Path, xdg: Path, repo: Path, rcache: Path
    ) -> None:
        """Snapshot after ``pip install`` of one small wheel, then uninstall it.

        Both tools first take an untimed snapshot of the env as it is, so the timed one
        follows exactly one install whatever steps ran before.
        """
        py = ENV / "bin" / "python"
        for tool in order:
            if tool == "westtek":
                self.westtek_create(py, WORKSPACE, store, xdg)
            else:
                self.restic_backup(repo, rcache, ENV, WORKSPACE)
        _offline_pip(f"{EXTRA_PKG}=={EXTRA_VERSION}")
        try:
            for tool in order:
                if tool == "westtek":
                    result, info = self.westtek_create(py, WORKSPACE, store, xdg)
                else:
                    result, info = self.restic_backup(repo, rcache, ENV, WORKSPACE)
                self._record("pip", tool, rep, result, info)
        finally:
            run([py, "-m", "pip", "--disable-pip-version-check", "uninstall", "--yes",
                 "--quiet", EXTRA_PKG], timeout=600).check()  # fmt: skip

    def cold_step(self, rep: int, base: Path, store: Path, xdg: Path, snapshot_id: str) -> None:
        """``westtek kb search`` and ``westtek drift`` as fresh processes, warm caches.

        The knowledge base is the workspace's, ingested untimed; drift compares the env
        with the step-1 snapshot (STABLE). One untimed run of each first fills the on-disk
        caches (notebook analyses, probe); its time is kept in ``info`` as the first run's.
        """
        env = westtek_env(xdg)
        index = base / "kb.sqlite"
        self._timed([WESTTEK, "kb", "ingest", WORKSPACE, "--index", index, "--json"], env)
        commands = {
            "kb-search": [WESTTEK, "kb", "search", KB_QUERY, "--index", index, "--json"],
            "drift": [WESTTEK, "drift", "--python", ENV / "bin" / "python", "--root",
                      WORKSPACE, "--store", store, "--baseline", snapshot_id, "--json"],
        }  # fmt: skip
        for name, argv in commands.items():
            first = self._timed(argv, env)
            for _ in range(COLD_RUNS):
                result = self._timed(argv, env)
                doc = _json_tail(result.stdout)
                info: dict[str, Any] = {"first_run_seconds": round(first.seconds, 3)}
                if name == "drift" and isinstance(doc, dict):
                    info.update(status=doc.get("status"), changes=len(doc.get("changes", [])))
                elif isinstance(doc, dict):
                    info["results"] = len(doc.get("results", []))
                self._record("cold", f"westtek-{name}", rep, result, info)


class changed_tree:  # noqa: N801 - used like a function
    """Context: 1% of the data bytes rewritten and the small package upgraded; then undone."""

    def __enter__(self) -> None:
        total = sum(p.stat().st_size for p in DATA.iterdir() if p.is_file())
        self.per_file = total // 100 // 2
        self.saved: list[tuple[Path, int, bytes, os.stat_result]] = []
        for path, transform in (
            (DATA / "measurements_1.csv", _rewrite_digits),
            (DATA / "random_0.bin", _rewrite_random),
        ):
            st = path.stat()
            offset = (st.st_size - self.per_file) // 2
            with path.open("r+b") as f:
                f.seek(offset)
                original = f.read(self.per_file)
                f.seek(offset)
                f.write(transform(original))
            self.saved.append((path, offset, original, st))
        _offline_pip(f"{UPGRADE_PKG}=={NEW_VERSION}")
        log(f"  changed {2 * self.per_file / 1e6:.2f} MB of data, {UPGRADE_PKG} -> {NEW_VERSION}")

    def __exit__(self, *exc: object) -> None:
        for path, offset, original, st in self.saved:
            with path.open("r+b") as f:
                f.seek(offset)
                f.write(original)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        _offline_pip(f"{UPGRADE_PKG}=={OLD_VERSION}")


def _rewrite_digits(data: bytes) -> bytes:
    """Same length, still CSV-shaped: every digit shifted by one."""
    return data.translate(bytes.maketrans(b"0123456789", b"1234567890"))


def _rewrite_random(data: bytes) -> bytes:
    return bytes(b ^ 0x5A for b in data)


def _offline_pip(spec: str) -> None:
    run([ENV / "bin" / "python", "-m", "pip", "--disable-pip-version-check", "install",
         "--quiet", "--no-index", "--find-links", WHEELS, spec], timeout=600).check()  # fmt: skip


# --------------------------------------------------------------------------- report


def _summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def summarize(samples: Sequence[Sample]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per step and tool: seconds, CPU, RSS (and value) as median/min/max."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    keys = sorted({(s.step, s.tool) for s in samples})
    for step, tool in keys:
        group = [s for s in samples if s.step == step and s.tool == tool]
        entry: dict[str, Any] = {
            "seconds": _summary([s.seconds for s in group]),
            "cpu_seconds": _summary([s.cpu_seconds for s in group]),
            "max_rss_mib": _summary([s.max_rss_mib for s in group]),
        }
        values = [s.value for s in group if s.value is not None]
        if values:
            entry["value"] = _summary(values)
        out.setdefault(step, {})[tool] = entry
    return out


def machine_facts() -> dict[str, Any]:
    """nproc, RAM, CPU, disk and tool versions."""
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    cpu = cpu_model()
    mount = subprocess.run(["findmnt", "-no", "SOURCE,FSTYPE", "--target", str(CACHE)],
                           capture_output=True, text=True, timeout=30)  # fmt: skip
    usage = shutil.disk_usage(CACHE)

    def version(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unavailable ({exc})"
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0] if text else f"exit {out.returncode}"

    head = subprocess.run(["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    return {
        "nproc": os.cpu_count(),
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "cpu": cpu,
        "disk": f"{mount.stdout.strip()} ({usage.total / 1e9:.0f} GB, "
        f"{usage.free / 1e9:.0f} GB free)",
        "kernel": platform.release(),
        "os": _os_release(),
        "python": platform.python_version(),
        "restic": version(["restic", "version"]),
        "westtek": version([str(WESTTEK), "--version"]),
        "git": head.stdout.strip(),
        "network": "none during measurements (unshare --net, loopback only)"
        if netns_available()
        else "not isolated (unshare --net unavailable); no command uses the network",
    }


def westtek_source_digest() -> str:
    """A digest of westtek_core's sources, to notice code changing in the middle of a run."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "westtek_core").rglob("*.py")):
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _os_release() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return platform.platform()
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)', text, re.M)
    return match.group(1) if match else platform.platform()


def _fmt_range(stat: dict[str, float], scale: float = 1.0, digits: int = 2) -> str:
    m, lo, hi = (stat[k] / scale for k in ("median", "min", "max"))
    return f"{m:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def _cell(
    entry: dict[str, Any] | None, key: str, scale: float, digits: int, suffix: str = ""
) -> str:
    if not entry or key not in entry:
        return "—"
    return _fmt_range(entry[key], scale, digits) + suffix


def _verdict(kind: str, limit: float, actual: float | None) -> str:
    if actual is None:
        return "—"
    if kind == "ratio":
        if actual <= limit:
            return f"met (≤ {limit:g}×)"
        over = 100 * (actual / limit - 1)
        return f"**missed** by {over:.{0 if over >= 10 else 1}f}% (≤ {limit:g}× wanted)"
    if kind == "seconds":
        if actual <= limit:
            return f"met (≤ {limit:g} s)"
        over = 100 * (actual / limit - 1)
        return f"**missed** by {over:.{0 if over >= 10 else 1}f}% (≤ {limit:g} s wanted)"
    if actual < limit:
        return f"met (< {limit:g}%)"
    return f"**missed** by {actual - limit:.1f} points (< {limit:g}% wanted)"


ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("first", "westtek", "restic", "1. first snapshot (s)"),
    ("first", "westtek-encrypted", "restic", "1b. first snapshot, `--encrypt` (s)"),
    ("first", "westtek", "restic-nopyc", "1c. first snapshot vs restic without `*.pyc` (s)"),
    ("unchanged", "westtek", "restic", "2. re-snapshot, nothing changed (s)"),
    ("changed", "westtek", "restic", "3. 1% of data changed + one package upgraded (s)"),
    ("pip", "westtek", "restic", "3b. re-snapshot after `pip install` of one small package (s)"),
    ("size", "westtek", "restic", "4. stored bytes after step 1 (MB)"),
    ("size", "westtek-encrypted", "restic", "4b. stored bytes after step 1b (MB)"),
    ("size", "westtek", "restic-nopyc", "4c. stored bytes vs restic without `*.pyc` (MB)"),
    ("restore", "westtek", "restic", "5. full restore (s)"),
    ("restore", "westtek", "restic-nopyc", "5c. full restore vs restic without `*.pyc` (s)"),
    ("restore", "westtek", "cp", "5d. full restore vs `cp -a` of the tree, the floor (s)"),
    ("second-env", "westtek", "restic", "6. second near-identical env: bytes added (% of 4)"),
    ("memory", "westtek", "restic", "7. peak RSS of the first snapshot (MiB)"),
    ("cold", "westtek-kb-search", "", "8. `westtek kb search`, cold process (s)"),
    ("cold", "westtek-drift", "", "9. `westtek drift`, cold process (s)"),
)


def render_table(summary: dict[str, dict[str, dict[str, Any]]], meta: dict[str, Any]) -> str:
    """The markdown block written between the README markers."""
    lines = [
        f"Latest run: {meta['finished']}, {meta['reps']} repetition(s) per step, warm page "
        "cache (dropping OS caches is not possible here). Cells: median (min–max).",
        *(
            [
                "",
                "Load average (1 min) at the start and the end of the run: "
                + " → ".join(f"{x:.1f}" for x in meta["load_average_1min"])
                + f" on {meta['machine']['nproc']} cores (other jobs share this machine).",
            ]
            if meta.get("load_average_1min")
            else []
        ),
        "",
        "| step | westtek | restic (or as the step says) | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for step, tool, other, label in ROWS:
        if step == "memory":
            src = summary.get("first", {})
            ours, theirs = src.get(tool), src.get(other)
            if not ours and not theirs:
                continue
            ratio = (
                ours["max_rss_mib"]["median"] / theirs["max_rss_mib"]["median"]
                if ours and theirs
                else None
            )
            kind, limit = TARGETS["memory"]
            lines.append(
                f"| {label} | {_cell(ours, 'max_rss_mib', 1, 0)} | "
                f"{_cell(theirs, 'max_rss_mib', 1, 0)} | "
                f"{f'{ratio:.2f}×' if ratio else '—'} | {_verdict(kind, limit, ratio)} |"
            )
            continue
        if step == "cold":
            ours = summary.get("cold", {}).get(tool)
            if ours:
                kind, limit = TARGETS["cold"]
                verdict = _verdict(kind, limit, ours["seconds"]["median"])
                lines.append(f"| {label} | {_cell(ours, 'seconds', 1, 2)} | — | — | {verdict} |")
            continue
        src = summary.get(step, {})
        ours, theirs = src.get(tool), src.get(other)
        if not ours or not theirs:
            continue
        key, scale, digits = "seconds", 1.0, 2
        if step == "size":
            key, scale, digits = "value", 1e6, 1
        elif step == "second-env":
            key, scale, digits = "value", 1.0, 2
        ratio = None
        if ours and theirs and key in ours and key in theirs and theirs[key]["median"]:
            ratio = ours[key]["median"] / theirs[key]["median"]
        target = "—"
        if tool == "westtek" and step in TARGETS and other.startswith("restic"):
            kind, limit = TARGETS[step]
            actual = ours[key]["median"] if kind == "percent" and ours else ratio
            target = _verdict(kind, limit, actual)
            if other != "restic":
                target = f"like-for-like: {target}"
        suffix = "%" if step == "second-env" else ""
        lines.append(
            f"| {label} | {_cell(ours, key, scale, digits, suffix)} | "
            f"{_cell(theirs, key, scale, digits, suffix)} | "
            f"{f'{ratio:.2f}×' if ratio is not None else '—'} | {target} |"
        )
    for step, what, digits in (
        ("first", "the first snapshot", 1),
        ("unchanged", "the unchanged re-snapshot", 2),
        ("pip", "the re-snapshot after `pip install`", 2),
        ("cold", "the cold commands", 2),
    ):
        if cpu := summary.get(step, {}):
            parts = [f"{t} {e['cpu_seconds']['median']:.{digits}f}" for t, e in sorted(cpu.items())]
            lines += ["", f"CPU seconds (user+sys, median) of {what}: " + ", ".join(parts)]
    m = meta["machine"]
    t = meta.get("tree", {})
    lines += [
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, disk {m['disk']}; "
        f"{m['os']}, kernel {m['kernel']}, Python {m['python']}; {m['restic']}; "
        f"{m['westtek']} (git {m['git']}, sources {meta.get('westtek_sources', '?')}). "
        f"Network: {m['network']}.",
    ]
    if t:
        env, ws = t["env"], t["workspace"]
        lines += [
            "",
            f"Tree: env {env['files']} files, {env['bytes'] / 1e6:.0f} MB "
            f"({len(t['packages'])} distributions); workspace {ws['files']} files, "
            f"{ws['bytes'] / 1e6:.0f} MB ({t['notebook_count']} notebooks from "
            f"{t['notebook_source']}; {t['data']['bytes'] / 1e6:.0f} MB of seeded data in "
            f"{t['data']['files']} files).",
        ]
    if meta.get("errors"):
        lines += ["", "Errors in this run:", ""] + [f"- `{e}`" for e in meta["errors"]]
    return "\n".join(lines)


README_TEMPLATE = f"""# Benchmarks

## snapshot_vs_restic

`snapshot_vs_restic.py` compares `westtek snapshot` with restic (Debian's 0.14) side by side,
in the same run, on the same tree: a ~700 MB venv with numpy, pandas, scipy, matplotlib,
scikit-learn, statsmodels, jupyterlab and ipykernel (≈30k files, 8k+ `.pyc`) and a workspace
with the 81 real example notebooks of the statsmodels 0.15.0 sdist plus ~200 MB of seeded
data (four CSV files, partly compressible `.npy`/`.bin` files, incompressible random bytes).

What it measures (each step repeated `--reps` times, median and min–max reported):

1. **first snapshot**: `westtek snapshot create --python <env>/bin/python --root <workspace>
   --store <fresh dir> --json` with a fresh stat cache (`XDG_CACHE_HOME`), against
   `restic backup <env> <workspace>` into a fresh repository with a fresh `--cache-dir`
   (`restic init` not timed). restic always encrypts, so `westtek ... --encrypt --key-file`
   is timed as an extra row.
2. **unchanged re-snapshot**: the same again into the same store/repository, warm caches.
3. **1% changed**: 1% of the data bytes rewritten in place (a slice of one CSV, a slice of
   one random binary) and `six` upgraded offline (`pip install --no-index --find-links
   bench/.cache/wheels six==1.17.0`); both undone after the step so repetitions match.
3b. **one `pip install`**: both tools first snapshot the env as it is (untimed), then
   `tabulate` is installed offline (`pip install --no-index --find-links bench/.cache/wheels
   tabulate==0.9.0`, one small pure-Python wheel), both snapshot again (timed), and it is
   uninstalled after the step so repetitions match.
4. **stored bytes** after step 1: `du -sb` of the store against the restic repository.
5. **full restore** of the first snapshot: `westtek snapshot restore <id> --to <fresh dir>
   --no-validate --json` against `restic restore latest --target <fresh dir>` (latest is
   the step-2 snapshot, identical in content).
6. **second near-identical env**: a `cp -a` copy of the env with one extra small wheel
   (`tabulate`) snapshotted into the step-1 store with an empty `--root`; the bytes it adds,
   as a percentage of step 4's bytes (the same for restic, backing up the copy).
7. **peak memory**: maximum RSS of the process (`os.wait4`) for the first snapshot.
   Child processes are counted only as the largest single one, not summed.
8. **cold `westtek kb search`** and 9. **cold `westtek drift`**: fresh processes, as a
   researcher runs them in a terminal, on the benchmark tree: `kb search` over an index of
   the workspace (ingested untimed), `drift` of the env and workspace against the step-1
   snapshot (STABLE). One untimed run of each first fills the on-disk caches (notebook
   analyses, interpreter probe), then five timed runs per repetition; no restic counterpart.

westtek leaves a venv's `.pyc` files out of a snapshot (~190 MB and ~8.9k of the env's ~29.6k
files here), restic stores them. So rows 1c, 4c and 5c also compare against restic with
`--exclude '*.pyc'` (same file set as westtek), and row 5d against `cp -a` of the tree, which
is the floor for any restore on this disk (file creation dominates: mostly kernel time).
Targets apply to the rows against plain restic; the like-for-like rows are for reading them.

Each command runs in its own subprocess with a timeout, inside a fresh network namespace
with only loopback up (`unshare --net`, when the machine allows it). Page caches are warm:
dropping them is not possible here. Tool order alternates between repetitions. Before each
measured command the script flushes (`sync`) and waits until the disk is idle. It deletes
nothing between measured commands (stores, repositories and restored trees are removed at
the end of the run, ~13 GB for 3 repetitions): on this disk, creating files within a few
minutes of an `rm -rf` of a 30k-file tree costs 3-4x more kernel time (`cp -a` of the env:
5.7 s with no deletion before it, 13-16 s 40-120 s after one, 5.4 s after 300 s). Leftovers
of an interrupted run are deleted first, followed by a 300 s wait; don't start a run within
~5 minutes of deleting a big tree yourself. Restore times stay the noisiest rows: on this
disk (ext4 without a journal, mounted `discard`) file creation is mostly kernel time, the
same for every tool.

## How to run

```
.venv/bin/python bench/snapshot_vs_restic.py            # build the tree if needed, 3 reps
.venv/bin/python bench/snapshot_vs_restic.py --reps 5 --skip-build
.venv/bin/python bench/snapshot_vs_restic.py --only unchanged --tools westtek,restic
.venv/bin/python bench/snapshot_vs_restic.py --build-only     # only build bench/.cache
.venv/bin/python bench/snapshot_vs_restic.py --render-only    # the table again, from the JSON
```

The first run builds `bench/.cache/` (needs PyPI; about 1 GB on disk, a few minutes) and
reuses it afterwards; `--skip-build` refuses to build. restic must be on `PATH`
(`apt-get install -y restic`). Raw timings go to `bench/results/snapshot_vs_restic.json`;
the table below is rewritten by every full run.

## Latest results

{MARK_START}
(no run yet)
{MARK_END}
"""


def write_readme(block: str) -> None:
    """Replace the text between the markers in bench/README.md (created if missing)."""
    text = README.read_text() if README.exists() else README_TEMPLATE
    if MARK_START not in text or MARK_END not in text:
        text = text.rstrip() + f"\n\n{MARK_START}\n{MARK_END}\n"
    head, rest = text.split(MARK_START, 1)
    _, tail = rest.split(MARK_END, 1)
    README.write_text(f"{head}{MARK_START}\n{block}\n{MARK_END}{tail}")


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=3, help="repetitions per step (default 3)")
    parser.add_argument("--skip-build", action="store_true", help="fail if the tree is missing")
    parser.add_argument(
        "--only",
        choices=STEPS,
        action="append",
        help="run only this step (repeatable; the first snapshot always runs as its basis)",
    )
    parser.add_argument(
        "--tools",
        default=",".join(TOOLS),
        help=f"comma-separated subset of {','.join(TOOLS)} (default: all)",
    )
    parser.add_argument("--build-only", action="store_true", help="build the tree and stop")
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds per measured command (1800)"
    )
    parser.add_argument(
        "--no-readme", action="store_true", help="don't rewrite the table in bench/README.md"
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help=f"write the table again from {RESULTS.relative_to(REPO_ROOT)}, measuring nothing",
    )
    parser.add_argument("--generate-data", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Build the tree if needed, run the selected steps, write the JSON and the table."""
    args = parse_args(argv)
    if args.generate_data:
        generate_data(args.generate_data)
        return 0
    if args.render_only:
        saved = json.loads(RESULTS.read_text())
        table = render_table(saved["summary"], saved["meta"])
        print(table)
        if not args.no_readme:
            write_readme(table)
        return 0
    tools = {t.strip() for t in args.tools.split(",") if t.strip()}
    if not tools <= set(TOOLS):
        raise SystemExit(f"--tools: unknown {sorted(tools - set(TOOLS))}")
    if "restic" in tools and shutil.which("restic") is None:
        raise SystemExit("restic is not on PATH: apt-get install -y restic")
    build_start = time.perf_counter()
    facts = build_tree(skip_build=args.skip_build)
    log(f"tree ready in {time.perf_counter() - build_start:.1f} s")
    if args.build_only:
        return 0
    steps = set(args.only or STEPS)
    steps.add("first")
    # westtek runs with its modules' bytecode cached, as an installed CLI would.
    subprocess.run(
        [str(WESTTEK.parent / "python"), "-m", "compileall", "-q", str(REPO_ROOT / "westtek_core")],
        check=False,
        timeout=300,
    )
    SCRATCH.mkdir(parents=True, exist_ok=True)
    leftovers = sorted(SCRATCH.glob("rep*"))
    for path in leftovers:
        rmtree(path)
    bench = Bench(steps, tools, args.timeout)
    if leftovers:
        log("deleted the leftovers of an earlier run: waiting 300 s before measuring")
        mark_deleted_now()
    free = shutil.disk_usage(SCRATCH).free
    bench.keep_trees = free > (args.reps * 6 + 5) * 1e9
    started = datetime.now(timezone.utc)
    load_before = os.getloadavg()[0]
    source_before = westtek_source_digest()
    for rep in range(args.reps):
        log(f"repetition {rep + 1}/{args.reps}")
        try:
            bench.repetition(rep)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            message = str(exc).strip().replace("\n", " | ")[:600]
            log(f"  FAILED: {message}")
            bench.errors.append(message)
            break
    source_after = westtek_source_digest()
    if source_after != source_before:
        bench.errors.append(
            f"westtek_core's sources changed during the run ({source_before} -> {source_after}):"
            " the repetitions measured different code; run again"
        )
        log(f"  WARNING: {bench.errors[-1]}")
    # Deleted now, not between measured commands; a run started soon after this one waits.
    for path in sorted(SCRATCH.glob("rep*")):
        rmtree(path)
    summary = summarize(bench.samples)
    meta: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        # the machine is shared: other work's load moves every time here
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "reps": args.reps,
        "steps": sorted(steps),
        "tools": sorted(tools),
        "machine": machine_facts(),
        "tree": facts.get("facts", {}),
        "build_seconds": facts.get("build_seconds", {}),
        "westtek_sources": source_after,
        "errors": bench.errors,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"meta": meta, "summary": summary, "samples": [asdict(s) for s in bench.samples]},
            indent=2,
        )
    )
    log(f"raw timings: {RESULTS}")
    table = render_table(summary, meta)
    print(table)
    if not args.no_readme:
        write_readme(table)
        log(f"table written to {README}")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
