"""What every ``westtek`` command group shares: errors, options, output and the store.

A command group registers its parsers with ``register(commands)`` and gives each leaf
parser a ``run`` default, the function that carries the command out and returns its exit
status. Commands print through :func:`emit`, so ``--json`` works the same everywhere.
rich is imported where output is made: a command with ``--json`` never loads it.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import TypeAlias

    from rich.console import Console

    #: What ``register(commands)`` receives: the top-level ``add_subparsers()`` action.
    Subcommands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


class CommandError(Exception):
    """Bad input or a failed operation: reported as one line, exit status 1."""


def add_json(parser: argparse.ArgumentParser) -> None:
    """Give a command the ``--json`` flag that :func:`emit` obeys."""
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def add_store(parser: argparse.ArgumentParser) -> None:
    """Give a command the options that locate and unlock the snapshot store."""
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


def add_environment(parser: argparse.ArgumentParser) -> None:
    """Give a command the options that say which live environment it works on."""
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
    add_store(parser)


def emit(args: argparse.Namespace, payload: Any, human: Callable[[Console], None]) -> None:
    """Print a command's result: ``payload`` as one JSON line with ``--json``, else ``human``."""
    if args.json:
        print(json.dumps(payload, indent=None, default=str))
    else:
        from rich.console import Console

        human(Console())


def open_repo(args: argparse.Namespace, *, create: bool = False, encrypt: bool = False) -> Any:
    """Open the store named by ``--store``/``--key-file`` (or their defaults).

    A store created here is encrypted with ``--kms-key-id``, else with
    ``$WESTTEK_SNAPSHOT_KMS_KEY_ARN`` when set (as in a notebook server on AWS), under the
    server's lab's encryption context.
    """
    from westtek_core.labs import lab_encryption_context, server_lab_id
    from westtek_core.paths import default_key_file, default_store
    from westtek_core.store import Repository
    from westtek_core.store.crypto import SNAPSHOT_KMS_KEY_ENV

    location = args.store or default_store()
    kms_key_id = getattr(args, "kms_key_id", None) or os.environ.get(SNAPSHOT_KMS_KEY_ENV)
    return Repository.open(
        location,
        create=create,
        key_file=args.key_file or default_key_file(),
        encrypt=encrypt,
        kms_key_id=kms_key_id or None,
        kms_context=lab_encryption_context(server_lab_id()),
    )


@contextmanager
def progress_bar(args: argparse.Namespace, label: str) -> Iterator[Callable[[Any], None] | None]:
    """A byte-progress bar on stderr's terminal; ``None`` with ``--json`` or no terminal."""
    if args.json:  # before importing rich: 40 ms of a ~0.6 s unchanged ``snapshot create``
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = (TextColumn(label), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(state: Any) -> None:
            bar.update(task, completed=state.bytes_done, total=state.bytes_total)

        yield update


def human_size(size: float) -> str:
    """A byte count for people: ``512 B``, ``1.5 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def print_drift(console: Console, report: Any) -> None:
    """A drift report as a status line and a table of changes, most severe first."""
    colour = {"info": "green", "minor": "yellow", "critical": "red"}
    status_colour = {"STABLE": "green", "MINOR_DRIFT": "yellow", "CRITICAL_DRIFT": "red"}
    status = report.status.value
    console.print(f"[{status_colour[status]}]{status}[/] (baseline {report.baseline[:12]})")
    if not report.changes:
        console.print("no differences")
        return
    from rich.table import Table

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
