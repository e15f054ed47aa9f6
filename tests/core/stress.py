"""Helpers for the reliability suite (crash, corruption, load), shared with bench/soak.py.

A *lab* here is a small, real environment that snapshots in about a second: a venv made
without pip (so capture probes a real interpreter), a private Jupyter config/data dir, and
a workspace with a notebook, many small files and some incompressible data, so that a
``westtek snapshot create`` spends most of its time chunking and writing packs.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Lab:
    """Where one test environment lives."""

    root: Path
    python: Path
    workspace: Path
    env: dict[str, str]

    def cli(self, *argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run ``westtek ARGV`` in a subprocess with this lab's environment."""
        return subprocess.run(
            [sys.executable, "-m", "westtek_core.cli", *argv],
            env=self.env,
            cwd=self.workspace,
            capture_output=True,
            text=True,
            timeout=kwargs.pop("timeout", 300),
            **kwargs,
        )

    def create_args(self, store: str, *extra: str) -> list[str]:
        """``snapshot create`` of this lab into ``store`` (as ``--json``)."""
        return [
            "snapshot",
            "create",
            "--python",
            str(self.python),
            "--root",
            str(self.workspace),
            "--store",
            store,
            "--json",
            *extra,
        ]

    def spawn_create(self, store: str, *extra: str) -> subprocess.Popen[str]:
        """Start ``westtek snapshot create`` in the background."""
        return subprocess.Popen(
            [sys.executable, "-m", "westtek_core.cli", *self.create_args(store, *extra)],
            env=self.env,
            cwd=self.workspace,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def make_lab(root: Path, *, data_mib: int = 8, small_files: int = 200, seed: int = 0) -> Lab:
    """Create a lab below ``root``: a pip-less venv, Jupyter dirs and a workspace."""
    root.mkdir(parents=True, exist_ok=True)
    venv = root / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    workspace = root / "workspace"
    fill_workspace(workspace, data_mib=data_mib, small_files=small_files, seed=seed)
    env = lab_environment(root)
    return Lab(root=root, python=venv / "bin" / "python", workspace=workspace, env=env)


def lab_environment(root: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Process environment confining West Tek's and Jupyter's state to ``root``."""
    env = dict(base if base is not None else os.environ)
    for name in ("WESTTEK_STORE", "WESTTEK_KEY_FILE", "VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(name, None)
    dirs = {
        "HOME": root / "home",
        "XDG_DATA_HOME": root / "data-home",
        "XDG_CACHE_HOME": root / "cache-home",
        "XDG_CONFIG_HOME": root / "config-home",
        "JUPYTER_CONFIG_DIR": root / "jupyter-config",
        "JUPYTER_DATA_DIR": root / "jupyter-data",
        "JUPYTER_RUNTIME_DIR": root / "jupyter-runtime",
    }
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env["JUPYTER_PATH"] = env["JUPYTER_DATA_DIR"]
    env["JUPYTER_CONFIG_PATH"] = env["JUPYTER_CONFIG_DIR"]
    env["JUPYTER_PREFER_ENV_PATH"] = "0"
    env["JUPYTER_PLATFORM_DIRS"] = "0"
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["WESTTEK_ENVIRONMENT_ID"] = f"lab-{root.name}"
    return env


NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": "import json\nrows = open('data/part-000.bin', 'rb').read()\n",
        }
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def fill_workspace(workspace: Path, *, data_mib: int, small_files: int, seed: int) -> None:
    """A notebook, ``small_files`` text files and ``data_mib`` MiB of random data."""
    rng = random.Random(seed)
    (workspace / "data").mkdir(parents=True, exist_ok=True)
    (workspace / "notes").mkdir(exist_ok=True)
    (workspace / "analysis.ipynb").write_text(json.dumps(NOTEBOOK))
    for index in range(small_files):
        words = " ".join(f"w{rng.randrange(3000)}" for _ in range(rng.randrange(20, 400)))
        (workspace / "notes" / f"note-{index:04d}.txt").write_text(words)
    for index in range(data_mib):
        (workspace / "data" / f"part-{index:03d}.bin").write_bytes(rng.randbytes(1 << 20))


def mutate_workspace(workspace: Path, step: int) -> None:
    """Change the workspace a little, so that each snapshot differs from the last."""
    rng = random.Random(1000 + step)
    (workspace / "notes" / f"step-{step:04d}.txt").write_text(f"step {step} {rng.random()}\n")
    data = sorted((workspace / "data").glob("*.bin"))
    if data:
        target = data[step % len(data)]
        with open(target, "r+b") as f:
            f.seek(rng.randrange(max(1, target.stat().st_size - 4096)))
            f.write(rng.randbytes(4096))


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path → SHA-256 of every regular file below ``root``."""
    found: dict[str, str] = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_file() and not path.is_symlink():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[str(path.relative_to(root))] = digest
    return found


def peak_rss_kib() -> int:
    """This process's peak resident set size so far, in KiB (Linux ``ru_maxrss``)."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def init_store(url: str, pack_size: int) -> None:
    """Create an empty store whose packs close at ``pack_size`` bytes (the config allows it).

    Small packs make a snapshot of a few MiB write many packs, so a kill lands between
    packs, or between the last pack and the commit, as it would in a large snapshot.
    """
    import secrets

    from westtek_core.store import open_backend
    from westtek_core.store.chunker import ChunkerParams
    from westtek_core.store.repository import FORMAT_VERSION, ZSTD_LEVEL

    config = {
        "format": "westtek-store",
        "version": FORMAT_VERSION,
        "id": secrets.token_hex(16),
        "created": "2026-11-20T00:00:00Z",
        "chunker": ChunkerParams().to_json(),
        "pack_size": pack_size,
        "compression": {"algorithm": "zstd", "level": ZSTD_LEVEL},
        "encryption": None,
    }
    backend = open_backend(url)
    try:
        backend.save("config", json.dumps(config, indent=2).encode() + b"\n")
    finally:
        backend.close()


@dataclass
class ConcurrentRun:
    """What :func:`run_concurrent_snapshots` saw."""

    writers: int
    failed: list[str]
    snapshot_ids: list[str]
    seconds: float
    peak_rss_mib: float  # the largest single writer process
    verify_ok: bool
    verify_seconds: float

    def to_json(self) -> dict[str, Any]:
        """Figures for bench/soak.py's table."""
        return {
            "writers": self.writers,
            "failed": len(self.failed),
            "snapshots": len(set(self.snapshot_ids)),
            "seconds": round(self.seconds, 1),
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "verify_ok": self.verify_ok,
            "verify_seconds": round(self.verify_seconds, 1),
        }


def run_concurrent_snapshots(
    root: Path, store: str, writers: int, *, data_kib: int = 512, shared_mib: int = 2
) -> ConcurrentRun:
    """Start ``writers`` ``westtek snapshot create`` processes at once into one store.

    Each snapshots its own workspace (its own data plus a file every workspace shares, so
    the writers race to store the same chunks) and the same small venv. Returns how many
    failed, the ids, wall time, the peak RSS of the largest writer and whether the store
    then verifies.
    """
    import time

    shared = random.Random(99).randbytes(shared_mib << 20)
    base = make_lab(root / "base", data_mib=0, small_files=0)
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    for index in range(writers):
        workspace = root / f"w{index:03d}"
        fill_workspace(workspace, data_mib=0, small_files=10, seed=index)
        (workspace / "data" / "shared.bin").write_bytes(shared)
        (workspace / "data" / "own.bin").write_bytes(random.Random(index).randbytes(data_kib << 10))
    began = time.monotonic()
    for index in range(writers):
        workspace = root / f"w{index:03d}"
        env = dict(base.env, WESTTEK_ENVIRONMENT_ID=f"researcher-{index:03d}")
        log = root / f"w{index:03d}.out"
        with open(log, "wb") as out:
            argv = Lab(root, base.python, workspace, env).create_args(store)
            procs.append(
                (
                    subprocess.Popen(
                        [sys.executable, "-m", "westtek_core.cli", *argv],
                        env=env,
                        cwd=workspace,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    ),
                    log,
                )
            )
    failed: list[str] = []
    ids: list[str] = []
    peak = 0
    for process, log in procs:
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        peak = max(peak, usage.ru_maxrss)
        output = log.read_text()
        if process.returncode != 0:
            failed.append(output[-500:])
        else:
            ids.append(json.loads(output.splitlines()[-1])["id"])
    seconds = time.monotonic() - began
    began = time.monotonic()
    verified = subprocess.run(
        [sys.executable, "-m", "westtek_core.cli", "snapshot", "verify", "--all",
         "--store", store, "--json"],
        env=base.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    report = json.loads(verified.stdout or "{}")
    ok = verified.returncode == 0 and bool(report.get("ok"))
    ok = ok and sorted(report.get("snapshots", [])) == sorted(set(ids))
    return ConcurrentRun(writers, failed, ids, seconds, peak / 1024, ok, time.monotonic() - began)
