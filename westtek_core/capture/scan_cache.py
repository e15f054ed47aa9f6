"""The files a secret scan found clean, so that a snapshot does not read them again.

A local SQLite file maps an absolute path to ``(size, mtime_ns, ctime_ns, inode)`` and the
fingerprint of the rules it was scanned with (the scanner gives it): a row is trusted only
while the file's metadata and the rules are both the same.
Only clean verdicts are kept: a file with a finding is scanned again each time. Like the
store's stat cache it is only an optimisation: any SQLite trouble disables it for the
session with a warning.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from westtek_core.paths import FileVersion, claim_database, file_version

log = logging.getLogger(__name__)


def _is_below(path: str, root: Path) -> bool:
    return path.startswith(str(root).rstrip("/") + "/")


class CleanFileCache:
    """Clean verdicts of one scan session: looked up from memory, saved at the end."""

    def __init__(self, path: Path, rules: str) -> None:
        self.path = path
        self._rules = rules
        self._rows: dict[str, FileVersion] = {}
        self._new: dict[str, FileVersion] = {}
        self._db: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                db.execute(
                    "CREATE TABLE IF NOT EXISTS clean (path TEXT PRIMARY KEY, size INTEGER,"
                    " mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER, rules TEXT)"
                    " WITHOUT ROWID"
                )
            claim_database(db)
            self._db = db
            rows = db.execute(
                "SELECT path, size, mtime_ns, ctime_ns, inode FROM clean WHERE rules = ?",
                (self._rules,),
            )
            self._rows = {row[0]: tuple(row[1:]) for row in rows}
        except (OSError, sqlite3.Error) as exc:
            log.warning("secret scan cache %s disabled: %s", path, exc)
            self.close()

    def is_clean(self, path: str, st: os.stat_result) -> bool:
        """Whether ``path`` was found clean with these rules and is unchanged since."""
        return self._rows.get(path) == file_version(st)

    def add(self, path: str, st: os.stat_result) -> None:
        """Remember that ``path`` (as ``st`` describes it) holds no secret."""
        self._new[path] = file_version(st)

    def save(self, root: Path, present: set[str]) -> None:
        """Write the new verdicts in one transaction, and close.

        Rows of files below ``root`` that are not ``present`` any more, and rows of other
        rules, are dropped: the cache holds the files of the trees scanned, no more.
        """
        new, self._new = self._new, {}
        gone = [p for p in self._rows if p not in present and _is_below(p, root)]
        try:
            if self._db is not None:
                with self._db:
                    self._db.execute("DELETE FROM clean WHERE rules != ?", (self._rules,))
                    self._db.executemany("DELETE FROM clean WHERE path = ?", [(p,) for p in gone])
                    self._db.executemany(
                        "INSERT OR REPLACE INTO clean VALUES (?,?,?,?,?,?)",
                        [(path, *stat, self._rules) for path, stat in new.items()],
                    )
        except sqlite3.Error as exc:
            log.warning("secret scan cache %s not saved: %s", self.path, exc)
        self.close()

    def close(self) -> None:
        """Close the database."""
        db, self._db = self._db, None
        if db is not None:
            db.close()
