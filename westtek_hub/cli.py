"""``westtek audit verify``: check the hub service's audit log from the command line.

The ``westtek`` parser finds this group through the ``westtek.cli_commands`` entry point
(see pyproject.toml), so westtek_core never imports the hub package. The database and
SQLAlchemy are imported only when the command runs: every ``westtek`` call loads this module.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from westtek_core.cli.common import CommandError, add_json, emit

if TYPE_CHECKING:
    from westtek_core.cli.common import Subcommands


def register(commands: Subcommands) -> None:
    """Add the ``audit`` command group to the ``westtek`` parser."""
    audit = commands.add_parser("audit", help="the hub service's audit log")
    actions = audit.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser(
        "verify", help="check every link of the audit log's keyed chain and its anchored head"
    )
    verify.add_argument(
        "--db",
        metavar="URL",
        help="the hub service's database (default: $WESTTEK_HUB_DB_URL, else its SQLite file)",
    )
    verify.add_argument(
        "--key-file",
        metavar="PATH",
        help="the chain's hex HMAC key (default: $WESTTEK_AUDIT_KEY, else "
        "$WESTTEK_AUDIT_KEY_FILE, else the service's 'audit_key')",
    )
    verify.add_argument(
        "--anchor",
        metavar="PATH|s3://BUCKET/PREFIX",
        help="where the service anchors the chain's head (default: $WESTTEK_AUDIT_ANCHOR, "
        "else the service's 'audit_anchor.json')",
    )
    add_json(verify)
    verify.set_defaults(run=_cmd_audit_verify)


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from westtek_core.paths import data_dir
    from westtek_hub.audit import verify_chain
    from westtek_hub.audit_anchor import AnchorError
    from westtek_hub.audit_trail import AuditKeyError, AuditTrail
    from westtek_hub.db import make_engine, session_factory
    from westtek_hub.models import AuditEntry

    service_dir = data_dir() / "hub"
    url = args.db or os.environ.get("WESTTEK_HUB_DB_URL")
    if not url:
        path = service_dir / "registry.sqlite"
        if not path.exists():
            raise CommandError(f"no hub registry at {path}: pass --db URL")
        url = f"sqlite:///{path}"
    trail = AuditTrail(data_dir=str(service_dir))  # the service's defaults, unless named here
    if args.key_file:
        trail.key, trail.key_file = "", args.key_file
    if args.anchor:
        trail.anchor = args.anchor
    try:
        chain = trail.chain()
    except (AuditKeyError, AnchorError) as e:
        raise CommandError(str(e)) from None
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            ok, count, problem = verify_chain(
                session.scalars(select(AuditEntry).order_by(AuditEntry.seq)), chain
            )
    except Exception as e:  # noqa: BLE001 — any database failure is one line for the user
        raise CommandError(f"cannot read the audit log at {engine.url!r}: {e}") from e
    finally:
        engine.dispose()
    payload = {"verified": ok, "checked": count, "problem": None if ok else problem}
    emit(
        args,
        payload,
        lambda c: c.print(
            f"audit log verified: {count} entries" if ok else f"[red]BROKEN[/]: {problem}"
        ),
    )
    return 0 if ok else 1
