"""The drift event log and install history: SQLite in the user's data directory.

Every drift event the watcher sees is appended here, so the server extension can list
them, the hub can be sent the ones it missed, and the knowledge base can read the install
history (which package changed when, from which version to which, and from which notebook
when a ``%pip install`` cell names it).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from westtek_core.drift.report import Change
from westtek_core.paths import claim_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    environment_id TEXT NOT NULL,
    baseline TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS install_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    environment_id TEXT NOT NULL,
    package TEXT NOT NULL,
    change TEXT NOT NULL,
    before TEXT,
    after TEXT,
    notebook TEXT
);
CREATE TABLE IF NOT EXISTS assessments (
    event_id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    body TEXT NOT NULL
);
"""


class EventLog:
    """Append-only drift events and install history, safe across threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        claim_database(self._db)

    def append(
        self,
        environment_id: str,
        baseline: str,
        status: str,
        changes: Iterable[Change],
        resolved: Iterable[Change] = (),
        pip_installs: Mapping[str, Iterable[str]] | None = None,
        *,
        installed: bool = True,
    ) -> dict[str, Any]:
        """Record one event (new and resolved changes) and its package changes' history.

        ``installed=False`` when the changes are not installs (the baseline moved under an
        unchanged environment): the install history is left as it is.
        """
        now = time.time()
        new, gone = list(changes), list(resolved)
        body = {
            "changes": [c.to_json() for c in new],
            "resolved": [c.to_json() for c in gone],
        }
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO events (time, environment_id, baseline, status, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (now, environment_id, baseline, status, json.dumps(body)),
            )
            for change in new if installed else ():
                if change.kind == "package":
                    self._db.execute(
                        "INSERT INTO install_history (time, environment_id, package,"
                        " change, before, after, notebook) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            now,
                            environment_id,
                            change.name,
                            change.change,
                            change.before,
                            change.after,
                            _installing_notebook(change.name, pip_installs or {}),
                        ),
                    )
        return {
            "id": cursor.lastrowid,
            "time": now,
            "environment_id": environment_id,
            "baseline": baseline,
            "status": status,
            **body,
        }

    def events(
        self, since_id: int = 0, limit: int = 100, since_time: float = 0.0
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` events after ``since_id`` and ``since_time``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT e.id, e.time, e.environment_id, e.baseline, e.status, e.body, a.body "
                "FROM events e LEFT JOIN assessments a ON a.event_id = e.id "
                "WHERE e.id > ? AND e.time >= ? ORDER BY e.id LIMIT ?",
                (since_id, since_time, limit),
            ).fetchall()
        return [
            {"id": r[0], "time": r[1], "environment_id": r[2], "baseline": r[3], "status": r[4]}
            | json.loads(r[5])
            | ({"assessment": json.loads(r[6])} if r[6] else {})
            for r in rows
        ]

    def record_assessment(self, event_id: int, assessment: Mapping[str, Any]) -> None:
        """Store the Drift Analyzer's risk assessment with an event (the latest one wins)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO assessments (event_id, time, body) VALUES (?, ?, ?)",
                (event_id, time.time(), json.dumps(dict(assessment), default=str)),
            )

    def assessment(self, event_id: int) -> dict[str, Any] | None:
        """The risk assessment stored with an event, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM assessments WHERE event_id = ?", (event_id,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def install_history(self, environment_id: str | None = None) -> list[dict[str, Any]]:
        """Every package change seen, oldest first."""
        query = (
            "SELECT time, environment_id, package, change, before, after, notebook "
            "FROM install_history"
        )
        args: tuple[Any, ...] = ()
        if environment_id:
            query += " WHERE environment_id = ?"
            args = (environment_id,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id", args).fetchall()
        keys = ("time", "environment_id", "package", "change", "before", "after", "notebook")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def _installing_notebook(package: str, pip_installs: Mapping[str, Iterable[str]]) -> str | None:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    wanted = canonicalize_name(package)
    for notebook, requirements in sorted(pip_installs.items()):
        for text in requirements:
            try:
                if canonicalize_name(Requirement(text).name) == wanted:
                    return notebook
            except InvalidRequirement:
                continue
    return None
