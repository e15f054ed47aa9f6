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

One file per area and root in the store's cache directory, written atomically after the
snapshot is committed, only when something changed. It is versioned and checked by a
digest, and only an optimisation: a cache that is missing, corrupt or of another version
is ignored (records are built again), never an error.
"""

from __future__ import annotations

import json
import logging
import marshal
import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3

from westtek_core.capture.model import FileEntry
from westtek_core.paths import write_atomic

log = logging.getLogger(__name__)

FORMAT = "westtek-record-cache"
VERSION = 1


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
        self._used: dict[bytes, tuple[Any, ...]] = {}

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
        self._used[key] = (run.json, run.lines, run.chunks, run.files, run.stored_bytes)

    def save(self) -> None:
        """Write the runs this snapshot used, when they differ from those read."""
        if self._used.keys() == self._known.keys():
            return
        payload = marshal.dumps(self._used)
        header = {
            "format": FORMAT,
            "version": VERSION,
            "marshal": marshal.version,
            "digest": blake3.blake3(payload).hexdigest(),
        }
        try:
            write_atomic(self.path, json.dumps(header).encode() + b"\n" + payload)
        except OSError as exc:
            log.debug("record cache %s not written: %s", self.path, exc)


def _load(path: Path) -> dict[bytes, tuple[Any, ...]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        log.debug("record cache %s unreadable: %s", path, exc)
        return {}
    try:
        head, _, payload = data.partition(b"\n")
        header = json.loads(head)
        if (
            header.get("format") != FORMAT
            or header.get("version") != VERSION
            or header.get("marshal") != marshal.version
            or header.get("digest") != blake3.blake3(payload).hexdigest()
        ):
            raise ValueError("another version, or damaged")
        runs = marshal.loads(payload)
        if not isinstance(runs, dict):
            raise ValueError("not a table of runs")
    except (ValueError, TypeError, EOFError, AttributeError) as exc:
        log.debug("record cache %s ignored: %s", path, exc)
        return {}
    return runs
