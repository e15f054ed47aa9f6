"""Where a store's objects live: a narrow backend interface and its local-directory flavour.

A backend stores opaque, immutable objects under slash-separated keys such as
``data/3f/3f…`` or ``snapshots/ab…``. It knows nothing about packs, indexes or encryption;
every backend passes the same conformance suite (``tests/core/store/test_backend.py``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO, Any

from traitlets import Unicode
from traitlets.config import LoggingConfigurable

from westtek_core.store.errors import ObjectMissing, StoreError

# Top-level folders a store uses; ``tmp/`` holds partial writes of the local backend only.
STORE_DIRS = ("data", "index", "snapshots", "locks")


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise :class:`StoreError`."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StoreError(f"invalid object key {key!r}")
    return key


class Availability(Enum):
    """Whether an object can be read now, or is in (or coming back from) archive storage."""

    READABLE = "readable"
    ARCHIVED = "archived"  # in archive storage, no restore asked for (or its copy expired)
    THAWING = "thawing"  # a restore is under way


@dataclass(frozen=True)
class ObjectAvailability:
    """One object's :class:`Availability` and, unless readable, hours until it will be."""

    state: Availability
    ready_in_hours: int = 0


READABLE = ObjectAvailability(Availability.READABLE)

_OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)


class StagedObject:
    """An object assembled in a local temporary file, then saved under its key in one step.

    For objects too big to hold in memory (packs). The file is no object until
    :meth:`save`: a crash leaves at most a stray temporary file that nothing lists or
    reads (local stores keep it in ``tmp/``, which ``westtek snapshot repair`` empties).
    """

    def __init__(self, backend: StoreBackend, directory: str | None) -> None:
        self._backend = backend
        self.file: IO[bytes] = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed by save/discard)
            dir=directory, prefix="staged-"
        )
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data``; a full disk is a :class:`StoreError` saying where."""
        with self._backend.full_disk_reported(f"assembling an object in {self.file.name}"):
            self.file.write(data)
        self.size += len(data)

    def save(self, key: str) -> None:
        """Store the content written so far under ``key`` (as :meth:`StoreBackend.save`)."""
        try:
            self.file.flush()
            self._backend.save_staged(key, self)
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove the temporary file (saved or not); idempotent."""
        try:
            self.file.close()
        except FileNotFoundError:
            pass  # renamed into place, on a file system without hard links


class StoreBackend(LoggingConfigurable):
    """The narrow interface every store backend implements.

    Objects are written once and never modified: :meth:`save` of a key that already exists
    leaves the stored object untouched. Keys are relative, slash-separated paths.
    """

    @property
    def url(self) -> str:
        """A human-readable location for messages, e.g. ``/srv/store`` or ``s3://b/p``."""
        return type(self).__name__

    def save(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically; an existing key is left untouched."""
        raise NotImplementedError

    def stage(self) -> StagedObject:
        """A new object to assemble in a local file (in the system's temporary directory)."""
        return StagedObject(self, None)

    def save_staged(self, key: str, staged: StagedObject) -> None:
        """Store a staged object's file under ``key``, a name of its content (a pack id).

        An existing object under ``key`` holds the same bytes and is left untouched.

        The default reads the file whole; backends override it to stream from the file.
        """
        staged.file.seek(0)
        self.save(key, staged.file.read())

    def out_of_space(self, doing: str) -> StoreError:
        """The error for a full disk (or quota) while ``doing`` something for this store."""
        return StoreError(f"no space left {doing} for the store at {self.url}: free space there")

    @contextlib.contextmanager
    def full_disk_reported(self, doing: str) -> Iterator[None]:
        """Turn a full disk (or quota) inside the block into :meth:`out_of_space`'s error."""
        try:
            yield
        except OSError as exc:
            if exc.errno not in _OUT_OF_SPACE:
                raise
            raise self.out_of_space(doing) from None

    def load(self, key: str) -> bytes:
        """Return the whole object; :class:`ObjectMissing` if there is none."""
        raise NotImplementedError

    def load_range(self, key: str, offset: int, length: int) -> bytes:
        """Return ``length`` bytes from ``offset`` (fewer if the object is shorter).

        The default loads the whole object; backends override it with a ranged read.
        """
        return self.load(key)[offset : offset + length]

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        raise NotImplementedError

    def list(self, prefix: str) -> Iterator[str]:
        """Yield the keys that start with ``prefix`` (normally a folder such as ``data/``)."""
        raise NotImplementedError

    def remove(self, key: str) -> None:
        """Delete the object under ``key``; removing a missing key is not an error."""
        raise NotImplementedError

    # -- archive storage (objects a lifecycle moved to a tier that must be restored first) --

    @property
    def thaw_tier(self) -> str:
        """The retrieval tier :meth:`request_thaw` asks for ('' when nothing is archived)."""
        return ""

    def availability(self, keys: Sequence[str]) -> dict[str, ObjectAvailability]:
        """Which of ``keys`` can be read now; a missing key counts as readable (no wait).

        The default, for backends with no archive storage: every object is readable.
        """
        return dict.fromkeys(keys, READABLE)

    def request_thaw(self, keys: Sequence[str]) -> None:
        """Ask for archived objects to be restored; a restore already under way is fine."""

    def close(self) -> None:
        """Release connections or handles; the backend must not be used afterwards."""


class LocalDirectoryBackend(StoreBackend):
    """Objects as files below a directory; partial writes go to ``tmp/`` then get linked."""

    root = Unicode(
        "",
        config=True,
        help="Directory holding the store. Created, with its subfolders, on first write.",
    )

    @property
    def url(self) -> str:
        """The root directory."""
        return self.root

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fds: dict[str, int] = {}
        self._fd_lock = threading.Lock()

    def _path(self, key: str) -> Path:
        return Path(self.root, check_key(key))

    def save(self, key: str, data: bytes) -> None:
        """Write to ``tmp/``, fsync, then hard-link into place so nothing is ever overwritten.

        A full disk (or quota) is a :class:`StoreError` saying so; the partial write is
        removed, so nothing half-written stays behind.
        """
        with self.full_disk_reported(f"writing {key}"):
            self._save(key, data)

    def out_of_space(self, doing: str) -> StoreError:
        """Names the store's directory and the way to clean up after unfinished snapshots."""
        return StoreError(
            f"the store at {self.root} is out of space ({doing}): free space there,"
            " then run `westtek snapshot repair` to remove what unfinished snapshots left"
        )

    def stage(self) -> StagedObject:
        """A staged object in the store's ``tmp/``, so that saving it is a hard link."""
        tmp_dir = Path(self.root, "tmp")
        tmp_dir.mkdir(parents=True, exist_ok=True)
        return StagedObject(self, str(tmp_dir))

    def save_staged(self, key: str, staged: StagedObject) -> None:
        """Sync the staged file, then hard-link it into place (as :meth:`save` does)."""
        with self.full_disk_reported(f"writing {key}"):
            self._save_staged(key, staged)

    def _save_staged(self, key: str, staged: StagedObject) -> None:
        path = self._path(key)
        if path.exists():
            return
        os.fsync(staged.file.fileno())
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(staged.file.name)
        os.chmod(tmp, 0o444)
        self._link_into_place(tmp, path)
        _fsync_dir(path.parent)

    def _save(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if path.exists():
            return
        tmp_dir = Path(self.root, "tmp")
        tmp_dir.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"{path.name}.{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        try:
            try:
                with memoryview(data) as view:
                    written = 0
                    while written < len(view):
                        written += os.write(fd, view[written:])
                os.fsync(fd)
            finally:
                os.close(fd)
            self._link_into_place(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(path.parent)

    @staticmethod
    def _link_into_place(tmp: Path, path: Path) -> None:
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # a concurrent writer stored the same key first: write-once keeps theirs
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # File systems without hard links: rename is atomic, only the no-clobber is racy.
            if not path.exists():
                os.replace(tmp, path)

    def load(self, key: str) -> bytes:
        """Read the whole file."""
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectMissing(f"{key} is missing from the store at {self.root}") from None

    def load_range(self, key: str, offset: int, length: int) -> bytes:
        """One ``pread`` of the requested range, on a cached descriptor of the object."""
        return os.pread(self._descriptor(key), length, offset)

    # Objects are written once and never modified, so a descriptor stays valid for reads;
    # caching a few saves an open+close per chunk, which dominates reading small files.
    _MAX_OPEN = 64

    def _descriptor(self, key: str) -> int:
        with self._fd_lock:
            fd = self._fds.get(key)
        if fd is not None:
            if os.fstat(fd).st_nlink:  # not deleted (by prune, or by damage) since opened
                return fd
            self._forget_descriptor(key)
        try:
            fd = os.open(self._path(key), os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectMissing(f"{key} is missing from the store at {self.root}") from None
        with self._fd_lock:
            if key in self._fds:  # another thread opened it meanwhile
                os.close(fd)
                return self._fds[key]
            if len(self._fds) >= self._MAX_OPEN:
                os.close(self._fds.pop(next(iter(self._fds))))
            self._fds[key] = fd
        return fd

    def close(self) -> None:
        """Close the cached descriptors."""
        with self._fd_lock:
            fds, self._fds = list(self._fds.values()), {}
        for fd in fds:
            os.close(fd)

    def _forget_descriptor(self, key: str) -> None:
        with self._fd_lock:
            fd = self._fds.pop(key, None)
        if fd is not None:
            os.close(fd)

    def exists(self, key: str) -> bool:
        """Whether the file exists."""
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterator[str]:
        """Walk the folder part of ``prefix`` and yield matching keys (``tmp/`` never)."""
        folder = prefix.rpartition("/")[0]
        start = Path(self.root, folder) if folder else Path(self.root)
        stack = [(start, f"{folder}/" if folder else "")]
        while stack:
            directory, rel = stack.pop()
            try:
                entries = list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                key = rel + entry.name
                if entry.is_dir(follow_symlinks=False):
                    below = key + "/"
                    if key != "tmp" and (below.startswith(prefix) or prefix.startswith(below)):
                        stack.append((Path(entry.path), below))
                elif key.startswith(prefix):
                    yield key

    def remove(self, key: str) -> None:
        """Unlink the file; a missing file is fine."""
        self._forget_descriptor(key)
        self._path(key).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories; the data itself is synced
    finally:
        os.close(fd)
