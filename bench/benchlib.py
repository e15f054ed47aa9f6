"""What the benchmark scripts share: logging, statistics, README blocks, the offline namespace.

Also how busy the rest of the machine kept the CPUs during a step.

The scripts run as ``python bench/<name>.py``, so this module is importable as ``benchlib``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent / "README.md"


def log(message: str) -> None:
    """A progress line on stderr, with the time."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, p95 (nearest rank), min, max and n."""
    ordered = sorted(values)
    p95 = ordered[max(0, -(-95 * len(ordered) // 100) - 1)]
    return {
        "median": statistics.median(ordered),
        "p95": p95,
        "min": ordered[0],
        "max": ordered[-1],
        "n": len(ordered),
    }


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def replace_readme_block(start: str, end: str, block: str, section: str) -> None:
    """Put ``block`` between the ``start`` and ``end`` markers of bench/README.md.

    Where the markers are missing, ``section`` (a heading and any text) is appended first.
    """
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    if start not in text or end not in text:
        text = text.rstrip() + f"\n\n{section.strip()}\n\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    README.write_text(f"{head}{start}\n{block.strip()}\n{end}{tail}")


def publish(
    results: Path,
    result: dict[str, Any],
    marks: tuple[str, str],
    table: Callable[[dict[str, Any]], str],
    section: str,
    write: bool = True,
) -> str:
    """Date a run's ``result``, print its ``table`` and, if ``write``, keep both.

    The result goes to ``results`` (JSON), the table between ``marks`` in bench/README.md.
    """
    result["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    block = table(result)
    print(block)
    if write:
        results.parent.mkdir(exist_ok=True)
        results.write_text(json.dumps(result, indent=1) + "\n")
        replace_readme_block(*marks, block, section)
    return block


def netns_available() -> bool:
    """Whether ``unshare --net`` works here (root in a VM or a privileged container)."""
    try:
        probe = subprocess.run(["unshare", "--net", "--", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def reexec_offline(script: str, argv: Sequence[str], flag: str, timeout: float) -> int | None:
    """Run ``script`` again in a network namespace with only loopback up; its exit code.

    None when already inside one (``flag`` is set in the environment) or none can be made.
    """
    if os.environ.get(flag) or not netns_available():
        return None
    wrapper = 'ip link set lo up 2>/dev/null; exec "$@"'
    env = {**os.environ, flag: "1"}
    cmd = ["unshare", "--net", "--", "sh", "-c", wrapper, "sh", sys.executable, script, *argv]
    try:
        return subprocess.run(cmd, env=env, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        log("the run went over its time bound")
        return 124


def busy_seconds() -> float:
    """CPU seconds all CPUs have spent busy since boot (``/proc/stat``), or 0."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # guest time is already in user
    return busy / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds of this process and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_step(name: str, func: Callable[[], Any], load: dict[str, Any]) -> Any:
    """Run one step; a failure is logged and returned as ``{"error": ...}``, not raised.

    ``load[name]`` records the step's wall time, the cores other processes kept busy
    meanwhile, and the load average before and after.
    """
    busy0, own0, wall0 = busy_seconds(), own_seconds(), time.monotonic()
    load_start = os.getloadavg()
    log(f"{name} (load {load_start[0]:.1f})")
    try:
        return func()
    except Exception as exc:  # noqa: BLE001 - one failing step must not lose the others
        log(f"{name} failed: {type(exc).__name__}: {exc}")
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        wall = time.monotonic() - wall0
        others = (busy_seconds() - busy0) - (own_seconds() - own0)
        load[name] = {
            "wall_s": wall,
            "other_cpu_cores": max(0.0, others) / max(wall, 1e-9),
            "loadavg_start": load_start,
            "loadavg_end": os.getloadavg(),
        }
        log(f"  {name}: other processes used {load[name]['other_cpu_cores']:.2f} cores")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or empty."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def machine_facts(netns: bool, sources: Sequence[str]) -> dict[str, Any]:
    """nproc, CPU, Python, westtek's git revision (marked when ``sources`` differ), network."""
    repo = README.parent.parent
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain",
                            "--untracked-files=no", "--", *sources],
                           capture_output=True, text=True, timeout=30)  # fmt: skip
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "git": head.stdout.strip() + (" (sources modified)" if dirty.stdout.strip() else ""),
        "network": "none (unshare --net, loopback only)" if netns else "not isolated",
    }


def verdict(actual: float | None, target: float, *, at_least: bool = False) -> str:
    """Whether a figure meets its target, and by how much it misses or clears it."""
    if actual is None:
        return "—"
    ok = actual >= target if at_least else actual <= target
    sign = "≥" if at_least else "≤"
    if ok:
        margin = (actual / target - 1) if at_least else (1 - actual / target)
        return f"met ({sign} {target:g}; {100 * margin:.0f}% margin)"
    short = (1 - actual / target) if at_least else (actual / target - 1)
    how = "short" if at_least else "over"
    return f"**not met** ({sign} {target:g} wanted; {100 * short:.0f}% {how})"
