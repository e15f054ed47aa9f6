"""Snapshots whose packs a lifecycle moved to archive storage (S3 Glacier Deep Archive).

A store's packs go to archive storage after a year (infra/lib/storage-stack.ts); everything
else stays readable, so a store still opens and lists. Before a restore or verify reads packs,
:func:`archive_wait` asks the backend which of the packs it needs are archived, requests
their restore, and says how long to wait (:class:`~westtek_core.store.ArchiveWait`);
:class:`ArchivePoller` waits until they are back, so the operation completes by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from westtek_core.store import ArchiveWait, Availability, Repository

# how often a wait checks whether archived packs are back: a thaw takes hours, and each
# check is a HEAD per pack
ARCHIVE_POLL_SECONDS = 900.0


def archive_wait(repo: Repository, chunk_ids: Iterable[str], what: str = "") -> ArchiveWait | None:
    """None when every pack holding ``chunk_ids`` can be read now; else the wait.

    Packs archived with no restore under way get one requested (the backend's tier), so
    calling this again later is how a wait makes progress. ``what`` names them in messages.
    """
    backend = repo.backend
    states = backend.availability(repo.pack_keys(chunk_ids))
    archived = [k for k, s in states.items() if s.state is Availability.ARCHIVED]
    waiting = [s for s in states.values() if s.state is not Availability.READABLE]
    if not waiting:
        return None
    if archived:
        backend.request_thaw(archived)
    hours = max(s.ready_in_hours for s in waiting)
    return ArchiveWait(len(waiting), len(archived), backend.thaw_tier, hours, what)


@dataclass
class ArchivePoller:
    """How to wait for archived packs: check every ``interval`` seconds until they are back.

    ``on_wait`` hears each :class:`ArchiveWait` (to show it); ``sleep`` is replaceable so a
    caller can stop waiting (raise from it) or tests can skip the time.
    """

    interval: float = ARCHIVE_POLL_SECONDS
    on_wait: Callable[[ArchiveWait], None] | None = None
    sleep: Callable[[float], None] = time.sleep

    def wait(self, repo: Repository, chunk_ids: Iterable[str], what: str = "") -> None:
        """Return once every pack holding ``chunk_ids`` is readable."""
        needed = list(chunk_ids)
        while (wait := archive_wait(repo, needed, what)) is not None:
            if self.on_wait is not None:
                self.on_wait(wait)
            self.sleep(self.interval)


def require_readable(
    repo: Repository,
    chunk_ids: Iterable[str],
    what: str = "",
    poller: ArchivePoller | None = None,
) -> None:
    """Make sure the packs holding ``chunk_ids`` can be read.

    Without ``poller`` an :class:`ArchiveWait` is raised (their restore requested); with
    one, this waits until they are back.
    """
    if poller is not None:
        poller.wait(repo, chunk_ids, what)
    elif (wait := archive_wait(repo, chunk_ids, what)) is not None:
        raise wait
