"""``westtek snapshot …``: create, inspect, verify, repair, restore, export and prune snapshots.

Every action but ``create`` and ``export`` works on an existing store and takes ``--json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from westtek_core.cli.common import (
    CommandError,
    add_environment,
    add_json,
    add_store,
    emit,
    human_size,
    open_repo,
    print_drift,
    progress_bar,
)
from westtek_core.paths import write_atomic

if TYPE_CHECKING:
    from rich.console import Console

    from westtek_core.cli.common import Subcommands
    from westtek_core.snapshot.archive import ArchivePoller
    from westtek_core.store import ArchiveWait

# EX_TEMPFAIL: nothing is wrong, the packs are coming back from archive storage; run again.
EXIT_WAITING = 75


def register(commands: Subcommands) -> None:
    """Add the ``snapshot`` command group and its actions."""
    snapshot = commands.add_parser("snapshot", help="create, inspect, verify and restore snapshots")
    actions = snapshot.add_subparsers(dest="action", metavar="ACTION", required=True)
    # what every action on an existing store takes
    on_store = argparse.ArgumentParser(add_help=False)
    add_store(on_store)
    add_json(on_store)

    create = actions.add_parser("create", help="capture the environment into a new snapshot")
    add_environment(create)
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
    add_json(create)
    create.set_defaults(run=_cmd_snapshot_create)

    listing = actions.add_parser("list", help="list the snapshots in the store", parents=[on_store])
    listing.set_defaults(run=_cmd_snapshot_list)

    show = actions.add_parser("show", help="show one snapshot's manifest", parents=[on_store])
    show.add_argument("id")
    show.set_defaults(run=_cmd_snapshot_show)

    diff = actions.add_parser(
        "diff", help="compare two snapshots (drift-report shape)", parents=[on_store]
    )
    diff.add_argument("id_a")
    diff.add_argument("id_b")
    diff.set_defaults(run=_cmd_snapshot_diff)

    verify = actions.add_parser(
        "verify", help="re-read every object and check every hash", parents=[on_store]
    )
    verify.add_argument("id", nargs="?")
    verify.add_argument("--all", action="store_true", help="verify every snapshot (default)")
    _add_wait(verify)
    verify.set_defaults(run=_cmd_snapshot_verify)

    delete = actions.add_parser(
        "delete", help="delete a snapshot and free unreferenced objects", parents=[on_store]
    )
    delete.add_argument("id")
    delete.set_defaults(run=_cmd_snapshot_delete)

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
    repair.set_defaults(run=_cmd_snapshot_repair)

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
    _add_wait(restore)
    restore.set_defaults(run=_cmd_snapshot_restore)

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
    prune.set_defaults(run=_cmd_snapshot_prune)

    export = actions.add_parser("export", help="export a snapshot's packages as a lockfile")
    export.add_argument("id")
    export.add_argument("--format", required=True, choices=("requirements", "pylock", "conda"))
    export.add_argument(
        "--interpreter", type=int, default=0, metavar="N", help="which captured interpreter (0)"
    )
    export.add_argument("-o", "--output", type=Path, help="write to a file instead of stdout")
    add_store(export)
    export.set_defaults(run=_cmd_snapshot_export)


def _add_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        action="store_true",
        help="when packs are in archive storage, keep checking until they are back, then go on"
        f" (default: ask for them back, say when they will be, exit {EXIT_WAITING})",
    )
    parser.add_argument(
        "--poll",
        type=_seconds,
        default=900.0,
        metavar="SECONDS",
        help="with --wait: seconds between checks (default 900)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def _archive_poller(args: argparse.Namespace) -> ArchivePoller | None:
    """With ``--wait``, a poller that prints each wait on stderr; else None (no waiting)."""
    from westtek_core.snapshot.archive import ArchivePoller

    if not args.wait:
        return None

    def tell(wait: ArchiveWait) -> None:
        print(f"westtek: {wait}", file=sys.stderr, flush=True)

    return ArchivePoller(interval=args.poll, on_wait=tell)


def _waiting(args: argparse.Namespace, wait: ArchiveWait) -> int:
    """Report packs coming back from archive storage (``--json``: ``{"waiting": …}``)."""
    emit(args, {"waiting": wait.to_json()}, lambda console: print(wait))
    return EXIT_WAITING


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"label {text!r} is not KEY=VALUE")
    return key, value


def _cmd_snapshot_create(args: argparse.Namespace) -> int:
    from westtek_core.capture import capture_environment
    from westtek_core.snapshot import create_snapshot

    if not args.root.is_dir():
        raise CommandError(f"--root {args.root} is not a directory")
    repo = open_repo(args, create=True, encrypt=args.encrypt)
    capture = capture_environment(args.python, args.root, include_secrets=args.include_secrets)
    with progress_bar(args, "snapshot") as progress:
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
            f"  {result.files} files, {human_size(result.size_bytes)}; "
            f"{human_size(result.new_bytes)} new in the store, "
            f"{result.unchanged_files} files unchanged since the last snapshot"
        )
        for secret in result.secrets:
            where = f", line {secret['line']}" if "line" in secret else ""
            console.print(
                f"  secret {secret['action']}: {secret['area']}/{secret['path']}"
                f" ({secret['kind']}{where})"
            )
        for skip in result.skipped:
            where = f"{skip['area']}/{skip['path']}"
            if skip.get("stored"):  # kept, but worth knowing (a link out of the tree)
                console.print(f"  [dim]note[/] {where}: {skip['reason']}")
            else:
                console.print(f"  [yellow]skipped[/] {where}: {skip['reason']}")

    emit(args, result.to_json(), human)
    return 0


def _cmd_snapshot_list(args: argparse.Namespace) -> int:
    from westtek_core.snapshot import snapshot_summaries

    repo = open_repo(args)
    rows = sorted(
        snapshot_summaries(repo),
        key=lambda r: str(r["timestamp"]),
    )

    def human(console: Console) -> None:
        from rich.table import Table

        table = Table("id", "time", "environment", "size", "packages", "notebooks", "note")
        for row in rows:
            table.add_row(
                row["id"][:12],
                str(row["timestamp"]),
                str(row["environment_id"]),
                human_size(row["size_bytes"]),
                str(row["packages"]),
                str(row["notebook_count"]),
                row["notes"],
            )
        console.print(table if rows else "no snapshots in this store")

    emit(args, {"snapshots": rows}, human)
    return 0


def _cmd_snapshot_show(args: argparse.Namespace) -> int:
    from westtek_core.snapshot import iter_files, load_snapshot

    manifest = load_snapshot(open_repo(args), args.id)

    def human(console: Console) -> None:
        console.print(f"snapshot {manifest['id']}")
        for key in ("timestamp", "environment_id", "created_by", "notes", "checksum"):
            console.print(f"  {key}: {manifest.get(key)}")
        console.print(f"  size: {human_size(manifest.get('size_bytes', 0))}")
        for interp in manifest.get("interpreters", []):
            console.print(
                f"  interpreter {interp.get('path')} (Python {interp.get('version')}): "
                f"{len(interp.get('packages', []))} packages"
            )
        for kernel in manifest.get("kernels", []):
            console.print(f"  kernel {kernel['name']}: {' '.join(kernel['spec'].get('argv', []))}")
        files = sum(1 for _ in iter_files(manifest))
        console.print(f"  {files} files, {manifest['metadata']['notebook_count']} notebooks")

    emit(args, manifest, human)
    return 0


def _cmd_snapshot_diff(args: argparse.Namespace) -> int:
    from westtek_core.drift import diff_manifests
    from westtek_core.snapshot import load_snapshot

    repo = open_repo(args)
    report = diff_manifests(load_snapshot(repo, args.id_a), load_snapshot(repo, args.id_b))

    emit(args, report.to_json(), lambda console: print_drift(console, report))
    return 0


def _cmd_snapshot_verify(args: argparse.Namespace) -> int:
    from westtek_core.snapshot import resolve_snapshot_id, verify_snapshots
    from westtek_core.store import ArchiveWait

    repo = open_repo(args)
    ids = [resolve_snapshot_id(repo, args.id)] if args.id and not args.all else None
    try:
        report = verify_snapshots(repo, ids, archive=_archive_poller(args))
    except ArchiveWait as wait:
        return _waiting(args, wait)

    def human(console: Console) -> None:
        for problem in report.problems:
            console.print(f"[red]problem[/] {problem}")
        for damage in report.damaged:
            console.print(f"[red]damaged[/] snapshot {damage['snapshot'][:12]}: {damage['file']}")
        if report.archived_packs:
            console.print(
                f"[dim]{report.archived_packs} packs in archive storage that no snapshot"
                " verified needs were not read[/]"
            )
        verdict = "[green]ok[/]" if report.ok else "[red]DAMAGED[/]"
        console.print(f"verified {len(report.snapshots)} snapshot(s): {verdict}")

    emit(args, report.to_json(), human)
    return 0 if report.ok else 1


def _cmd_snapshot_delete(args: argparse.Namespace) -> int:
    from westtek_core.snapshot import delete_snapshot

    result = delete_snapshot(open_repo(args), args.id)
    emit(args, result, lambda c: c.print(f"deleted snapshot {result['id']}"))
    return 0


def _cmd_snapshot_repair(args: argparse.Namespace) -> int:
    from westtek_core.snapshot import Progress as Done
    from westtek_core.snapshot.repair import repair_store

    with progress_bar(args, "repair") as bar:

        def packs_read(done: int, total: int) -> None:
            if bar:
                bar(Done(done, total, done, total))

        report = repair_store(open_repo(args), workspace_root=args.root, progress=packs_read)

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

    emit(args, report.to_json(), human)
    return 0 if report.ok else 1


def _cmd_snapshot_restore(args: argparse.Namespace) -> int:
    from westtek_core.snapshot import load_snapshot, restore_snapshot
    from westtek_core.store import ArchiveWait

    repo = open_repo(args)
    try:
        report = restore_snapshot(
            repo,
            load_snapshot(repo, args.id),
            args.target,
            force=args.force,
            validate=not args.no_validate,
            mode=args.mode,
            execute_notebooks=args.execute_notebooks,
            archive=_archive_poller(args),
        )
    except ArchiveWait as wait:
        return _waiting(args, wait)

    def human(console: Console) -> None:
        console.print(
            f"restored {report.files} files ({human_size(report.bytes)}) of snapshot "
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

    emit(args, report.to_json(), human)
    return 0 if report.ok else 1


def _cmd_snapshot_export(args: argparse.Namespace) -> int:
    from westtek_core.snapshot import export_snapshot, load_snapshot

    text = export_snapshot(load_snapshot(open_repo(args), args.id), args.format, args.interpreter)
    if args.output:
        write_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_snapshot_prune(args: argparse.Namespace) -> int:
    from westtek_core.drift.baseline import baseline_manifest
    from westtek_core.snapshot import snapshot_summaries
    from westtek_core.snapshot.retention import (
        RetentionPolicy,
        apply_retention,
        plan_retention,
        reclaimable_bytes,
    )

    policy = RetentionPolicy(args.keep_last, args.keep_daily, args.keep_weekly, args.keep_monthly)
    repo = open_repo(args)
    rows = snapshot_summaries(repo)
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
            f"{human_size(freed)} {'would be ' if args.dry_run else ''}freed"
        )
        for sid in plan.delete:
            console.print(f"  delete {sid[:12]}")
        for sid, why in plan.keep.items():
            console.print(f"  keep   {sid[:12]}: {', '.join(why)}")

    emit(args, result, human)
    return 0
