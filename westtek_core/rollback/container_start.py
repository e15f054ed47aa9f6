"""The restore at a container start: its record, and what it leaves for the server to finish.

The pre-start step (``westtek_spawner.prestart``) rolls the live environment back to the
researcher's latest snapshot before the server starts and keeps what it did in
``<data dir>/prestart.json``. When the snapshot's packs are in archive storage it can only
ask for them back (that takes hours), so it records ``archived`` and the server starts as
it is; the server then rolls back by itself once they are back
(``EnvironmentService.resume_container_start``) and marks the record, so that a restart of
the server does not roll back again. The next container start writes a new record.

A take-over launch (a successor's server bringing in a predecessor's environment, whose
packs are archived a year after the predecessor left) is left to the server the same way,
under the record's ``take_over`` (``EnvironmentService.resume_take_over``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from westtek_core.areas import AREAS
from westtek_core.paths import data_dir, write_atomic
from westtek_core.rollback.journal import utc_now

ARCHIVED = "archived"
"""The record's status when the snapshot's packs were in archive storage: restore pending."""
TAKE_OVER = "take_over"
"""The record's entry for a take-over the start left to the server."""


def record_path() -> Path:
    """Where the pre-start step records what it did (``prestart.json``)."""
    return data_dir() / "prestart.json"


def empty_workspace() -> Path:
    """The workspace a container-start rollback reads: an empty one.

    A rollback never changes the workspace; an empty one keeps the start's safety snapshot
    to the bare image's environment (retention keeps only each environment's latest such
    snapshot) and keeps the researcher's data from being read for nothing.
    """
    workspace = data_dir() / "prestart-workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    return workspace


def write_record(record: Mapping[str, Any], path: Path | None = None) -> None:
    """Keep the pre-start step's record (replaced whole)."""
    write_atomic(path or record_path(), json.dumps(record, indent=1))


def _read(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


@dataclass(frozen=True)
class PendingRestore:
    """A container start's restore still to do: its packs were in archive storage."""

    snapshot: str
    areas: tuple[str, ...]
    record: Path

    def mark_done(self) -> None:
        """Record that the server did it, so that a restart of the server leaves it be."""
        write_record({**(_read(self.record) or {}), "resumed": utc_now()}, self.record)


def pending_restore(path: Path | None = None) -> PendingRestore | None:
    """The restore the last container start left to the server, if it left one not done."""
    path = path or record_path()
    record = _read(path)
    if not record or record.get("status") != ARCHIVED or record.get("resumed"):
        return None
    snapshot = record.get("snapshot")
    if not isinstance(snapshot, str) or not snapshot:
        return None
    listed = record.get("areas")
    areas = tuple(a for a in AREAS if a in listed) if isinstance(listed, list) else ()
    return PendingRestore(snapshot, areas or AREAS, path)


@dataclass(frozen=True)
class PendingTakeOver:
    """A take-over launch's take-over still to do: the snapshot's packs were in archive storage."""

    environment_id: str
    predecessor: str
    snapshot: str | None  # the one the hub named; None: the environment's latest
    record: Path

    def to_json(self) -> dict[str, Any]:
        """Its entry in the record (under ``take_over``)."""
        return {"status": ARCHIVED, "environment_id": self.environment_id,
                "predecessor": self.predecessor, "snapshot": self.snapshot}  # fmt: skip

    def mark_done(self) -> None:
        """Record that the server did it, so that a restart of the server leaves it be."""
        record = _read(self.record) or {}
        entry = {**self.to_json(), "resumed": utc_now()}
        write_record({**record, TAKE_OVER: entry}, self.record)


def pending_take_over(path: Path | None = None) -> PendingTakeOver | None:
    """The take-over the last container start left to the server, if it left one not done."""
    path = path or record_path()
    entry = (_read(path) or {}).get(TAKE_OVER)
    if not isinstance(entry, dict) or entry.get("status") != ARCHIVED or entry.get("resumed"):
        return None
    environment_id, predecessor = entry.get("environment_id"), entry.get("predecessor")
    if not (isinstance(environment_id, str) and environment_id and isinstance(predecessor, str)):
        return None
    snapshot = entry.get("snapshot")
    named = snapshot if isinstance(snapshot, str) and snapshot else None
    return PendingTakeOver(environment_id, predecessor, named, path)
