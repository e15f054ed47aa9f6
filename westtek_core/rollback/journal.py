"""The journal of a rollback: its plan and each step's state, so an interruption resumes.

A rollback's journal is ``<data dir>/rollbacks/<id>.json``, replaced atomically after every
step. An interrupted rollback is resumed from it (the steps not yet done) or undone (a
rollback to the safety snapshot it names). One process applies a journal at a time: a
``running`` journal whose process is alive on this host is refused to any other.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from westtek_core.paths import write_atomic
from westtek_core.rollback.plan import RollbackError, RollbackStep
from westtek_core.store import Repository

JOURNAL_FORMAT = 1


def journal_dir() -> Path:
    """Where rollback journals are kept: ``<data dir>/rollbacks``."""
    from westtek_core.paths import data_dir

    return data_dir() / "rollbacks"


def new_rollback_id() -> str:
    """A new rollback's id: the time it starts (UTC, to the second) and a random suffix."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def utc_now() -> str:
    """The time now as a journal records it (ISO 8601, UTC, milliseconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class Journal:
    """A rollback's durable record: its plan, each step's state, the safety snapshot.

    ``state`` is ``running`` (steps left; resumable), ``failed`` (an error stopped it;
    resumable), ``done`` or ``undone`` (a later undo put the safety snapshot back).
    """

    path: Path
    data: dict[str, Any]

    @property
    def id(self) -> str:
        """The rollback's id (the journal's file name)."""
        return str(self.data["id"])

    @property
    def steps(self) -> list[RollbackStep]:
        """The plan's steps, in order."""
        return [RollbackStep.from_json(s) for s in self.data["steps"]]

    @property
    def finished(self) -> bool:
        """True once every step is done (or the rollback was undone)."""
        return self.data.get("state") in ("done", "undone")

    def save(self) -> None:
        """Replace the journal file atomically."""
        self.data["updated"] = utc_now()
        write_atomic(self.path, json.dumps(self.data, indent=1))

    def mark(self, index: int, state: str) -> None:
        """Record one step's state and save."""
        self.data["steps"][index]["state"] = state
        self.save()

    def add_notes(self, notes: Iterable[str]) -> None:
        """Add ``notes`` to the journal's and save."""
        # a step redone on resume says the same again: keep each note once
        self.data["notes"] = list(dict.fromkeys([*self.data.get("notes", []), *notes]))
        self.save()

    def refuse_if_busy(self) -> None:
        """Refuse a journal another live process on this host is applying."""
        pid = self.data.get("pid")
        same_host = self.data.get("host") == socket.gethostname()
        if (
            self.data.get("state") == "running"
            and isinstance(pid, int)
            and pid != os.getpid()
            and same_host
            and _pid_alive(pid)
        ):
            raise RollbackError(f"rollback {self.id} is being applied by process {pid}")

    def claim(self) -> None:
        """Make this process the one applying the journal."""
        self.refuse_if_busy()
        self.data.update(pid=os.getpid(), host=socket.gethostname(), state="running")
        self.data.pop("error", None)
        self.save()

    def mark_undone(self, by: str) -> None:
        """Record that the undo ``by`` (empty: none was needed) put the safety snapshot back."""
        self.data["state"] = "undone"
        self.data["undone_by"] = by or None
        self.save()

    @classmethod
    def load(cls, path: Path) -> Journal:
        """Read a journal file."""
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise RollbackError(f"cannot read rollback journal {path}: {e}") from None
        if not isinstance(data, dict) or data.get("format") != JOURNAL_FORMAT:
            raise RollbackError(f"{path} is not a rollback journal this version reads")
        return cls(path, data)


def journals(repo: Repository) -> list[Journal]:
    """The rollback journals of ``repo``'s store, oldest first."""
    found = []
    directory = journal_dir()
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            journal = Journal.load(path)
        except RollbackError:
            continue
        if journal.data.get("store_id") == repo.id:
            found.append(journal)
    return sorted(found, key=lambda j: str(j.data.get("started")))


def unfinished_journal(repo: Repository) -> Journal | None:
    """The latest of this store's rollbacks that has steps left, if any."""
    pending = [j for j in journals(repo) if not j.finished]
    return pending[-1] if pending else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
