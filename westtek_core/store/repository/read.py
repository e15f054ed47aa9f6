"""Reading a repository: chunks (each verified against its id) and snapshot manifests.

Also where a snapshot id prefix is resolved to one snapshot. Nothing here writes or locks:
objects are written once and never modified, so a reader needs neither.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import blake3

from westtek_core.store.errors import ObjectCorrupt, ObjectMissing, StoreError
from westtek_core.store.repository.state import (
    FileContent,
    RepositoryState,
    pack_key,
    parse_chunk_id,
)


class ReadOps(RepositoryState):
    """The read operations of :class:`~westtek_core.store.Repository`."""

    # -- chunks --------------------------------------------------------------------------

    def has_chunk(self, chunk_id: str) -> bool:
        """Whether the index knows ``chunk_id``."""
        return parse_chunk_id(chunk_id) in self._index

    def stored_size(self, chunk_ids: Iterable[str]) -> int:
        """Bytes the store holds for these chunks (compressed, as packed)."""
        self._refresh_index()
        total = 0
        for chunk_id in chunk_ids:
            location = self._index.get(parse_chunk_id(chunk_id))
            total += location.length if location else 0
        return total

    def pack_keys(self, chunk_ids: Iterable[str]) -> list[str]:
        """The keys of the packs holding these chunks, sorted (chunks no index has: none)."""
        self._refresh_index()
        packs = set()
        with self._lock:
            for chunk_id in chunk_ids:
                location = self._index.get(parse_chunk_id(chunk_id))
                if location is not None:
                    packs.add(location.pack_id)
        return sorted(pack_key(p) for p in packs)

    def read_chunk(self, chunk_id: str) -> bytes:
        """The plaintext of a chunk, verified against its id."""
        blob_id = parse_chunk_id(chunk_id)
        loc = self._locate(blob_id)
        if loc is None:
            raise ObjectMissing(f"chunk {chunk_id} is not in the store at {self.backend.url}")
        key = pack_key(loc.pack_id)
        what = f"chunk {chunk_id} in pack {key}"
        try:
            stored = self.backend.load_range(key, loc.offset, loc.length)
        except ObjectMissing:
            raise ObjectMissing(f"pack {key} holding chunk {chunk_id} is missing") from None
        if len(stored) != loc.length:
            raise ObjectCorrupt(f"{what} is truncated")
        data = self._codec.decode_blob(stored, loc.flags, loc.raw_length, what)
        if len(data) != loc.raw_length or self._crypto.chunk_id(data) != blob_id:
            raise ObjectCorrupt(f"{what} does not match its id (damaged)")
        return data

    def iter_file(self, content: FileContent) -> Iterator[bytes]:
        """The file's chunks in order, each verified."""
        for chunk_id in content.chunks:
            yield self.read_chunk(chunk_id)

    # -- snapshots -----------------------------------------------------------------------

    def _resolve_snapshot(self, snapshot_id: str) -> str:
        sid = snapshot_id.strip().lower()
        if len(sid) < 6 or any(c not in "0123456789abcdef" for c in sid):
            raise StoreError(
                f"snapshot id {snapshot_id!r} is not valid: give at least 6 hex characters"
            )
        if len(sid) == 64:
            return sid
        matches = [s for s in self.list_manifests() if s.startswith(sid)]
        if not matches:
            raise ObjectMissing(f"no snapshot {snapshot_id} in the store at {self.backend.url}")
        if len(matches) > 1:
            shown = ", ".join(m[:12] for m in matches[:3])
            raise StoreError(
                f"snapshot id {snapshot_id} is ambiguous: it matches {len(matches)} snapshots"
                f" ({shown}{', …' if len(matches) > 3 else ''})"
            )
        return matches[0]

    def load_manifest(self, snapshot_id: str) -> dict[str, Any]:
        """The manifest with id ``snapshot_id`` (or a unique prefix of ≥ 6 hex characters)."""
        sid = self._resolve_snapshot(snapshot_id)
        key = f"snapshots/{sid}"
        try:
            stored = self.backend.load(key)
        except ObjectMissing:
            raise ObjectMissing(f"no snapshot {sid} in the store at {self.backend.url}") from None
        raw = self._codec.unseal_document(stored, key)
        if blake3.blake3(raw).hexdigest() != sid:
            raise ObjectCorrupt(f"snapshot {key} does not match its id (damaged)")
        try:
            manifest: dict[str, Any] = json.loads(raw)
        except ValueError as exc:
            raise ObjectCorrupt(f"snapshot {key} is not JSON ({exc})") from None
        return manifest

    def list_manifests(self) -> list[str]:
        """Ids of all snapshots, sorted."""
        names = (k.rpartition("/")[2] for k in self.backend.list("snapshots/"))
        return sorted(n for n in names if len(n) == 64)
