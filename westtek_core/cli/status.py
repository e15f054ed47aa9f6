"""``westtek status``: the suite's version and what this installation can do."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from westtek_core.cli.common import add_json, emit

if TYPE_CHECKING:
    from rich.console import Console

    from westtek_core.cli.common import Subcommands


def register(commands: Subcommands) -> None:
    """Add the ``status`` command."""
    status = commands.add_parser("status", help="show the suite's version and capabilities")
    add_json(status)
    status.set_defaults(run=_cmd_status)


def _cmd_status(args: argparse.Namespace) -> int:
    from westtek_core.status import status_report  # reads installed metadata: slow to import

    report = status_report("cli")

    def human(console: Console) -> None:
        console.print(f"westtek {report.version} (Python {report.python})")
        console.print("capabilities: " + ", ".join(report.capabilities))

    emit(args, report.to_json(), human)
    return 0
