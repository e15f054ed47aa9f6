"""Manifest records of unchanged directories, kept encoded between snapshots of one area.

An unchanged re-snapshot of a 23k-file environment spent ~0.25 s building, checksumming
and encoding a manifest record for every file, though no file had changed. A walk lists
entries sorted by path; each run of consecutive entries in one directory
(:func:`directory_runs`) is kept here as the snapshot encoded it: the records' canonical
JSON, their content-checksum lines and the chunk ids they name. It is keyed by a digest of
all the records are made from (:func:`run_key`): each entry's path, kind, mode, size,
mtime and link target, and its version (size, mtime, ctime, inode), the rule the stat
cache trusts a file's content by. A run whose entries all ``lstat`` as before then costs
one lookup, and one check that its chunks are still in the store; a run with any entry
changed, added or removed has another key, and is built again.

One file per area and root in the store's cache directory, only when something changed.
The runs a snapshot builds are appended to a staged file beside it as they are encoded
(holding them until the end cost a first snapshot ~20 MiB), those it reused are added from
the cache read at start, and the file is renamed into place once the snapshot is committed:
a snapshot that fails or is killed never replaces it. It is versioned and checked by a
digest, and only an optimisation: a cache that is missing, corrupt or of another version
is ignored (records are built again), never an error.
"""

from __future__ import annotations

import json
import logging
import marshal
import operator
import os
import struct
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import blake3

from westtek_core.capture.model import FileEntry

log = logging.getLogger(__name__)

FORMAT = "westtek-record-cache"
VERSION = 2  # 2: runs appended one by one, the digest in a trailer


@dataclass(frozen=True, slots=True)
class EncodedRun:
    """The manifest records of one run of entries, as a snapshot encoded them."""

    json: bytes  # the records' canonical JSON, comma-separated, without the list's brackets
    lines: bytes  # their content-checksum lines (``manifest.checksum_line``)
    chunks: tuple[bytes, ...]  # the chunk ids they name
    files: int  # regular files among them
    stored_bytes: int  # what they add to the manifest's ``size_bytes``


def directory_runs(entries: Sequence[FileEntry]) -> Iterator[Sequence[FileEntry]]:
    """Runs of consecutive entries in one directory, in order.

    A directory's entries are interleaved with its subdirectories' in path order; a file
    added or removed changes only the run it falls in.
    """
    start = 0
    parent: str | None = None
    for index, entry in enumerate(entries):
        here = entry.path.rpartition("/")[0]
        if here != parent:
            if index > start:
                yield entries[start:index]
            start, parent = index, here
    if start < len(entries):
        yield entries[start:]


_RECORD_INPUTS = operator.attrgetter(
    "path", "kind", "mode", "size", "mtime_ns", "link_target", "version"
)
_VERSION = operator.attrgetter("version")


def run_key(run: Sequence[FileEntry]) -> bytes | None:
    """The digest of everything a run's records are made from (None: a version unknown)."""
    if None in map(_VERSION, run):
        return None
    return blake3.blake3(marshal.dumps(list(map(_RECORD_INPUTS, run)))).digest()


class RecordCache:
    """The encoded runs of one area: those read at start, and those the snapshot used."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._known: dict[bytes, tuple[Any, ...]] = _load(path)
        self._reused: set[bytes] = set()  # kept as they were read: written at save
        self._staged: _StagedRuns | None = None  # the runs built anew, written as kept

    @classmethod
    def of_area(cls, cache_dir: Path, area: str, root: str) -> RecordCache:
        """The cache of ``area`` (``env0``…) at ``root`` in a store's ``cache_dir``."""
        name = blake3.blake3(f"{area}\0{root}".encode()).hexdigest()[:32]
        return cls(cache_dir / "records" / f"{name}.bin")

    def get(self, key: bytes) -> EncodedRun | None:
        """The run kept under ``key``, if any."""
        kept = self._known.get(key)
        return None if kept is None else EncodedRun(*kept)

    def keep(self, key: bytes, run: EncodedRun) -> None:
        """Keep ``run`` (built or reused by this snapshot) for the next one."""
        fields = (run.json, run.lines, run.chunks, run.files, run.stored_bytes)
        if self._known.get(key) == fields:
            self._reused.add(key)
            return
        if self._staged is None:
            self._staged = _StagedRuns(self.path)
        self._staged.append(key, fields)

    def discard(self) -> None:
        """Drop what this snapshot staged (it failed): the cache in place stays as it was."""
        staged, self._staged = self._staged, None
        if staged is not None:
            staged.discard()

    def save(self) -> None:
        """Put the runs this snapshot used in place, when they differ from those read."""
        staged, self._staged = self._staged, None
        if staged is None:
            if self._reused == self._known.keys():
                return
            staged = _StagedRuns(self.path)
        for key in self._reused:
            staged.append(key, self._known[key])
        staged.publish()


# A run's entry in the file: its length, then the marshalled (key, *EncodedRun fields).
_LENGTH = struct.Struct("<I")
# A staged file untouched for this long belongs to a snapshot that was killed.
_STALE_AFTER_S = 24 * 3600


class _StagedRuns:
    """A cache file being written beside ``path``: runs appended, then a trailer and a rename.

    The trailer (a line of JSON after the runs) names the format and the runs' digest, so
    a file cut short or damaged anywhere is refused whole. A staged file never published
    (the snapshot failed) is removed when it is dropped, or at exit. A file that cannot be
    written is given up, silently: the cache is only an optimisation.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._digest = blake3.blake3()
        self._file: BinaryIO | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _remove_stale(path.parent)
            handle, name = tempfile.mkstemp(
                dir=path.parent, prefix=f".{path.name}.", suffix=".staged"
            )
        except OSError as exc:
            log.debug("record cache %s not staged: %s", path, exc)
            return
        self._staged = Path(name)
        self._file = os.fdopen(handle, "wb")
        self._discard = weakref.finalize(self, _discard, self._file, self._staged)

    def append(self, key: bytes, fields: tuple[Any, ...]) -> None:
        """Add one run."""
        record = marshal.dumps((key, *fields))
        self._write(_LENGTH.pack(len(record)) + record)

    def publish(self) -> None:
        """End the file with its trailer and put it in place of ``path``."""
        trailer = {
            "format": FORMAT,
            "version": VERSION,
            "marshal": marshal.version,
            "digest": self._digest.hexdigest(),
        }
        self._write(b"\n" + json.dumps(trailer).encode(), digested=False)
        if self._file is None:
            return
        try:
            self._file.close()
            os.replace(self._staged, self.path)
        except OSError as exc:
            log.debug("record cache %s not written: %s", self.path, exc)
            self._give_up()
            return
        self._file = None
        self._discard.detach()

    def discard(self) -> None:
        """Remove the staged file now, unpublished."""
        if self._file is not None:
            self._give_up()

    def _write(self, data: bytes, *, digested: bool = True) -> None:
        if self._file is None:
            return
        if digested:
            self._digest.update(data)
        try:
            self._file.write(data)
        except OSError as exc:
            log.debug("record cache %s not written: %s", self.path, exc)
            self._give_up()

    def _give_up(self) -> None:
        self._file = None
        self._discard()


@contextmanager
def discarded_on_failure() -> Iterator[list[RecordCache]]:
    """A list for a snapshot's record caches, whose staged runs go if the block fails.

    Left to the garbage collector, a failed job whose traceback is kept (a server's job
    runner) would keep its staged files open and on disk.
    """
    caches: list[RecordCache] = []
    try:
        yield caches
    except BaseException:
        for cache in caches:
            cache.discard()
        raise


def _discard(file: BinaryIO, staged: Path) -> None:
    file.close()
    staged.unlink(missing_ok=True)


def _remove_stale(directory: Path) -> None:
    """Remove the staged files of snapshots that were killed before they finished."""
    too_old = time.time() - _STALE_AFTER_S
    for staged in directory.glob(".*.staged"):
        try:
            if staged.stat().st_mtime < too_old:
                staged.unlink()
        except OSError:
            pass  # another snapshot's, gone or still in use


def _load(path: Path) -> dict[bytes, tuple[Any, ...]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        log.debug("record cache %s unreadable: %s", path, exc)
        return {}
    try:
        payload, _, trailer_line = data.rpartition(b"\n")
        trailer = json.loads(trailer_line)
        if (
            not isinstance(trailer, dict)
            or trailer.get("format") != FORMAT
            or trailer.get("version") != VERSION
            or trailer.get("marshal") != marshal.version
            or trailer.get("digest") != blake3.blake3(payload).hexdigest()
        ):
            raise ValueError("another version, or damaged")
        return dict(_runs(memoryview(payload)))
    except (ValueError, TypeError, EOFError, struct.error) as exc:
        log.debug("record cache %s ignored: %s", path, exc)
        return {}


def _runs(payload: memoryview) -> Iterator[tuple[bytes, tuple[Any, ...]]]:
    offset = 0
    while offset < len(payload):
        (length,) = _LENGTH.unpack_from(payload, offset)
        offset += _LENGTH.size
        key, *fields = marshal.loads(payload[offset : offset + length])
        offset += length
        yield key, tuple(fields)
