"""Run the e2e demo hub (JupyterHub + configurable-http-proxy) for a test outside pytest.

Usage, from the repository root::

    python -m tests.e2e.run_hub --workdir DIR

Starts a :class:`tests.e2e.conftest.HubProcess` in ``DIR`` (the hub's database, config,
log and the users' homes live there), prints one line of JSON ``{"url": ...}`` with the
hub's public URL once it answers, then holds the hub up until stdin reaches EOF or the
process gets SIGTERM/SIGINT. The hub and every user server it started are always ended
on the way out. The browser tests in tests/ui drive it this way.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from tests.e2e.conftest import HubProcess


class _Stop(Exception):
    """Raised in the main thread by the SIGTERM/SIGINT handler."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def _take_stdin() -> int:
    """Keep stdin to ourselves: return a private copy and give fd 0 /dev/null instead.

    Children (the hub, its proxy, user servers) would otherwise inherit it, and with it the
    open file's flags: a Node child makes an inherited socket stdin (what Node's `spawn`
    pipes are) non-blocking, and a blocking read here would then end at once.
    """
    control = os.dup(sys.stdin.fileno())  # not inheritable (PEP 446)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, sys.stdin.fileno())
    os.close(devnull)
    return control


def _wait_for_eof(fd: int) -> None:
    """Block until whoever holds the other end of ``fd`` closes it; a signal interrupts."""
    while True:
        select.select([fd], [], [])
        try:
            if not os.read(fd, 65536):
                return
        except BlockingIOError:
            continue


def main(argv: Sequence[str] | None = None) -> int:
    """Start the hub, announce its URL, serve until told to stop, then clean up."""
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.run_hub", description=__doc__)
    parser.add_argument(
        "--workdir", required=True, type=Path, help="directory for the hub's state (created)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60, help="seconds to wait for the hub to answer"
    )
    args = parser.parse_args(argv)
    workdir: Path = args.workdir.resolve()  # kill_user_servers matches server cwds by prefix
    workdir.mkdir(parents=True, exist_ok=True)

    control = _take_stdin()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    hub = HubProcess(workdir)
    try:
        hub.start(timeout=args.timeout)
        print(json.dumps({"url": hub.url}), flush=True)
        _wait_for_eof(control)
    except _Stop:
        pass
    finally:
        # Clean up whatever happens, and don't let a second signal cut the cleanup short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            hub.stop()
        finally:
            hub.kill_user_servers()
    return 0


if __name__ == "__main__":
    sys.exit(main())
