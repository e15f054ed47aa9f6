"""``westtek drift [watch]``: compare the live environment with its baseline snapshot.

Without a mode it prints one drift report (``--fail-on`` turns it into a CI gate); with
``watch`` it streams drift events as the environment changes.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from westtek_core.cli.common import (
    CommandError,
    add_environment,
    add_json,
    emit,
    open_repo,
    print_drift,
)

if TYPE_CHECKING:
    from westtek_core.cli.common import Subcommands


def register(commands: Subcommands) -> None:
    """Add the ``drift`` command."""
    drift = commands.add_parser(
        "drift", help="compare the live environment with its baseline snapshot"
    )
    drift.add_argument(
        "mode",
        nargs="?",
        choices=("watch",),
        help="watch: stream drift events as the environment changes (Ctrl-C stops)",
    )
    drift.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="with watch: stop after this long"
    )
    drift.add_argument(
        "--max-events", type=int, metavar="N", help="with watch: stop after N events"
    )
    add_environment(drift)
    drift.add_argument("--baseline", metavar="ID", help="compare with this snapshot instead")
    drift.add_argument("--environment-id", help="the environment whose baseline is used")
    drift.add_argument(
        "--fail-on",
        choices=("minor", "critical"),
        help="exit 1 when the drift reaches this level (for CI gates)",
    )
    add_json(drift)
    drift.set_defaults(run=_cmd_drift)


def _cmd_drift(args: argparse.Namespace) -> int:
    from westtek_core.capture.interpreters import probing_ahead

    if not args.root.is_dir():
        raise CommandError(f"--root {args.root} is not a directory")
    # the probes (subprocesses, ~0.1-0.2 s) run while drift's modules are imported
    ahead = [] if args.mode == "watch" else args.python or []
    with probing_ahead(ahead):
        return _run_drift(args)


def _run_drift(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from westtek_core.drift import capture_live, detect_drift, fails_at
    from westtek_core.drift.baseline import baseline_id, baseline_manifest
    from westtek_core.drift.baseline_view import baseline_view
    from westtek_core.labs import default_environment_id

    repo = open_repo(args)
    environment = args.environment_id or default_environment_id()
    if args.mode == "watch":
        return _watch_drift(args, baseline_manifest(repo, environment, args.baseline), environment)
    # the interpreter probe (a subprocess) runs while the baseline's manifest is read
    with ThreadPoolExecutor(max_workers=1) as pool:
        capturing = pool.submit(capture_live, args.python, args.root)
        baseline = baseline_view(repo, baseline_id(repo, environment, args.baseline))
        live = capturing.result()
    report = detect_drift(live, baseline.manifest, args.root, store=repo, imports=baseline.imports)
    emit(args, report.to_json(), lambda console: print_drift(console, report))
    return 1 if args.fail_on and fails_at(report, args.fail_on) else 0


def _watch_drift(args: argparse.Namespace, baseline: Any, environment: str) -> int:
    import threading

    from rich.console import Console

    from westtek_core.drift.events import EventLog
    from westtek_core.drift.watch import DriftWatcher
    from westtek_core.paths import event_log_path

    console = Console()
    seen = 0

    def emit_event(event: dict[str, Any]) -> None:
        nonlocal seen
        seen += 1
        if args.json:
            print(json.dumps(event), flush=True)
        else:
            for change in event["changes"]:
                console.print(f"{event['status']}: [{change['severity']}] {change['reason']}")
            for change in event["resolved"]:
                console.print(f"{event['status']}: resolved: {change['reason']}")
        if args.max_events and seen >= args.max_events:
            watcher.stop_event.set()

    events = EventLog(event_log_path())
    watcher = DriftWatcher(
        args.python, args.root, baseline, events, emit_event, environment_id=environment
    )
    if not args.json:
        console.print(
            f"watching (baseline {baseline['id'][:12]}, now {watcher.report.status.value})"
        )
    if args.timeout:
        timer = threading.Timer(args.timeout, watcher.stop_event.set)
        timer.daemon = True
        timer.start()
    try:
        watcher.run()
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop_event.set()
        events.close()
    return 0
