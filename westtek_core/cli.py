"""The ``westtek`` command line: a thin shell over westtek_core.

Every command takes ``--json`` for machine output; usage errors exit 2 (argparse's
convention); bad input exits 1 with one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from westtek_core.status import status_report
from westtek_core.version import __version__

DESCRIPTION = (
    "West Tek Environment Preservation: capture, verify and restore reproducible "
    "Jupyter research environments."
)


class CommandError(Exception):
    """Bad input or a failed operation: reported as one line, exit status 1."""


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"label {text!r} is not KEY=VALUE")
    return key, value


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        help="snapshot store: a directory or s3://bucket/prefix "
        "(default: $WESTTEK_STORE, else a per-user data directory)",
    )
    parser.add_argument(
        "--key-file",
        metavar="PATH",
        type=Path,
        help="encryption key of an encrypted store (default: $WESTTEK_KEY_FILE or "
        "~/.config/westtek/store.key)",
    )


def _add_environment(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--python",
        action="append",
        metavar="PY",
        help="an interpreter whose environment is captured (repeatable; default: every "
        "kernelspec's interpreter and the current one)",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path.cwd(),
        metavar="DIR",
        help="the workspace: notebooks and data (default: the current directory)",
    )
    _add_store(parser)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser for every ``westtek`` command."""
    parser = argparse.ArgumentParser(prog="westtek", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"westtek {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    status = commands.add_parser("status", help="show the suite's version and capabilities")
    _add_json(status)

    snapshot = commands.add_parser("snapshot", help="create, inspect, verify and restore snapshots")
    actions = snapshot.add_subparsers(dest="action", metavar="ACTION", required=True)
    # what every action on an existing store takes
    on_store = argparse.ArgumentParser(add_help=False)
    _add_store(on_store)
    _add_json(on_store)

    create = actions.add_parser("create", help="capture the environment into a new snapshot")
    _add_environment(create)
    create.add_argument("--note", default="", help="a note saying why this snapshot exists")
    create.add_argument(
        "--label",
        action="append",
        type=_label,
        default=[],
        metavar="K=V",
        help="a label (repeatable)",
    )
    create.add_argument(
        "--include-secrets",
        action="store_true",
        help="store credentials, .env files and config tokens too (default: left out or redacted)",
    )
    create.add_argument("--encrypt", action="store_true", help="encrypt a new store (AES-256-GCM)")
    create.add_argument(
        "--kms-key-id",
        metavar="KEY",
        help="with --encrypt: protect the store's key with this AWS KMS key instead of a key file",
    )
    create.add_argument("--environment-id", help="the environment this snapshot belongs to")
    _add_json(create)

    actions.add_parser("list", help="list the snapshots in the store", parents=[on_store])

    show = actions.add_parser("show", help="show one snapshot's manifest", parents=[on_store])
    show.add_argument("id")

    diff = actions.add_parser(
        "diff", help="compare two snapshots (drift-report shape)", parents=[on_store]
    )
    diff.add_argument("id_a")
    diff.add_argument("id_b")

    verify = actions.add_parser(
        "verify", help="re-read every object and check every hash", parents=[on_store]
    )
    verify.add_argument("id", nargs="?")
    verify.add_argument("--all", action="store_true", help="verify every snapshot (default)")

    delete = actions.add_parser(
        "delete", help="delete a snapshot and free unreferenced objects", parents=[on_store]
    )
    delete.add_argument("id")
    _add_repair(actions, on_store)

    restore = actions.add_parser(
        "restore", help="restore a snapshot into a new directory", parents=[on_store]
    )
    restore.add_argument("id")
    restore.add_argument("--to", required=True, type=Path, metavar="DIR", dest="target")
    restore.add_argument(
        "--mode",
        choices=("files", "lock"),
        default="files",
        help="files: byte-exact and offline (default); lock: a fresh venv from the package index",
    )
    restore.add_argument("--force", action="store_true", help="restore into a non-empty DIR")
    restore.add_argument(
        "--execute-notebooks",
        action="store_true",
        help="re-run every notebook in its restored kernel and report output differences",
    )
    restore.add_argument(
        "--no-validate", action="store_true", help="skip the import and pip check of the result"
    )

    prune = actions.add_parser(
        "prune",
        help="delete the snapshots a retention policy does not keep, and free their data",
        parents=[on_store],
    )
    keeps = {
        "last": "keep each environment's N newest snapshots",
        "daily": "keep the newest snapshot of each of the last N days",
        "weekly": "keep the newest snapshot of each of the last N weeks",
        "monthly": "keep the newest snapshot of each of the last N months",
    }
    for period, text in keeps.items():
        prune.add_argument(f"--keep-{period}", type=int, default=0, metavar="N", help=text)
    prune.add_argument(
        "--dry-run", action="store_true", help="say what would be deleted and freed; change nothing"
    )

    export = actions.add_parser("export", help="export a snapshot's packages as a lockfile")
    export.add_argument("id")
    export.add_argument("--format", required=True, choices=("requirements", "pylock", "conda"))
    export.add_argument(
        "--interpreter", type=int, default=0, metavar="N", help="which captured interpreter (0)"
    )
    export.add_argument("-o", "--output", type=Path, help="write to a file instead of stdout")
    _add_store(export)

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
    _add_environment(drift)
    drift.add_argument("--baseline", metavar="ID", help="compare with this snapshot instead")
    drift.add_argument("--environment-id", help="the environment whose baseline is used")
    drift.add_argument(
        "--fail-on",
        choices=("minor", "critical"),
        help="exit 1 when the drift reaches this level (for CI gates)",
    )
    _add_json(drift)

    baseline = commands.add_parser("baseline", help="choose the snapshot drift is measured against")
    baseline_actions = baseline.add_subparsers(dest="action", metavar="ACTION", required=True)
    baseline_set = baseline_actions.add_parser(
        "set", help="make a snapshot its environment's baseline"
    )
    baseline_set.add_argument("id")
    _add_environment(baseline_set)
    _add_json(baseline_set)
    _add_rollback(commands)
    _add_kb(commands)
    _add_audit(commands)
    _add_ask(commands)
    return parser


def _add_repair(actions: Any, on_store: argparse.ArgumentParser) -> None:
    repair = actions.add_parser(
        "repair",
        help="salvage a damaged store: keep what is intact, re-read lost data from the live "
        "environment, rebuild the index, remove what interrupted snapshots left",
        parents=[on_store],
    )
    repair.add_argument(
        "--root",
        type=Path,
        metavar="DIR",
        help="where the workspace is now, if it moved since the snapshots were taken",
    )


def _cmd_snapshot_repair(args: argparse.Namespace) -> int:
    from westtek_core.snapshot import Progress as Done
    from westtek_core.snapshot.repair import repair_store

    with _progress_bar(args, "repair") as bar:

        def packs_read(done: int, total: int) -> None:
            if bar:
                bar(Done(done, total, done, total))

        report = repair_store(_open_repo(args), workspace_root=args.root, progress=packs_read)

    def human(console: Console) -> None:
        console.print(
            f"read {report.packs_read} packs: {len(report.damaged_packs)} damaged, "
            f"{len(report.missing_packs)} missing, "
            f"{len(report.unreadable_index_files)} unreadable index files"
        )
        console.print(
            f"  {report.salvaged_chunks} chunks salvaged, {report.recovered_chunks} re-read "
            f"from {len(report.recovered_files)} live files; removed {report.removed_packs} "
            f"damaged and {report.removed_orphan_packs} unused packs, "
            f"{report.removed_partial_writes} partial writes"
        )
        for lost in report.unrecoverable:
            console.print(
                f"[red]lost[/] snapshot {lost['snapshot'][:12]}: {lost['file']} ({lost['reason']})"
            )
        for bad in report.damaged_snapshots:
            console.print(f"[red]damaged[/] snapshot {bad['snapshot'][:12]}: {bad['problem']}")
        console.print("repaired: [green]ok[/]" if report.ok else "[red]not everything came back[/]")

    _emit(args, report.to_json(), human)
    return 0 if report.ok else 1


def _add_ask(commands: Any) -> None:
    ask = commands.add_parser(
        "ask", help="ask the Drift Analyzer or the Knowledge Transfer agent (answers cite sources)"
    )
    ask.add_argument("question", help="the question, in quotes")
    ask.add_argument(
        "--agent",
        choices=("drift", "transfer"),
        default="transfer",
        help="drift: explains drift and its risk; transfer: answers a successor's questions "
        "(default)",
    )
    ask.add_argument(
        "--index",
        type=Path,
        metavar="PATH",
        help="the knowledge-base index (default: the lab's, in the per-user data directory)",
    )
    ask.add_argument(
        "--provider",
        help="offline (default, no network), bedrock, openai, or a Provider class's import "
        "path (default: $WESTTEK_AGENT_PROVIDER)",
    )
    ask.add_argument("--environment-id", help="the environment asked about")
    _add_environment(ask)
    _add_json(ask)


def _add_audit(commands: Any) -> None:
    audit = commands.add_parser("audit", help="the hub service's audit log")
    actions = audit.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="check every link of the audit log's hash chain")
    verify.add_argument(
        "--db",
        metavar="URL",
        help="the hub service's database (default: $WESTTEK_HUB_DB_URL, else its SQLite file)",
    )
    _add_json(verify)


def _add_kb(commands: Any) -> None:
    kb = commands.add_parser("kb", help="the lab's knowledge base: ingest and search")
    actions = kb.add_subparsers(dest="action", metavar="ACTION", required=True)
    index = argparse.ArgumentParser(add_help=False)
    index.add_argument(
        "--index",
        type=Path,
        metavar="PATH",
        help="the index file (default: the lab's, in the per-user data directory)",
    )
    _add_json(index)
    ingest = actions.add_parser(
        "ingest",
        help="index the notebooks, experiment logs, snapshots and install history",
        parents=[index],
    )
    ingest.add_argument(
        "dir", nargs="?", type=Path, default=Path.cwd(), help="the workspace (default: .)"
    )
    _add_store(ingest)
    search = actions.add_parser("search", help="search the knowledge base", parents=[index])
    search.add_argument("query")
    search.add_argument("-k", type=int, default=5, help="how many results (5)")
    search.add_argument(
        "--mode",
        choices=("hybrid", "bm25", "embedding"),
        default="hybrid",
        help="ranking: BM25 fused with embeddings (default), or either alone",
    )


def _add_rollback(commands: Any) -> None:
    rollback = commands.add_parser(
        "rollback",
        help="put the live environment back to a snapshot, in place (after a safety snapshot)",
    )
    which = rollback.add_mutually_exclusive_group(required=True)
    which.add_argument("--to", metavar="ID", dest="target", help="the snapshot to go back to")
    which.add_argument(
        "--resume", action="store_true", help="finish the latest interrupted rollback"
    )
    which.add_argument(
        "--undo", action="store_true", help="put back the latest rollback's safety snapshot"
    )
    rollback.add_argument(
        "--only",
        action="append",
        choices=("packages", "kernels", "config"),
        help="roll back only this area (repeatable; default: all three)",
    )
    rollback.add_argument(
        "--dry-run",
        action="store_true",
        help="with --to: list every step the rollback would take; change nothing",
    )
    _add_environment(rollback)
    rollback.set_defaults(root=None)  # --resume and --undo reuse the rollback's own
    _add_json(rollback)


def _emit(args: argparse.Namespace, payload: Any, human: Callable[[Console], None]) -> None:
    if args.json:
        print(json.dumps(payload, indent=None, default=str))
    else:
        human(Console())


def _cmd_status(args: argparse.Namespace) -> int:
    report = status_report("cli")

    def human(console: Console) -> None:
        console.print(f"westtek {report.version} (Python {report.python})")
        console.print("capabilities: " + ", ".join(report.capabilities))

    _emit(args, report.to_json(), human)
    return 0


def _open_repo(args: argparse.Namespace, *, create: bool = False, encrypt: bool = False) -> Any:
    from westtek_core.paths import default_key_file, default_store
    from westtek_core.store import Repository

    location = args.store or default_store()
    return Repository.open(
        location,
        create=create,
        key_file=args.key_file or default_key_file(),
        encrypt=encrypt,
        kms_key_id=getattr(args, "kms_key_id", None),
    )


@contextmanager
def _progress_bar(args: argparse.Namespace, label: str) -> Iterator[Callable[[Any], None] | None]:
    console = Console(stderr=True)
    if args.json or not console.is_terminal:
        yield None
        return
    columns = (TextColumn(label), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(state: Any) -> None:
            bar.update(task, completed=state.bytes_done, total=state.bytes_total)

        yield update


def _human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _cmd_snapshot_create(args: argparse.Namespace) -> int:
    from westtek_core.capture import capture_environment
    from westtek_core.snapshot import create_snapshot

    if not args.root.is_dir():
        raise CommandError(f"--root {args.root} is not a directory")
    repo = _open_repo(args, create=True, encrypt=args.encrypt)
    capture = capture_environment(args.python, args.root, include_secrets=args.include_secrets)
    with _progress_bar(args, "snapshot") as progress:
        result = create_snapshot(
            repo,
            capture,
            note=args.note,
            labels=dict(args.label),
            environment_id=args.environment_id,
            progress=progress,
        )

    def human(console: Console) -> None:
        console.print(f"snapshot [bold]{result.id[:12]}[/] created ({result.id})")
        console.print(
            f"  {result.files} files, {_human_size(result.size_bytes)}; "
            f"{_human_size(result.new_bytes)} new in the store, "
            f"{result.unchanged_files} files unchanged since the last snapshot"
        )
        for secret in result.secrets:
            console.print(
                f"  secret {secret['action']}: {secret['area']}/{secret['path']} ({secret['kind']})"
            )
        for skip in result.skipped:
            where = f"{skip['area']}/{skip['path']}"
            if skip.get("stored"):  # kept, but worth knowing (a link out of the tree)
                console.print(f"  [dim]note[/] {where}: {skip['reason']}")
            else:
                console.print(f"  [yellow]skipped[/] {where}: {skip['reason']}")

    _emit(args, result.to_json(), human)
    return 0


def _cmd_snapshot_list(args: argparse.Namespace) -> int:
    from westtek_core.snapshot import load_snapshot, summarize

    repo = _open_repo(args)
    rows = sorted(
        (summarize(load_snapshot(repo, i)) for i in repo.list_manifests()),
        key=lambda r: str(r["timestamp"]),
    )

    def human(console: Console) -> None:
        table = Table("id", "time", "environment", "size", "packages", "notebooks", "note")
        for row in rows:
            table.add_row(
                row["id"][:12],
                str(row["timestamp"]),
                str(row["environment_id"]),
                _human_size(row["size_bytes"]),
                str(row["packages"]),
                str(row["notebook_count"]),
                row["notes"],
            )
        console.print(table if rows else "no snapshots in this store")

    _emit(args, {"snapshots": rows}, human)
    return 0


def _cmd_snapshot_show(args: argparse.Namespace) -> int:
    from westtek_core.snapshot import iter_files, load_snapshot

    manifest = load_snapshot(_open_repo(args), args.id)

    def human(console: Console) -> None:
        console.print(f"snapshot {manifest['id']}")
        for key in ("timestamp", "environment_id", "created_by", "notes", "checksum"):
            console.print(f"  {key}: {manifest.get(key)}")
        console.print(f"  size: {_human_size(manifest.get('size_bytes', 0))}")
        for interp in manifest.get("interpreters", []):
            console.print(
                f"  interpreter {interp.get('path')} (Python {interp.get('version')}): "
                f"{len(interp.get('packages', []))} packages"
            )
        for kernel in manifest.get("kernels", []):
            console.print(f"  kernel {kernel['name']}: {' '.join(kernel['spec'].get('argv', []))}")
        files = sum(1 for _ in iter_files(manifest))
        console.print(f"  {files} files, {manifest['metadata']['notebook_count']} notebooks")

    _emit(args, manifest, human)
    return 0


def _print_drift(console: Console, report: Any) -> None:
    colour = {"info": "green", "minor": "yellow", "critical": "red"}
    status_colour = {"STABLE": "green", "MINOR_DRIFT": "yellow", "CRITICAL_DRIFT": "red"}
    status = report.status.value
    console.print(f"[{status_colour[status]}]{status}[/] (baseline {report.baseline[:12]})")
    if not report.changes:
        console.print("no differences")
        return
    table = Table("severity", "kind", "name", "change", "before", "after", "notebooks", "reason")
    for change in sorted(report.changes, key=lambda c: -c.severity.rank):
        severity = change.severity.value
        table.add_row(
            f"[{colour[severity]}]{severity}[/]",
            change.kind,
            change.name,
            change.change,
            change.before or "",
            change.after or "",
            ", ".join(change.affected_notebooks),
            change.reason,
        )
    console.print(table)


def _cmd_drift(args: argparse.Namespace) -> int:
    from westtek_core.baseline import baseline_manifest
    from westtek_core.drift import capture_live, detect_drift, fails_at
    from westtek_core.snapshot import default_environment_id

    if not args.root.is_dir():
        raise CommandError(f"--root {args.root} is not a directory")
    repo = _open_repo(args)
    environment = args.environment_id or default_environment_id()
    baseline = baseline_manifest(repo, environment, args.baseline)
    if args.mode == "watch":
        return _watch_drift(args, baseline, environment)
    report = detect_drift(capture_live(args.python, args.root), baseline, args.root)
    _emit(args, report.to_json(), lambda console: _print_drift(console, report))
    return 1 if args.fail_on and fails_at(report, args.fail_on) else 0


def _watch_drift(args: argparse.Namespace, baseline: Any, environment: str) -> int:
    import threading

    from westtek_core.events import EventLog
    from westtek_core.paths import data_dir
    from westtek_core.watch import DriftWatcher

    console = Console()
    seen = 0

    def emit(event: dict[str, Any]) -> None:
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

    events = EventLog(data_dir() / "events.sqlite")
    watcher = DriftWatcher(
        args.python, args.root, baseline, events, emit, environment_id=environment
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


def _cmd_baseline_set(args: argparse.Namespace) -> int:
    from westtek_core.baseline import set_baseline

    manifest = set_baseline(_open_repo(args), args.id)
    payload = {"baseline": manifest["id"], "environment_id": manifest["environment_id"]}
    _emit(
        args,
        payload,
        lambda c: c.print(f"baseline of {payload['environment_id']}: {payload['baseline']}"),
    )
    return 0


def _cmd_snapshot_diff(args: argparse.Namespace) -> int:
    from westtek_core.drift_report import diff_manifests
    from westtek_core.snapshot import load_snapshot

    repo = _open_repo(args)
    report = diff_manifests(load_snapshot(repo, args.id_a), load_snapshot(repo, args.id_b))

    _emit(args, report.to_json(), lambda console: _print_drift(console, report))
    return 0


def _cmd_snapshot_verify(args: argparse.Namespace) -> int:
    from westtek_core.snapshot import resolve_snapshot_id, verify_snapshots

    repo = _open_repo(args)
    ids = [resolve_snapshot_id(repo, args.id)] if args.id and not args.all else None
    report = verify_snapshots(repo, ids)

    def human(console: Console) -> None:
        for problem in report.problems:
            console.print(f"[red]problem[/] {problem}")
        for damage in report.damaged:
            console.print(f"[red]damaged[/] snapshot {damage['snapshot'][:12]}: {damage['file']}")
        verdict = "[green]ok[/]" if report.ok else "[red]DAMAGED[/]"
        console.print(f"verified {len(report.snapshots)} snapshot(s): {verdict}")

    _emit(args, report.to_json(), human)
    return 0 if report.ok else 1


def _cmd_snapshot_delete(args: argparse.Namespace) -> int:
    from westtek_core.snapshot import delete_snapshot

    result = delete_snapshot(_open_repo(args), args.id)
    _emit(args, result, lambda c: c.print(f"deleted snapshot {result['id']}"))
    return 0


def _cmd_snapshot_restore(args: argparse.Namespace) -> int:
    from westtek_core.snapshot import load_snapshot, restore_snapshot

    repo = _open_repo(args)
    report = restore_snapshot(
        repo,
        load_snapshot(repo, args.id),
        args.target,
        force=args.force,
        validate=not args.no_validate,
        mode=args.mode,
        execute_notebooks=args.execute_notebooks,
    )

    def human(console: Console) -> None:
        console.print(
            f"restored {report.files} files ({_human_size(report.bytes)}) of snapshot "
            f"{report.snapshot[:12]} into {report.target}; {len(report.relocated)} relocated"
        )
        for interp in report.interpreters:
            console.print(f"  interpreter: {interp['restored']}")
        for check in report.validation:
            state = "[green]ok[/]" if check.get("ok") else "[red]FAILED[/]"
            console.print(f"  validation of {check['interpreter']}: {state}")
            for name, error in check.get("import_failures", {}).items():
                console.print(f"    import {name}: {error}")
            for name in check.get("failing_in_original_too", {}):
                console.print(f"    [dim]import {name} fails in the captured environment too[/]")
            for difference in check.get("differences", []):
                console.print(
                    f"    cell {difference['cell']}: stored {difference['before']!r}, "
                    f"now {difference['after']!r}"
                )
            if check.get("error"):
                console.print(f"    {check['error']}")
        console.print(f"  details: {Path(report.target) / 'RESTORE.json'}")

    _emit(args, report.to_json(), human)
    return 0 if report.ok else 1


def _cmd_snapshot_export(args: argparse.Namespace) -> int:
    from westtek_core.snapshot import export_snapshot, load_snapshot

    text = export_snapshot(load_snapshot(_open_repo(args), args.id), args.format, args.interpreter)
    if args.output:
        tmp = args.output.with_name(args.output.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(args.output)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    from westtek_core import rollback

    repo = _open_repo(args)
    if args.dry_run:
        return _preview_rollback(args, repo)
    console = Console(stderr=True)
    with Progress(
        console=console, transient=True, disable=args.json or not console.is_terminal
    ) as bar:
        task = bar.add_task("rollback", total=None)

        def progress(state: rollback.RollbackProgress) -> None:
            bar.update(task, completed=state.done, total=state.total)

        try:
            if args.undo:
                report = rollback.undo_rollback(repo, progress=progress)
            elif args.resume:
                report = rollback.resume_rollback(repo, progress=progress)
            else:
                root = args.root or Path.cwd()
                if not root.is_dir():
                    raise CommandError(f"--root {root} is not a directory")
                report = rollback.run_rollback(
                    repo, args.target, args.python, root, args.only, progress
                )
        except rollback.RollbackError as e:
            raise CommandError(str(e)) from e

    def human(out: Console) -> None:
        verb = "undid a rollback: back" if report.kind == "undo" else "rolled back"
        out.print(
            f"{verb} to snapshot [bold]{report.target[:12]}[/] "
            f"({', '.join(report.only)}): {report.steps_done}/{len(report.steps)} steps"
            + (" (resumed)" if report.resumed else "")
        )
        for step in report.steps:
            out.print(f"  {rollback.RollbackStep.from_json(step).describe()}")
        if report.safety_snapshot:
            undo = "--undo" if report.kind == "rollback" else f"--to {report.safety_snapshot[:12]}"
            out.print(
                f"  safety snapshot {report.safety_snapshot[:12]}: `westtek rollback {undo}` "
                "puts it back"
            )
        for note in report.notes:
            out.print(f"  [yellow]note[/] {note}")
        _print_drift(out, report.drift)

    _emit(args, report.to_json(), human)
    return 0 if report.status == "STABLE" else 1


def _preview_rollback(args: argparse.Namespace, repo: Any) -> int:
    from westtek_core import rollback

    root = args.root or Path.cwd()
    try:
        plan = rollback.preview_rollback(repo, args.target, args.python, root, args.only)
    except rollback.RollbackError as e:
        raise CommandError(str(e)) from e

    def human(out: Console) -> None:
        out.print(
            f"rolling back to snapshot [bold]{plan.target[:12]}[/] ({', '.join(plan.only)}) "
            f"would take {len(plan.steps)} steps:"
        )
        for step in plan.steps:
            out.print(f"  {step.describe()}")
        for note in plan.notes:
            out.print(f"  [yellow]note[/] {note}")

    _emit(args, plan.to_preview(), human)
    return 0


def _cmd_kb(args: argparse.Namespace) -> int:
    from westtek_core.kb import KnowledgeIndexBackend, default_index_path

    index = args.index or default_index_path()
    backend = KnowledgeIndexBackend()  # sqlite unless $WESTTEK_KB_BACKEND says otherwise
    if args.action == "search" and not backend.is_built(index):
        raise CommandError(f"no knowledge base at {index}: run `westtek kb ingest` first")
    kb = backend.open_knowledge_base(index)
    try:
        if args.action == "search":
            if args.k < 1:
                raise CommandError("-k must be at least 1")
            results = [r.to_json() for r in kb.search(args.query, args.k, mode=args.mode)]

            def human_results(console: Console) -> None:
                if not results:
                    console.print("nothing found")
                for r in results:
                    console.print(f"[bold]{r['source']}[/] {r['locator']}  ({r['score']:.4f})")
                    console.print("  " + " ".join(r["text"].split())[:300])

            _emit(args, {"results": results}, human_results)
            return 0
        if not args.dir.is_dir():
            raise CommandError(f"{args.dir} is not a directory")
        report = kb.ingest_everything(args.dir, *_kb_store_material(args)).to_json()
    finally:
        kb.close()

    def human_ingest(console: Console) -> None:
        console.print(
            f"indexed {len(report['ingested'])} sources ({report['chunks']} passages), "
            f"{report['unchanged']} unchanged, {len(report['removed'])} removed, "
            f"{report['redactions']} redactions"
        )
        for failure in report["failed"]:
            console.print(f"  [yellow]skipped[/] {failure['source']}: {failure['error']}")

    _emit(args, report, human_ingest)
    return 0


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    import os

    from sqlalchemy import select

    from westtek_core.paths import data_dir
    from westtek_hub.audit import verify_chain
    from westtek_hub.db import make_engine, session_factory
    from westtek_hub.models import AuditEntry

    url = args.db or os.environ.get("WESTTEK_HUB_DB_URL")
    if not url:
        path = data_dir() / "hub" / "registry.sqlite"
        if not path.exists():
            raise CommandError(f"no hub registry at {path}: pass --db URL")
        url = f"sqlite:///{path}"
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            ok, count, problem = verify_chain(
                session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
            )
    except Exception as e:  # noqa: BLE001 — any database failure is one line for the user
        raise CommandError(f"cannot read the audit log at {engine.url!r}: {e}") from e
    finally:
        engine.dispose()
    payload = {"verified": ok, "checked": count, "problem": None if ok else problem}
    _emit(
        args,
        payload,
        lambda c: c.print(
            f"audit log verified: {count} entries" if ok else f"[red]BROKEN[/]: {problem}"
        ),
    )
    return 0 if ok else 1


def _cmd_ask(args: argparse.Namespace) -> int:
    from westtek_core.agents import AgentLoop, ToolContext
    from westtek_core.agents.service import default_kb_path, open_knowledge_base
    from westtek_core.environment_service import EnvironmentService
    from westtek_core.events import EventLog
    from westtek_core.paths import data_dir, default_key_file, default_store
    from westtek_core.snapshot import default_environment_id

    if not args.question.strip():
        raise CommandError("ask a question")
    if not args.root.is_dir():
        raise CommandError(f"--root {args.root} is not a directory")
    index = args.index or default_kb_path()
    if args.index and not index.exists():
        raise CommandError(f"no knowledge base at {index}: run `westtek kb ingest` first")
    loop = AgentLoop(**({"provider": args.provider} if args.provider else {}))
    events = EventLog(data_dir() / "events.sqlite")
    service = EnvironmentService(
        store=args.store or default_store(),
        key_file=args.key_file or default_key_file(),
        root=args.root,
        pythons=args.python,
        environment_id=args.environment_id or default_environment_id(),
        event_log=events,
    )
    ctx = ToolContext(service, open_knowledge_base(index))
    out, err = Console(), Console(stderr=True)
    live = not args.json and out.is_terminal

    def show(chunk: dict[str, Any]) -> None:
        if chunk["type"] == "tool" and err.is_terminal and not args.json:
            err.print(f"[dim]{chunk['name']}: {chunk['status']}[/]")
        elif chunk["type"] == "delta" and live:
            out.print(chunk["text"], end="", markup=False, highlight=False)

    try:
        answer = loop.ask(ctx, args.question, args.agent, emit=show)
    finally:
        ctx.close()
        events.close()

    def human(console: Console) -> None:
        if live:
            console.print()
        else:
            console.print(answer.answer, markup=False, highlight=False)
        if answer.citations:
            console.print("\nSources:")
            for number, citation in enumerate(answer.citations, start=1):
                console.print(f"  [{number}] {citation.source} ({citation.locator})", markup=False)

    _emit(args, answer.to_json(), human)
    return 1 if answer.error else 0


def _kb_store_material(args: argparse.Namespace) -> tuple[list[Any], list[Any] | None]:
    """The store's snapshots and the install history, when they exist."""
    from westtek_core.events import EventLog
    from westtek_core.paths import data_dir
    from westtek_core.snapshot import load_snapshot
    from westtek_core.store import StoreError

    try:
        repo = _open_repo(args)
        manifests = [load_snapshot(repo, i) for i in repo.list_manifests()]
    except StoreError:
        manifests = []  # no store yet: the workspace alone
    events_file = data_dir() / "events.sqlite"
    history = None
    if events_file.exists():
        log = EventLog(events_file)
        history = log.install_history()
        log.close()
    return manifests, history


def _cmd_snapshot_prune(args: argparse.Namespace) -> int:
    from westtek_core.baseline import baseline_manifest
    from westtek_core.snapshot import load_snapshot, summarize
    from westtek_core.snapshot.retention import (
        RetentionPolicy,
        apply_retention,
        plan_retention,
        reclaimable_bytes,
    )

    policy = RetentionPolicy(args.keep_last, args.keep_daily, args.keep_weekly, args.keep_monthly)
    repo = _open_repo(args)
    rows = [summarize(load_snapshot(repo, i)) for i in repo.list_manifests()]
    # every environment's baseline stays, whatever the policy says
    baselines = {
        str(baseline_manifest(repo, str(e))["id"]) for e in {r["environment_id"] for r in rows}
    }
    plan = plan_retention(rows, policy, protected=baselines)
    freed = reclaimable_bytes(repo, plan)
    result = plan.to_json() | {"reclaimable_bytes": freed, "dry_run": args.dry_run}
    if not args.dry_run:
        result |= apply_retention(repo, plan)

    def human(console: Console) -> None:
        verb = "would delete" if args.dry_run else "deleted"
        console.print(
            f"{verb} {len(plan.delete)} snapshot(s), kept {len(plan.keep)}; "
            f"{_human_size(freed)} {'would be ' if args.dry_run else ''}freed"
        )
        for sid in plan.delete:
            console.print(f"  delete {sid[:12]}")
        for sid, why in plan.keep.items():
            console.print(f"  keep   {sid[:12]}: {', '.join(why)}")

    _emit(args, result, human)
    return 0


SNAPSHOT_ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "create": _cmd_snapshot_create,
    "list": _cmd_snapshot_list,
    "show": _cmd_snapshot_show,
    "diff": _cmd_snapshot_diff,
    "verify": _cmd_snapshot_verify,
    "delete": _cmd_snapshot_delete,
    "repair": _cmd_snapshot_repair,
    "restore": _cmd_snapshot_restore,
    "export": _cmd_snapshot_export,
    "prune": _cmd_snapshot_prune,
}


def _run(args: argparse.Namespace) -> int:
    if args.command == "status":
        return _cmd_status(args)
    if args.command == "drift":
        return _cmd_drift(args)
    if args.command == "baseline":
        return _cmd_baseline_set(args)
    if args.command == "rollback":
        return _cmd_rollback(args)
    if args.command == "kb":
        return _cmd_kb(args)
    if args.command == "audit":
        return _cmd_audit_verify(args)
    if args.command == "ask":
        return _cmd_ask(args)
    return SNAPSHOT_ACTIONS[args.action](args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    from westtek_core.capture import ProbeError
    from westtek_core.snapshot import ManifestError, RestoreError
    from westtek_core.store import StoreError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "rollback" and args.dry_run and not args.target:
        parser.error("rollback --dry-run previews a rollback: use it with --to ID")  # exits 2
    try:
        return _run(args)
    except (
        CommandError,
        StoreError,
        RestoreError,
        ManifestError,
        ProbeError,
        ValueError,
        OSError,
    ) as e:
        print(f"westtek: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("westtek: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
