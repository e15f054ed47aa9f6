"""``westtek rollback``: put the live environment back to a snapshot, in place.

``--to ID`` rolls back (after a safety snapshot), ``--dry-run`` lists the steps instead,
``--resume`` finishes an interrupted rollback and ``--undo`` puts the safety snapshot back.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from westtek_core.areas import AREAS
from westtek_core.cli.common import (
    CommandError,
    add_environment,
    add_json,
    emit,
    open_repo,
    print_drift,
)

if TYPE_CHECKING:
    from rich.console import Console

    from westtek_core.cli.common import Subcommands


def register(commands: Subcommands) -> None:
    """Add the ``rollback`` command."""
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
        choices=AREAS,
        help="roll back only this area (repeatable; default: all three)",
    )
    rollback.add_argument(
        "--dry-run",
        action="store_true",
        help="with --to: list every step the rollback would take; change nothing",
    )
    add_environment(rollback)
    rollback.set_defaults(root=None)  # --resume and --undo reuse the rollback's own
    add_json(rollback)
    rollback.set_defaults(run=_cmd_rollback, usage_problem=_usage_problem)


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.dry_run and not args.target:
        return "rollback --dry-run previews a rollback: use it with --to ID"
    return None


def _cmd_rollback(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from westtek_core import rollback

    repo = open_repo(args)
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
        print_drift(out, report.drift)

    emit(args, report.to_json(), human)
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

    emit(args, plan.to_preview(), human)
    return 0
