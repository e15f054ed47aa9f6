"""``westtek baseline set ID``: choose the snapshot an environment's drift is measured against."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from westtek_core.cli.common import add_environment, add_json, emit, open_repo

if TYPE_CHECKING:
    from westtek_core.cli.common import Subcommands


def register(commands: Subcommands) -> None:
    """Add the ``baseline`` command group."""
    baseline = commands.add_parser("baseline", help="choose the snapshot drift is measured against")
    actions = baseline.add_subparsers(dest="action", metavar="ACTION", required=True)
    baseline_set = actions.add_parser("set", help="make a snapshot its environment's baseline")
    baseline_set.add_argument("id")
    add_environment(baseline_set)
    add_json(baseline_set)
    baseline_set.set_defaults(run=_cmd_baseline_set)


def _cmd_baseline_set(args: argparse.Namespace) -> int:
    from westtek_core.drift.baseline import set_baseline

    manifest = set_baseline(open_repo(args), args.id)
    payload = {"baseline": manifest["id"], "environment_id": manifest["environment_id"]}
    emit(
        args,
        payload,
        lambda c: c.print(f"baseline of {payload['environment_id']}: {payload['baseline']}"),
    )
    return 0
