"""The ``westtek`` command line: a thin shell over westtek_core.

Every command takes ``--json`` for machine output; usage errors exit 2 (argparse's
convention); bad input exits 1 with one line on stderr, never a traceback.

One module per command group (``status``, ``snapshot``, ``drift``, ``baseline``,
``rollback``, ``kb`` with ``ask``) over :mod:`westtek_core.cli.common`, each with a
``register(commands)`` that adds its parsers and gives every leaf parser a ``run`` default.
Other packages add groups through the ``westtek.cli_commands`` entry point group, whose
entries name such a ``register`` function: that is how ``westtek audit`` comes from the hub
package without westtek_core importing it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from westtek_core.cli import baseline, drift, kb, rollback, snapshot, status
from westtek_core.cli.common import CommandError

if TYPE_CHECKING:
    from westtek_core.cli.common import Subcommands

__all__ = ["COMMAND_GROUPS_ENTRY_POINT", "CommandError", "build_parser", "main"]

log = logging.getLogger(__name__)

DESCRIPTION = (
    "West Tek Environment Preservation: capture, verify and restore reproducible "
    "Jupyter research environments."
)

#: The entry point group through which other packages add command groups.
COMMAND_GROUPS_ENTRY_POINT = "westtek.cli_commands"

_BUILTIN_GROUPS: tuple[Callable[[Subcommands], None], ...] = (
    status.register,
    snapshot.register,
    drift.register,
    baseline.register,
    rollback.register,
    kb.register,
)


def entry_points(group: str) -> Any:
    """The installed entry points of ``group``."""
    from importlib import metadata  # slow to import: only the commands that need it pay

    return metadata.entry_points(group=group)


def _installed_groups() -> list[Callable[[Subcommands], None]]:
    """The ``register`` functions other installed packages declare, by entry point name."""
    found = []
    for entry in sorted(entry_points(group=COMMAND_GROUPS_ENTRY_POINT), key=lambda e: e.name):
        try:
            found.append(entry.load())
        except Exception as e:  # noqa: BLE001 — a broken plug-in must not take the CLI down
            log.warning("westtek: command group %r (%s) not loaded: %s", entry.name, entry.value, e)
    return found


class _VersionAction(argparse.Action):
    """``--version``, reading the installed version only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, argparse.SUPPRESS, nargs=0, help="show the version and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from westtek_core.version import __version__

        print(f"westtek {__version__}")
        parser.exit()


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Build the argument parser for every ``westtek`` command, installed groups included.

    When ``argv`` starts with a built-in command, installed groups are left out: finding
    them reads every installed distribution's entry points, which cost a cold built-in
    command more than its own work.
    """
    parser = argparse.ArgumentParser(prog="westtek", description=DESCRIPTION)
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _BUILTIN_GROUPS:
        register(commands)
    if not (argv and argv[0] in commands.choices):
        for register in _installed_groups():
            register(commands)
    return parser


def _one_line_errors() -> tuple[type[Exception], ...]:
    """The errors reported in one line, not a traceback.

    Imported only when a command fails: they live in packages most commands never load
    (a cold ``westtek kb search`` would otherwise import capture, snapshot and store).
    """
    from westtek_core.capture import ProbeError
    from westtek_core.snapshot import ManifestError, RestoreError
    from westtek_core.store import StoreError

    return (CommandError, StoreError, RestoreError, ManifestError, ProbeError, ValueError, OSError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    usage_problem = getattr(args, "usage_problem", None)
    if usage_problem and (problem := usage_problem(args)):
        parser.error(problem)  # exits 2
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("westtek: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if not isinstance(e, _one_line_errors()):
            raise
        print(f"westtek: error: {e}", file=sys.stderr)
        return 1
