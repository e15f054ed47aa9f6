"""The live environment's capture, taken again only when something it depends on changed.

A capture probes every interpreter in a subprocess and walks the workspace: far too slow
for each request of the side bar and each poll of the automatic snapshots. The capture is
kept with its stamp (the modification times of its directories, :func:`environment_stamp`)
and reused while a stat of those directories gives the same stamp.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from westtek_core.drift.detect import capture_live
from westtek_core.drift.watch import environment_stamp

Stamp = tuple[tuple[str, int], ...]

# file systems stamp modification times coarsely: a change this close before a first
# capture began may not be in it
_MTIME_SLACK_NS = 100_000_000


class LiveCapture:
    """The live capture of ``pythons`` and ``root``, cached by stamp; safe across threads."""

    def __init__(self, pythons: list[str] | None, root: Path) -> None:
        self.pythons = pythons
        self.root = root
        self._cache: tuple[Stamp, Any] | None = None
        # one capture at a time: a request during the start-up prefetch waits for it rather
        # than capturing again beside it
        self._lock = threading.Lock()

    def get(self) -> Any:
        """The live capture (reused while nothing it depends on changed)."""
        return self.stamped()[1]

    def stamped(self) -> tuple[Stamp, Any]:
        """The live capture and the stamp it was checked against.

        The stamp is taken before capturing again, so a change during that capture is seen
        next time. The first capture can only be stamped after (its directories are not
        known before), so it is kept only if none of them changed since it began.
        """
        with self._lock:
            cached = self._cache
            stamp = environment_stamp(cached[1], self.root) if cached else None
            if cached and cached[0] == stamp:
                return cached
            began = time.time_ns() - _MTIME_SLACK_NS
            capture = capture_live(self.pythons, self.root)
            if stamp is None:
                stamp = environment_stamp(capture, self.root)
                if any(mtime >= began for _, mtime in stamp):
                    self._cache = None  # changed while captured: capture again next time
                    return stamp, capture
            self._cache = (stamp, capture)
            return stamp, capture
