"""An hour of ordinary use in the real demo: the environment stays STABLE.

Starts the demo configuration (JupyterHub, configurable-http-proxy, the West Tek hub
service, alice's local single-user server with her own kernel environment) on 127.0.0.1,
as the e2e tests do. alice snapshots her environment as the baseline, then works as a
researcher does in JupyterLab for ``--minutes``, one round every ``--interval`` seconds:
a kernel runs a cell of her notebook, the notebook is saved with its outputs, JupyterLab's
layout is autosaved, a checkpoint is made, a terminal runs a command; every tenth round
the kernel is restarted. Nothing installs, removes or configures anything.

It records, after each round, the drift grade the sidebar would show, and at the end the
drift events recorded and the CPU the server's process tree used. The claim measured is
issue 16's: a snapshot followed by an hour of ordinary use stays STABLE, with no event
above INFO and no change but her own notebook.

Writes ``bench/results/ordinary_use.json`` and the table between
``<!-- bench:ordinary_use:start -->`` and ``<!-- bench:ordinary_use:end -->`` in
bench/README.md. Not part of ``make bench`` (it takes as long as it says):

    .venv/bin/python bench/ordinary_use.py                      # an hour
    .venv/bin/python bench/ordinary_use.py --minutes 2 --no-readme
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(BENCH))

from benchlib import log, publish  # noqa: E402
from live_drift import cpu_seconds, server_tree  # noqa: E402

from tests.e2e.conftest import HubProcess  # noqa: E402
from tests.e2e.researcher import Researcher  # noqa: E402

RESULTS = BENCH / "results" / "ordinary_use.json"
MARK_BEGIN = "<!-- bench:ordinary_use:start -->"
MARK_END = "<!-- bench:ordinary_use:end -->"
SECTION = """## ordinary_use

`ordinary_use.py` snapshots alice's environment in the real demo and then uses JupyterLab
as a researcher does (cells run, notebook saved, layout autosaved, checkpoints, terminals,
kernel restarts) with no package, kernel or config change: the grade must stay STABLE."""

CELL = "import json, math\nrows = [math.sin(i / 10) for i in range(5000)]\nprint(len(rows))"


def notebook(round_: int) -> dict[str, Any]:
    """The notebook of alice as JupyterLab saves it after ``round_`` runs."""
    output = {"name": "stdout", "output_type": "stream", "text": "5000\n"}
    return {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": round_,
                "outputs": [output],
                "source": CELL,
            }
        ],  # fmt: skip
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


async def one_round(alice: Researcher, kernel: str, round_: int) -> str:
    """What a researcher's minute in JupyterLab writes; returns the kernel (maybe restarted)."""
    if round_ and round_ % 10 == 0:
        alice.request("POST", f"api/kernels/{kernel}/restart")
    assert (await alice.run_cell(kernel, CELL)).strip() == "5000"
    alice.json("PUT", "api/contents/analysis.ipynb",
               json={"type": "notebook", "content": notebook(round_)})  # fmt: skip
    layout = {"data": {"layout-restorer:data": {"round": round_}}, "metadata": {"id": "default"}}
    saved = alice.request("PUT", "lab/api/workspaces/default", json=layout)
    assert saved.ok, saved.text
    alice.json("POST", "api/contents/analysis.ipynb/checkpoints")
    await alice.run_in_terminal("ls -la > /dev/null && python -c 'import sys'")
    return kernel


async def run(minutes: float, interval: float) -> dict[str, Any]:
    """Start the demo, snapshot alice's environment, use it, grade it after each round."""
    with tempfile.TemporaryDirectory(prefix="westtek-bench-use-") as tmp:
        workdir = Path(tmp) / "hub"
        workdir.mkdir()
        hub = HubProcess(workdir)
        hub.start()
        try:
            alice = Researcher(hub, "alice")
            await asyncio.to_thread(alice.wait_for_server)
            alice.json("PUT", "api/contents/analysis.ipynb",
                       json={"type": "notebook", "content": notebook(0)})  # fmt: skip
            job = alice.json("POST", "westtek/api/snapshots", json={"baseline": True})
            await asyncio.to_thread(alice.wait_for_job, job)
            await asyncio.sleep(5)  # the watcher restarts against the new baseline
            kernel = alice.json("POST", "api/kernels", json={"name": "python3"})["id"]
            server = server_tree(workdir)
            cpu_before, began = cpu_seconds(server), time.monotonic()
            grades: Counter[str] = Counter()
            changed: set[str] = set()
            round_ = 0
            while time.monotonic() - began < minutes * 60:
                started = time.monotonic()
                kernel = await one_round(alice, kernel, round_)
                await asyncio.sleep(2)  # past the watcher's debounce
                drift = alice.json("GET", "westtek/api/drift")
                grades[drift["status"]] += 1
                changed |= {f"{c['kind']}:{c['name']}" for c in drift["changes"]}
                round_ += 1
                if round_ % 10 == 0:
                    log(f"round {round_}: {dict(grades)}, changed {sorted(changed)}")
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
            wall = time.monotonic() - began
            cpu = cpu_seconds(server) - cpu_before
            events = alice.drift_events()
        finally:
            hub.api("DELETE", "users/alice/server")
            hub.stop()
            hub.kill_user_servers()
    return {
        "minutes": wall / 60,
        "rounds": round_,
        "grades": dict(grades),
        "changed": sorted(changed),
        "events": len(events),
        "events_above_info": [e for e in events if e["status"] != "STABLE"],
        "cpu_percent_of_core": 100 * cpu / wall,
    }


def table(result: dict[str, Any]) -> str:
    """The README table: what the grade was after each round, and what changed."""
    stable = result["grades"].get("STABLE", 0) == result["rounds"]
    quiet = not result["events_above_info"]
    return "\n".join([
        f"Latest run: {result['date']}.",
        "",
        "| measure | result | target | verdict |",
        "|---|---|---|---|",
        f"| grade after each of {result['rounds']} rounds over {result['minutes']:.0f} min | "
        f"{', '.join(f'{k} {v}' for k, v in sorted(result['grades'].items()))} | "
        f"STABLE every time | {'met' if stable else 'missed'} |",
        f"| drift events recorded | {result['events']}, "
        f"{len(result['events_above_info'])} above STABLE | none above STABLE | "
        f"{'met' if quiet else 'missed'} |",
        f"| changes listed at any point | {', '.join(result['changed']) or 'none'} | "
        "her notebook at most | |",
        f"| server tree CPU while in use | {result['cpu_percent_of_core']:.1f} % of a core | | |",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python "
        f"{platform.python_version()}.",
    ])  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60, help="how long alice works")
    parser.add_argument("--interval", type=float, default=30, help="seconds between rounds")
    parser.add_argument("--no-readme", action="store_true", help="leave bench/ files alone")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.minutes, args.interval))
    publish(RESULTS, result, (MARK_BEGIN, MARK_END), table, SECTION, write=not args.no_readme)
    return 0 if result["grades"].get("STABLE", 0) == result["rounds"] else 1


if __name__ == "__main__":
    sys.exit(main())
