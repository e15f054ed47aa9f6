"""The pre-start step: put the researcher's latest snapshot back, then exec the server.

Run inside the single-user server's own environment, as the head of its command::

    python -m westtek_spawner.prestart [--only packages ...] -- jupyterhub-singleuser ...

A fresh container starts from the base image and has lost whatever the researcher
pip-installed, the kernels they added and the Jupyter config they edited. Before
JupyterLab opens, this step compares the live environment with the researcher's latest
snapshot (of ``WESTTEK_ENVIRONMENT_ID``, in ``WESTTEK_STORE``) and, when they differ, rolls
the environment back to it with :func:`westtek_core.rollback.run_rollback` — from the
store, offline, with its safety snapshot and journal. The workspace (their home) is never
touched. A snapshot whose packs are in archive storage is asked back and left to the server,
which rolls back (or, for a take-over, takes over) by itself once they are back. Then it
replaces itself with the server's command.

While it works it answers HTTP on the server's own port with ``503`` and a JSON status
(header ``X-WestTek-Prestart``): the spawner, which waits for that port anyway, turns each
status into a progress event on the spawn page. A failed restore is reported and logged,
and the server starts all the same: a researcher is never locked out of their server
because their environment could not be put back.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from westtek_core.areas import AREAS

if TYPE_CHECKING:
    from westtek_core.rollback.container_start import PendingTakeOver

STATUS_HEADER = "X-WestTek-Prestart"

Report = Callable[[int, str], None]


@dataclass
class RestoreOutcome:
    """What the pre-start restore did.

    ``status`` is one of ``no-snapshot``, ``unchanged``, ``restored``, ``partial``,
    ``archived`` (the snapshot's packs are in archive storage: their restore was requested,
    the server starts as it is and rolls back by itself once they are back, see
    :mod:`westtek_core.rollback.container_start`) or ``failed``.
    """

    status: str
    message: str
    snapshot: str | None = None
    steps: int = 0
    drift_status: str | None = None
    notes: list[str] = field(default_factory=list)
    # what is still to be put back (archived): the server restores the same areas
    areas: list[str] = field(default_factory=list)
    # a take-over left to the server, its packs in archive storage (PendingTakeOver's entry)
    take_over: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The outcome as JSON (kept in ``<data dir>/prestart.json``, read by the server)."""
        return asdict(self)


def _changes(count: int) -> str:
    return f"{count} change" if count == 1 else f"{count} changes"


def restore_latest(
    store: str,
    environment_id: str,
    areas: Sequence[str] = AREAS,
    report: Report | None = None,
    snapshot: str | None = None,
) -> RestoreOutcome:
    """Roll the live environment back to its latest snapshot when it differs from it.

    ``snapshot`` (an id or prefix) restores that snapshot instead of the latest: a server
    launched from a snapshot, e.g. a successor starting from their predecessor's.
    """
    from westtek_core import rollback
    from westtek_core.paths import default_key_file
    from westtek_core.rollback.container_start import ARCHIVED, empty_workspace
    from westtek_core.snapshot.retention import CONTAINER_START
    from westtek_core.store import Repository, StoreError

    def say(progress: int, message: str) -> None:
        if report is not None:
            report(progress, message)

    say(
        80,
        "Restoring your environment: looking for "
        + (f"snapshot {snapshot[:12]}" if snapshot else "your latest snapshot"),
    )
    try:
        repo = Repository.open(store, create=False, key_file=default_key_file())
    except StoreError as e:
        print(f"westtek prestart: {e}", file=sys.stderr)
        return RestoreOutcome("no-snapshot", "No snapshot store yet: nothing to restore")
    try:
        target: dict[str, Any] | None
        if snapshot:
            from westtek_core.snapshot import load_snapshot

            target = load_snapshot(repo, snapshot)
        else:
            target = rollback.latest_snapshot(repo, environment_id)
        if target is None:
            return RestoreOutcome(
                "no-snapshot", f"No snapshot of {environment_id} yet: nothing to restore"
            )
        short = str(target["id"])[:12]
        say(82, f"Restoring your environment: comparing it with snapshot {short}")

        def step_done(state: rollback.RollbackProgress) -> None:
            share = state.done / state.total if state.total else 1.0
            say(
                84 + int(6 * share),
                f"Restoring your environment from snapshot {short}: "
                f"{state.done}/{state.total} ({state.step.describe()})",
            )

        # A restore cut short in an earlier container: finish its journal first, then
        # plan afresh from what is live now (its done steps may have died with the container).
        if rollback.unfinished_journal(repo) is not None:
            try:
                rollback.resume_rollback(repo, progress=step_done)
            except rollback.RollbackError as e:
                say(83, f"Restoring your environment: an earlier restore could not resume ({e})")
        # A year on, the lifecycle has moved the snapshot's packs to Deep Archive: ask for
        # them back and start now (a thaw takes hours); the server then restores by itself.
        from westtek_core.snapshot import referenced_chunks
        from westtek_core.snapshot.archive import archive_wait

        needed = referenced_chunks(target, workspace=False)  # a rollback never reads the workspace
        waiting = archive_wait(repo, needed, f"snapshot {short}")
        if waiting is not None:
            return RestoreOutcome(
                ARCHIVED,
                f"Not restored yet, {waiting}; starting with the environment as it is: "
                "it is put back by itself once they are back (the West Tek side bar shows "
                "the wait)",
                snapshot=str(target["id"]),
                areas=list(areas),
            )
        result = rollback.run_rollback(
            repo,
            str(target["id"]),
            None,
            empty_workspace(),
            areas,
            step_done,
            origin=CONTAINER_START,
        )
    except Exception as e:  # never keep a researcher from their server
        return RestoreOutcome(
            "failed",
            f"Could not restore your environment ({type(e).__name__}: {e}); "
            "starting with the environment as it is",
        )
    finally:
        repo.close()
    steps = result.steps_done
    if not result.steps:
        return RestoreOutcome(
            "unchanged",
            f"Your environment matches your latest snapshot {short}",
            snapshot=str(target["id"]),
            drift_status=result.status,
            notes=list(result.notes),
        )
    if result.status != "STABLE":
        left = len(result.drift.changes)
        return RestoreOutcome(
            "partial",
            f"Restored {_changes(steps)} from snapshot {short}; {left} could not be put back "
            "(see the Drift panel)",
            snapshot=str(target["id"]),
            steps=steps,
            drift_status=result.status,
            notes=list(result.notes),
        )
    return RestoreOutcome(
        "restored",
        f"Restored your environment from snapshot {short} ({_changes(steps)} put back)",
        snapshot=str(target["id"]),
        steps=steps,
        drift_status=result.status,
        notes=list(result.notes),
    )


def take_over_environment(
    store: str,
    environment_id: str,
    predecessor: str,
    workspace: Path,
    report: Report,
    snapshot: str | None = None,
) -> tuple[str, PendingTakeOver | None]:
    """Bring a predecessor's latest snapshot into the workspace; what to tell the researcher.

    Their work goes into a folder, their packages into a kernel of its own
    (:mod:`westtek_core.kb.take_over`); the server then opens on its start page. When the
    snapshot's packs are in archive storage (the predecessor left long ago) their restore is
    requested and the take-over left to the server, which does it once they are back: that
    is the pending take-over returned. A failure is told and the server starts all the same.
    """
    from jupyter_core.paths import jupyter_data_dir

    from westtek_core.kb.take_over import take_over
    from westtek_core.paths import default_key_file
    from westtek_core.rollback.container_start import PendingTakeOver, record_path
    from westtek_core.snapshot import RestoreError
    from westtek_core.store import ArchiveWait, Repository, StoreError

    report(93, f"Bringing {predecessor}'s work and kernel into your workspace")
    try:
        repo = Repository.open(store, create=False, key_file=default_key_file())
        try:
            kernels = Path(jupyter_data_dir()) / "kernels"
            done = take_over(
                repo, environment_id, predecessor, workspace, kernels_dir=kernels, snapshot=snapshot
            )
        finally:
            repo.close()
    except ArchiveWait as wait:
        pending = PendingTakeOver(environment_id, predecessor, snapshot, record_path())
        return (
            f"Not taken over yet, {wait}: {predecessor}'s work comes into your workspace by "
            "itself once the data is back (the West Tek side bar shows the wait)",
            pending,
        )
    except (StoreError, RestoreError, OSError) as e:
        return f"Could not take over {environment_id}: {e}", None
    return f"{predecessor}'s work is in {done.folder}/: open {done.start_page}", None


# -- the status server ---------------------------------------------------------------------


class StatusServer:
    """Answers every request with 503 and the current status, on the server's port."""

    def __init__(self, host: str, port: int) -> None:
        self.status: dict[str, Any] = {"progress": 80, "message": "Preparing your environment"}
        self.final = False
        self.final_served = threading.Event()
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.dumps(owner.status).encode()
                self.send_response(503)
                self.send_header(STATUS_HEADER, "1")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(body)
                owner.requests += 1
                if owner.final:
                    owner.final_served.set()

            do_HEAD = do_GET  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> None:
        """Serve in a background thread."""
        self.thread.start()

    def set(self, progress: int, message: str, final: bool = False) -> None:
        """Update the status every later request sees."""
        self.status = {"progress": progress, "message": message}
        self.final = final

    def close(self, linger: float) -> None:
        """Stop serving; first wait up to ``linger`` s for the spawner to see the final status."""
        self.final_served.wait(linger)
        self.httpd.shutdown()
        self.httpd.server_close()


def _bind_address(service_url: str) -> tuple[str, int] | None:
    parsed = urlparse(service_url)
    if not parsed.port:
        return None
    return (parsed.hostname or "127.0.0.1", parsed.port)


def build_parser() -> argparse.ArgumentParser:
    """The command line: options, then ``--`` and the server's command."""
    parser = argparse.ArgumentParser(
        prog="python -m westtek_spawner.prestart",
        description="Restore the latest snapshot's environment, then run the server.",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=AREAS,
        help="restore only this area (repeatable; default: all three)",
    )
    parser.add_argument("--store", help="the snapshot store (default: $WESTTEK_STORE)")
    parser.add_argument(
        "--environment-id", help="whose snapshots (default: $WESTTEK_ENVIRONMENT_ID)"
    )
    parser.add_argument(
        "--snapshot", metavar="ID", help="restore this snapshot instead of the latest one"
    )
    parser.add_argument(
        "--skip-restore",
        action="store_true",
        help="leave the environment as it is (a take-over only)",
    )
    parser.add_argument(
        "--take-over",
        metavar="ENVIRONMENT",
        help="bring this environment's latest snapshot into the workspace: the work into a "
        "folder, the packages as a kernel of its own (see --predecessor)",
    )
    parser.add_argument("--predecessor", help="whose environment --take-over takes over")
    parser.add_argument(
        "--take-over-snapshot",
        metavar="ID",
        help="the snapshot --take-over takes (default: the environment's latest)",
    )
    parser.add_argument(
        "--workspace",
        help="the server's workspace (default: $JUPYTERHUB_ROOT_DIR, else the current folder)",
    )
    parser.add_argument(
        "--linger",
        type=float,
        default=5.0,
        help="most seconds to wait for the spawner to see the final status (5)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the server's command")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Restore, then exec the server's command (returns only when there is none to run)."""
    args = build_parser().parse_args(argv)
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("westtek prestart: error: no server command after --", file=sys.stderr)
        return 2
    if args.take_over and not args.predecessor:
        print("westtek prestart: error: --take-over needs --predecessor", file=sys.stderr)
        return 2

    address = _bind_address(os.environ.get("JUPYTERHUB_SERVICE_URL", ""))
    server: StatusServer | None = None
    if address is not None:
        try:
            server = StatusServer(*address)
            server.start()
        except OSError as e:  # the port is taken: restore without a status page
            print(f"westtek prestart: no status on {address}: {e}", file=sys.stderr)

    def report(progress: int, message: str) -> None:
        print(f"westtek prestart: {message}", file=sys.stderr, flush=True)
        if server is not None:
            server.set(progress, message)

    from westtek_core.paths import default_store
    from westtek_core.rollback.container_start import write_record
    from westtek_core.snapshot import default_environment_id

    started = time.monotonic()
    store = args.store or default_store()
    if args.skip_restore:
        outcome = RestoreOutcome("unchanged", "Your environment is left as it is")
    else:
        outcome = restore_latest(
            store,
            args.environment_id or default_environment_id(),
            tuple(args.only or AREAS),
            report,
            snapshot=args.snapshot,
        )
    report(92, outcome.message)
    if args.take_over:
        root = args.workspace or os.environ.get("JUPYTERHUB_ROOT_DIR") or os.getcwd()
        taken, pending = take_over_environment(
            store,
            args.take_over,
            args.predecessor,
            Path(root).expanduser(),
            report,
            args.take_over_snapshot,
        )
        outcome.take_over = pending.to_json() if pending else None
        outcome.notes.append(taken)
        outcome.message = f"{outcome.message}. {taken}"
        report(95, taken)
    record = {**outcome.to_json(), "seconds": round(time.monotonic() - started, 3)}
    try:
        write_record(record)
    except OSError as e:
        print(f"westtek prestart: could not record the outcome: {e}", file=sys.stderr)
    if server is not None:
        server.set(95 if args.take_over else 92, outcome.message, final=True)
        server.close(args.linger)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(command[0], command)
    return 0  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    sys.exit(main())
