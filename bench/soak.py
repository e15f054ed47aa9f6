"""The reliability soak: the CI suite's stress tests at full size, with figures for the README.

1. **kill -9 of ``snapshot create``** at 50 random moments (tests/core/store/crash.py): after
   each the whole store verifies, the newest earlier snapshot restores byte for byte and a
   re-run completes; at the end every snapshot restores and ``snapshot repair`` removes
   what the killed writers left.
2. **100 concurrent ``snapshot create`` processes** into one store (tests/core/stress.py):
   none fails, the store verifies; wall time and the largest writer's peak RSS.
3. **the hub service at 200 events/s** for 60 s (bench/hub_load.py's load: 1,000
   environments in 50 labs, a lab admin listing every 100 ms) on SQLite: nothing lost; the
   service's peak RSS (``VmHWM``).
4. **kill -9 of the hub service during ingestion** at 10 random moments
   (tests/hub/crash.py): every event stored exactly once, SQLite's integrity check passes.

Everything runs on 127.0.0.1 in temporary directories. Writes ``bench/results/soak.json``
and the table between ``<!-- bench:soak:start -->`` and ``<!-- bench:soak:end -->`` in
bench/README.md.

    .venv/bin/python bench/soak.py                 # everything (~10 min on 2 cores)
    .venv/bin/python bench/soak.py --quick         # 10 kills, 20 writers, 10 s of load
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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(BENCH))

from benchlib import free_port, replace_readme_block  # noqa: E402

from tests.core.store.crash import run_crash_moments, westtek  # noqa: E402
from tests.core.stress import make_lab, run_concurrent_snapshots  # noqa: E402

RESULTS = BENCH / "results" / "soak.json"
README = BENCH / "README.md"
MARK_BEGIN = "<!-- bench:soak:start -->"
MARK_END = "<!-- bench:soak:end -->"


def crash_moments(moments: int) -> dict[str, Any]:
    """Step 1."""
    with tempfile.TemporaryDirectory(prefix="westtek-soak-crash-") as tmp:
        lab = make_lab(Path(tmp, "lab"), data_mib=4, small_files=100)
        store = str(Path(tmp, "store"))
        run = run_crash_moments(lab, store, moments=moments, fresh_mib=6)
        code, out, err = westtek("snapshot", "repair", "--store", store, "--json")
        repaired = json.loads(out) if out else {"error": err}
        code_v, out_v, _ = westtek("snapshot", "verify", "--all", "--store", store, "--json")
        return run.to_json() | {
            "repair_ok": code == 0,
            "repair_removed": {
                k: repaired.get(k) for k in ("removed_orphan_packs", "removed_partial_writes")
            },
            "verify_after_repair_ok": code_v == 0 and json.loads(out_v)["ok"],
        }


def concurrent(writers: int) -> dict[str, Any]:
    """Step 2."""
    with tempfile.TemporaryDirectory(prefix="westtek-soak-concurrent-") as tmp:
        run = run_concurrent_snapshots(Path(tmp), str(Path(tmp, "store")), writers)
        return run.to_json() | {"errors": run.failed[:3]}


def vm_hwm_mib(pid: int) -> float:
    """A process's peak resident set so far (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def hub_load(rate: float, seconds: float) -> dict[str, Any]:
    """Step 3: bench/hub_load.py's load on SQLite, with the service's peak memory."""
    import hub_load

    hub_port = free_port()
    hub = hub_load.fake_hub_app(hub_load.users()).listen(hub_port, "127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="westtek-soak-hub-") as tmp:
        db_url = f"sqlite:///{Path(tmp, 'registry.sqlite')}"
        process, port = hub_load.start_service(db_url, hub_port, Path(tmp))
        try:
            base = f"http://127.0.0.1:{port}/services/westtek/api/"
            await hub_load.wait_up(base)
            result = await hub_load.run_load(base, rate, seconds)
            result["service_peak_rss_mib"] = round(vm_hwm_mib(process.pid), 1)
        finally:
            hub_load.stop(process)
            hub.stop()
    return result


async def hub_kills(kills: int) -> dict[str, Any]:
    """Step 4."""
    from tests.hub.conftest import SERVICE_TOKEN, FakeHub
    from tests.hub.crash import run_ingest_kills

    port = free_port()
    server = FakeHub().app().listen(port, "127.0.0.1")
    try:
        with tempfile.TemporaryDirectory(prefix="westtek-soak-ingest-") as tmp:
            run = await run_ingest_kills(
                f"http://127.0.0.1:{port}/hub/api", SERVICE_TOKEN, Path(tmp), kills,
                per_round=300,
            )  # fmt: skip
            return run.to_json()
    finally:
        server.stop()


def git_revision() -> str:
    """The checked-out commit, short."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT
    )
    return done.stdout.strip() or "unknown"


def render(results: dict[str, Any]) -> str:
    """The README block."""
    c, w, h, k = results["crash"], results["concurrent"], results["hub_load"], results["hub_kills"]
    outcomes = ", ".join(f"{n} {what}" for what, n in sorted(c["outcomes"].items()))
    ok = "met" if c["verify_after_repair_ok"] and c["repair_ok"] else "**missed**"
    removed = c["repair_removed"]
    concurrent_ok = "met" if not w["failed"] and w["verify_ok"] else "**missed**"
    rows = [
        "| step | measured | target | verdict |",
        "|---|---|---|---|",
        f"| 1. `snapshot create` SIGKILLed at {c['moments']} random moments | after every kill "
        f"verify passed, the newest earlier snapshot restored byte for byte, the re-run "
        f"completed; {c['snapshots']} snapshots at the end all restored ({outcomes}; kill "
        f"delays {c['delay_s'][0]}–{c['delay_s'][1]} s) | nothing lost | met |",
        f"| 1b. `snapshot repair` afterwards | removed {removed['removed_orphan_packs']}"
        f" orphan packs and {removed['removed_partial_writes']} partial writes; "
        f"verify ok: {c['verify_after_repair_ok']} | clean store | {ok} |",
        f"| 2. {w['writers']} concurrent `snapshot create` into one store | {w['failed']} "
        f"failed, {w['snapshots']} snapshots in {w['seconds']} s; verify ok: {w['verify_ok']} "
        f"({w['verify_seconds']} s); largest writer's peak RSS {w['peak_rss_mib']} MiB | "
        f"no error, clean verify | {concurrent_ok} |",
        f"| 3. hub service, {h['offered_rate']:.0f} events/s for {h['duration_s']} s (SQLite) | "
        f"{h['events_stored']} of {h['events_posted']} stored, {h['failed_posts']} failed posts,"
        f" achieved {h['achieved_rate']}/s; list p99 {h['list_latency_ms']['p99']} ms; service "
        f"peak RSS {h['service_peak_rss_mib']} MiB | nothing lost | "
        f"{'met' if h['lost_events'] == 0 and not h['failed_posts'] else '**missed**'} |",
        f"| 4. hub service SIGKILLed during ingestion, {k['kills']} times | {k['events']} "
        f"events, {k['lost_answers']} answers lost and re-sent, {k['stored']} stored, "
        f"{k['duplicates']} duplicates; integrity check ok; restart ≤ {k['restart_s_max']} s; "
        f"peak RSS {k['peak_rss_mib']} MiB | every event once | "
        f"{'met' if k['stored'] == k['events'] and not k['duplicates'] else '**missed**'} |",
    ]
    facts = results["facts"]
    return "\n".join(
        [
            f"Latest run: {facts['when']}, {facts['minutes']:.1f} min in all.",
            "",
            *rows,
            "",
            f"Machine: {facts['cpus']} cores, {facts['platform']}, Python {facts['python']}; "
            f"westtek git {facts['git']}; load average (1 min) at the end {facts['load']:.1f}.",
        ]
    )


SECTION = """## soak

`soak.py` runs the reliability suite's stress tests at full size (the CI versions are
bounded: 10 kills, 20 writers, 3 ingestion kills): `snapshot create` SIGKILLed at 50 random
moments with the store verified and restored after each, 100 concurrent snapshot processes
into one store, the hub service at 200 events/s with its peak memory, and the hub service
SIGKILLed 10 times during ingestion. See SECURITY.md for what each proves.
"""


async def main_async(args: argparse.Namespace) -> int:
    """Run the four steps, then write the results and the README block."""
    began = time.monotonic()
    results: dict[str, Any] = {}
    print(f"1. kill -9 at {args.kills} moments", flush=True)
    results["crash"] = crash_moments(args.kills)
    print(json.dumps(results["crash"]), flush=True)
    print(f"2. {args.writers} concurrent snapshots", flush=True)
    results["concurrent"] = concurrent(args.writers)
    print(json.dumps(results["concurrent"]), flush=True)
    print(f"3. hub service at {args.rate:.0f} events/s for {args.seconds:.0f} s", flush=True)
    results["hub_load"] = await hub_load(args.rate, args.seconds)
    print(json.dumps(results["hub_load"]), flush=True)
    print(f"4. hub service killed {args.hub_kills} times during ingestion", flush=True)
    results["hub_kills"] = await hub_kills(args.hub_kills)
    print(json.dumps(results["hub_kills"]), flush=True)
    results["facts"] = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "minutes": (time.monotonic() - began) / 60,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git": git_revision(),
        "load": os.getloadavg()[0],
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    block = render(results)
    print(block)
    if not args.no_readme:
        replace_readme_block(MARK_BEGIN, MARK_END, block, SECTION)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the soak."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--writers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--hub-kills", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="10 kills, 20 writers, 10 s")
    parser.add_argument("--no-readme", action="store_true", help="print, do not edit README")
    args = parser.parse_args(argv)
    if args.quick:
        args.kills, args.writers, args.seconds, args.hub_kills = 10, 20, 10.0, 3
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
