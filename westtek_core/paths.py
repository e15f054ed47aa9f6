"""Where West Tek keeps its per-user state when nothing else is configured.

The product's own state (databases, caches, logs, outbox, chat history) must never be part
of the workspace it watches and captures: a server whose log lies in the watched home
would wake its own watcher with every line it writes. ``$WESTTEK_DATA_DIR`` and
``$WESTTEK_CACHE_DIR`` put that state outside the home (the hub's spawners set them); where
it still lies inside a workspace, :func:`own_state_dirs` names it so it is always left out.
A state file configured to live anywhere else (``c.AgentService.conversations_path``…) is
still known by its content: every SQLite file West Tek writes carries
:data:`OWN_SQLITE_APPLICATION_ID` (:func:`claim_database`, :func:`is_own_database`).
:func:`is_within` is the one lexical test of "this path lies in that directory";
:func:`write_atomic` the one way a state file is replaced.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

OWN_SQLITE_APPLICATION_ID = 0x5754454B
"""SQLite's ``application_id`` (header bytes 68-71) of West Tek's own databases: b"WTEK"."""

_SQLITE_MAGIC = b"SQLite format 3\x00"
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
SQLITE_HEADER_BYTES = 100


FileVersion = tuple[int, int, int, int]


def file_version(st: os.stat_result) -> FileVersion:
    """What tells one version of a file from another without reading it.

    Size, modification and change times, inode: the change time cannot be set back, so a
    file rewritten with its size and modification time kept is still another version.
    """
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def write_atomic(path: Path, text: str | bytes) -> None:
    """Replace ``path`` with ``text`` so readers see the old file or the new one, never part.

    ``text`` is written as UTF-8, or as it is when given as bytes. The temporary file is
    unique per call (threads and processes may write the same file at once: the last
    replace wins whole) and is removed if the write fails.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(text.encode() if isinstance(text, str) else text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def claim_database(db: sqlite3.Connection) -> None:
    """Mark ``db`` as West Tek's own state (once: a no-op when it already is).

    A database opened read-only (a copy on a read-only mount) stays as it is.
    """
    if db.execute("PRAGMA application_id").fetchone()[0] != OWN_SQLITE_APPLICATION_ID:
        try:
            db.execute(f"PRAGMA application_id={OWN_SQLITE_APPLICATION_ID}")
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc):
                raise


def _is_own_header(header: bytes) -> bool:
    return (
        header.startswith(_SQLITE_MAGIC)
        and int.from_bytes(header[68:72], "big") == OWN_SQLITE_APPLICATION_ID
    )


def is_own_database(path: Path, header: bytes) -> bool:
    """Whether ``path``, whose first bytes are ``header``, is West Tek's own state.

    A West Tek database, or its WAL, shared-memory or journal file (those are known by
    the database beside them).
    """
    if _is_own_header(header):
        return True
    if not path.name.endswith(_SQLITE_SIDE_FILES):
        return False
    main = path.with_name(path.name.rsplit("-", 1)[0])
    try:
        with open(main, "rb") as f:
            return _is_own_header(f.read(SQLITE_HEADER_BYTES))
    except OSError:
        return False


def is_within(path: str, directory: str) -> bool:
    """Lexically: ``path`` is ``directory`` or lies below it.

    Both are absolute POSIX paths, already normalised (no symlink is resolved here); a
    trailing ``/`` on ``directory`` is ignored, and ``/`` holds every absolute path.
    ``/a/bc`` is not within ``/a/b``.
    """
    directory = directory.rstrip("/") or "/"
    return path == directory or path.startswith(directory if directory == "/" else directory + "/")


def _xdg(variable: str, fallback: str) -> Path:
    return Path(os.environ.get(variable) or Path.home() / fallback)


def data_dir() -> Path:
    """West Tek's per-user data directory (baselines, event log, outbox, knowledge base).

    ``$WESTTEK_DATA_DIR``, else ``$XDG_DATA_HOME/westtek`` (``~/.local/share/westtek``).
    """
    configured = os.environ.get("WESTTEK_DATA_DIR")
    return Path(configured) if configured else _xdg("XDG_DATA_HOME", ".local/share") / "westtek"


def event_log_path() -> Path:
    """The drift event log and install history of this user's environments (SQLite)."""
    return data_dir() / "events.sqlite"


def cache_dir() -> Path:
    """West Tek's per-user cache (stat caches of stores).

    ``$WESTTEK_CACHE_DIR``, else ``$XDG_CACHE_HOME/westtek`` (``~/.cache/westtek``).
    """
    configured = os.environ.get("WESTTEK_CACHE_DIR")
    return Path(configured) if configured else _xdg("XDG_CACHE_HOME", ".cache") / "westtek"


def log_dir() -> Path | None:
    """Where the server's log is written when a spawner put it apart (``$WESTTEK_LOG_DIR``)."""
    configured = os.environ.get("WESTTEK_LOG_DIR")
    return Path(configured) if configured else None


def own_state_dirs() -> list[Path]:
    """Every directory holding West Tek's own state: never watched, never captured."""
    dirs = [data_dir(), cache_dir(), Path.home() / ".westtek"]
    logs = log_dir()
    return [*dirs, logs] if logs else dirs


def default_store() -> str:
    """The snapshot store: ``$WESTTEK_STORE``, else a per-user data directory."""
    return os.environ.get("WESTTEK_STORE") or str(data_dir() / "store")


def default_key_file() -> Path:
    """The encryption key of an encrypted local store: ``$WESTTEK_KEY_FILE`` or the config dir."""
    configured = os.environ.get("WESTTEK_KEY_FILE")
    return (
        Path(configured)
        if configured
        else _xdg("XDG_CONFIG_HOME", ".config") / "westtek" / "store.key"
    )
