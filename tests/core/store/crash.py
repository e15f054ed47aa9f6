"""The kill -9 experiment of the reliability suite, shared by its test and bench/soak.py.

Each *moment*: the workspace gains fresh data, ``westtek snapshot create`` starts in its
own process and is SIGKILLed after a random delay (drawn over the length of a whole run);
then ``westtek snapshot verify --all`` must pass, the newest earlier snapshot must restore
byte for byte, and a re-run must complete. At the end every snapshot restores.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.core.stress import Lab, init_store, tree_digest


@dataclass
class CrashRun:
    """What the moments did: outcomes counted, checks timed."""

    moments: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    delays: list[float] = field(default_factory=list)
    snapshots: int = 0
    leftover_partials: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Figures for bench/soak.py's table."""
        return {
            "moments": self.moments,
            "outcomes": dict(self.outcomes),
            "delay_s": [round(min(self.delays), 3), round(max(self.delays), 3)]
            if self.delays
            else [],
            "snapshots": self.snapshots,
            "leftover_partials": self.leftover_partials,
            "seconds": round(self.seconds, 1),
        }


def westtek(*argv: str) -> tuple[int, str, str]:
    """``westtek ARGV`` in this process (the CLI's own entry point): code, stdout, stderr."""
    from westtek_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _listing(store: str) -> dict[str, tuple[str, str]]:
    """Snapshot id → (timestamp, note), for every snapshot in the store."""
    code, out, err = westtek("snapshot", "list", "--store", store, "--json")
    assert code == 0, err
    rows = json.loads(out)["snapshots"]
    return {row["id"]: (str(row["timestamp"]), row["notes"]) for row in rows}


def _restore_and_compare(lab: Lab, store: str, snapshot_id: str, expected: dict[str, str]) -> None:
    target = lab.root / f"restored-{snapshot_id[:12]}"
    code, _, err = westtek(
        "snapshot", "restore", snapshot_id, "--to", str(target), "--store", store,
        "--no-validate", "--json",
    )  # fmt: skip
    assert code == 0, (snapshot_id, err)
    assert tree_digest(target / "workspace") == expected, f"{snapshot_id} restored differently"
    shutil.rmtree(target)


def _stage(lab: Lab, step: int, fresh_mib: int) -> None:
    """Replace the previous step's fresh data with new incompressible bytes."""
    rng = random.Random(step)
    for old in lab.workspace.glob("data/fresh-*.bin"):
        old.unlink()
    (lab.workspace / "data" / f"fresh-{step:03d}.bin").write_bytes(rng.randbytes(fresh_mib << 20))
    (lab.workspace / "notes" / f"step-{step:03d}.txt").write_text(f"step {step}\n")


def run_crash_moments(
    lab: Lab, store: str, moments: int, *, seed: int = 7, fresh_mib: int = 4
) -> CrashRun:
    """Kill ``snapshot create`` at ``moments`` random moments; check the store after each."""
    started = time.monotonic()
    init_store(store, pack_size=512 << 10)
    rng = random.Random(seed)
    run = CrashRun(moments=moments)
    states: dict[str, dict[str, str]] = {}  # note → workspace digest when it was taken

    # a whole run first: how long one lasts, and the first "earlier snapshot"
    _stage(lab, 0, fresh_mib)
    states["base"] = tree_digest(lab.workspace)
    process = lab.spawn_create(store, "--note", "base")
    process_started(process, store)
    writing_after = _wait_for_writer(store, process)
    whole, errors = _wait(process)
    assert process.returncode == 0, errors
    window = max(0.05, whole - writing_after)

    for step in range(1, moments + 1):
        _stage(lab, step, fresh_mib)
        note = f"killed-{step}"
        states[note] = states[f"rerun-{step}"] = tree_digest(lab.workspace)
        before = set(_listing(store))
        packs_before = _files(store, "data") | _files(store, "tmp")
        process = lab.spawn_create(store, "--note", note)
        process_started(process, store)
        if step % 3 == 0:  # a moment anywhere in the run, start-up and capture included
            delay = rng.uniform(0.0, whole)
            time.sleep(delay)
        else:  # a moment once the writer has begun to write packs: packs, index, commit
            _wait_for_writer(store, process)
            delay = _wait_for_new_files(store, process, packs_before)
            delay += rng.uniform(0.0, 0.4 * window)
            time.sleep(max(0.0, delay - (time.monotonic() - process_started(process))))
        run.delays.append(delay)
        finished_first = process.poll() is not None
        if not finished_first:
            os.kill(process.pid, signal.SIGKILL)
        process.communicate()
        listing = _listing(store)
        committed = set(listing) - before
        if finished_first:
            run.outcomes["finished before the kill"] += 1
        elif committed:
            run.outcomes["killed after the commit"] += 1
        elif (_files(store, "data") | _files(store, "tmp")) - packs_before:
            run.outcomes["killed while writing"] += 1
        else:
            run.outcomes["killed before any pack was written"] += 1

        # then the whole store verifies…
        code, out, err = westtek("snapshot", "verify", "--all", "--store", store, "--json")
        report = json.loads(out or "{}")
        assert code == 0 and report.get("ok"), (step, err, report)
        # …the newest earlier snapshot restores byte for byte…
        newest = max(before, key=lambda sid: listing[sid][0])
        _restore_and_compare(lab, store, newest, states[listing[newest][1]])
        # …and a re-run completes.
        rerun = lab.spawn_create(store, "--note", f"rerun-{step}")
        process_started(rerun, store)
        writing_after = _wait_for_writer(store, rerun)
        took, errors = _wait(rerun)
        assert rerun.returncode == 0, (step, errors)
        window = max(0.02, took - writing_after)  # the next run writes as much

    listing = _listing(store)
    for sid, (_, note) in listing.items():
        _restore_and_compare(lab, store, sid, states[note])
    run.snapshots = len(listing)
    run.leftover_partials = len(_files(store, "tmp"))
    run.seconds = time.monotonic() - started
    return run


_STARTED: dict[int, float] = {}


_LOCKS_AT_SPAWN: dict[int, set[Path]] = {}


def process_started(process: subprocess.Popen[str], store: str | None = None) -> float:
    """When ``process`` was spawned (monotonic); first called right after spawning it.

    The locks already in ``store`` then (a killed writer's stay) are not its own.
    """
    if store is not None and Path(store, "locks").is_dir():
        _LOCKS_AT_SPAWN[process.pid] = set(Path(store, "locks").iterdir())
    return _STARTED.setdefault(process.pid, time.monotonic())


def _wait_for_writer(store: str, process: subprocess.Popen[str]) -> float:
    """Seconds from spawning ``process`` until a writer lock appears (or it exits)."""
    began = process_started(process)
    locks = Path(store, "locks")
    stale = _LOCKS_AT_SPAWN.get(process.pid, set())
    while process.poll() is None:
        if locks.is_dir() and set(locks.iterdir()) - stale:
            break
        time.sleep(0.002)
    return time.monotonic() - began


def _wait_for_new_files(store: str, process: subprocess.Popen[str], known: set[Path]) -> float:
    """Seconds from spawning ``process`` until it has a pack (or partial one) on disk."""
    began = process_started(process)
    while process.poll() is None:
        if (_files(store, "data") | _files(store, "tmp")) - known:
            break
        time.sleep(0.002)
    return time.monotonic() - began


def _wait(process: subprocess.Popen[str]) -> tuple[float, str]:
    _, errors = process.communicate()
    return time.monotonic() - process_started(process), errors


def _files(store: str, folder: str) -> set[Path]:
    return {p for p in Path(store, folder).rglob("*") if p.is_file()}
