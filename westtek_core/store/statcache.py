"""The stat cache: skip reading files whose metadata is unchanged since the last snapshot.

A local SQLite file maps an absolute path to its version (size, mtime_ns, ctime_ns, inode)
and chunk ids, packed into one blob per file: loading the whole cache is then one
``dict()`` of ``(path, blob)`` rows (~5x cheaper than a tuple of columns per file).
It is only an optimisation: any SQLite trouble disables it for the session with a warning,
and a hit is only trusted when every chunk it names is in the store's index.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
from collections.abc import Sequence
from pathlib import Path

from westtek_core.paths import FileVersion, claim_database

_SCHEMA_VERSION = 2
_PRELOAD_LIMIT = 2_000_000
_PRELOAD_AFTER = 500  # lookups
_ID = 32
_VERSION = struct.Struct("<QqqQ")  # size, mtime_ns, ctime_ns, inode
log = logging.getLogger(__name__)


class StatCache:
    """Lookups during a writer session; new entries are committed only when it succeeds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: list[tuple[str, bytes]] = []
        self._db: sqlite3.Connection | None = None
        self._rows: dict[str, bytes] | None = None
        self._lookups = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=30, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            if db.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
                with db:
                    db.execute("DROP TABLE IF EXISTS files")
                    db.execute(
                        "CREATE TABLE files (path TEXT PRIMARY KEY, entry BLOB) WITHOUT ROWID"
                    )
                    db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            claim_database(db)
            self._db = db
        except (OSError, sqlite3.Error) as exc:
            log.warning("stat cache %s disabled: %s", path, exc)
            self.close()

    def _preload(self) -> None:
        # One query for the whole cache is ~20x cheaper than a query per file, but a
        # snapshot reusing its environments' records looks up few files: the first
        # lookups go to SQLite one by one. Above the limit (memory: ~250 bytes a file)
        # they all do.
        assert self._db is not None
        (count,) = self._db.execute("SELECT count(*) FROM files").fetchone()
        if count <= _PRELOAD_LIMIT:
            self._rows = dict(self._db.execute("SELECT path, entry FROM files"))

    def lookup(self, path: str, version: FileVersion) -> list[bytes] | None:
        """The chunk ids recorded for ``path`` if it is still at ``version``."""
        entry: bytes | None
        self._lookups += 1
        if self._lookups == _PRELOAD_AFTER and self._db is not None:
            try:
                self._preload()
            except sqlite3.Error as exc:
                self._disable(exc)
                return None
        if self._rows is not None:
            entry = self._rows.get(path)
        elif self._db is None:
            return None
        else:
            try:
                row = self._db.execute("SELECT entry FROM files WHERE path = ?", (path,)).fetchone()
            except sqlite3.Error as exc:
                self._disable(exc)
                return None
            entry = row[0] if row else None
        head = _VERSION.size
        if entry is None or entry[:head] != _VERSION.pack(*version):
            return None
        return [entry[i : i + _ID] for i in range(head, len(entry), _ID)]

    def record(self, path: str, version: FileVersion, chunk_ids: Sequence[bytes]) -> None:
        """Remember ``path`` at ``version`` for :meth:`commit`."""
        if self._db is not None:
            self._pending.append((path, _VERSION.pack(*version) + b"".join(chunk_ids)))

    def commit(self) -> None:
        """Write the recorded entries in one transaction."""
        pending, self._pending = self._pending, []
        if self._db is None or not pending:
            return
        try:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO files VALUES (?,?)", pending)
        except sqlite3.Error as exc:
            self._disable(exc)

    def discard(self) -> None:
        """Forget the recorded entries (the session failed)."""
        self._pending = []

    def close(self) -> None:
        """Close the database."""
        db, self._db, self._rows = self._db, None, None
        if db is not None:
            db.close()

    def _disable(self, exc: sqlite3.Error) -> None:
        log.warning("stat cache %s disabled: %s", self.path, exc)
        self.close()
