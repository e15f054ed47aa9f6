"""The ``westtek`` command line: a thin shell over westtek_core.

Every command takes ``--json`` for machine output; usage errors exit 2 (argparse's
convention) and bad input exits non-zero with a one-line message.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from westtek_core.status import status_report
from westtek_core.version import __version__

DESCRIPTION = (
    "West Tek Environment Preservation: capture, verify and restore reproducible "
    "Jupyter research environments."
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser for every ``westtek`` command."""
    parser = argparse.ArgumentParser(prog="westtek", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"westtek {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    status = commands.add_parser("status", help="show the suite's version and capabilities")
    status.add_argument("--json", action="store_true", help="print machine-readable JSON")
    return parser


def _cmd_status(args: argparse.Namespace) -> int:
    report = status_report("cli")
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(f"westtek {report.version} (Python {report.python})")
        print("capabilities: " + ", ".join(report.capabilities))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "status":
        return _cmd_status(args)
    parser.error(f"unknown command {args.command!r}")  # exits 2


if __name__ == "__main__":
    sys.exit(main())
