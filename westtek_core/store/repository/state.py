"""What every operation on a repository shares: its state, the blob codec, the loaded index.

:class:`RepositoryState` holds one open store (backend, config, keys, the in-memory index
of blob → pack, the locks of writes not yet committed) and keeps that index up to date;
the read, write and maintenance operations are subclasses of it, so the state is set up
in one ``__init__`` and a type checker sees every attribute each operation uses.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard

from westtek_core.store.backend import StoreBackend
from westtek_core.store.chunker import ChunkerParams
from westtek_core.store.crypto import Crypto
from westtek_core.store.errors import ObjectCorrupt, ObjectMissing, StoreError
from westtek_core.store.index import BlobIndex, Location, decode_index_file
from westtek_core.store.locks import StoreLock
from westtek_core.store.pack import FLAG_ZSTD, MAX_PACK_BYTES, PackEntry
from westtek_core.store.zstd import MAX_DOCUMENT_BYTES, decompress_bounded

PACK_SIZE = 16 << 20
ZSTD_LEVEL = 3
log = logging.getLogger(__name__)


def pack_key(pack_id: str) -> str:
    """The backend key of a pack."""
    return f"data/{pack_id[:2]}/{pack_id}"


def canonical_text(doc: Any) -> str:
    """The canonical form of a JSON document: key-sorted, compact, not ASCII-escaped."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(doc: Any, fragments: Mapping[str, bytes] | None = None) -> bytes:
    """The canonical bytes of a JSON document: key-sorted, compact, UTF-8.

    ``fragments`` maps placeholder strings standing in ``doc`` for values already encoded
    (UTF-8 of :func:`canonical_text`) to those bytes, put in their place: the result is the
    document's with the values themselves, which are not encoded again.
    """
    raw = canonical_text(doc).encode()
    for placeholder, fragment in (fragments or {}).items():
        quoted = json.dumps(placeholder).encode()
        if raw.count(quoted) != 1:
            raise ValueError(f"placeholder {placeholder!r} is not in the document once")
        raw = raw.replace(quoted, fragment)
    return raw


def parse_chunk_id(chunk_id: str) -> bytes:
    """The 32 bytes of a chunk id given as hex; :class:`StoreError` if it is not one."""
    try:
        blob_id = bytes.fromhex(chunk_id)
    except (ValueError, TypeError):
        blob_id = b""
    if len(blob_id) != 32:
        raise StoreError(f"{chunk_id!r} is not a chunk id (64 hex characters)")
    return blob_id


def map_threaded(fn: Callable[[Any], Any], items: list[Any], workers: int = 8) -> Iterator[Any]:
    """``map`` in threads for I/O-bound loads (sequential when there are few items)."""
    if len(items) <= 2:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="westtek-io") as pool:
        yield from pool.map(fn, items)


@dataclass(frozen=True)
class FileContent:
    """A stored file: its size and the ids of its chunks in order."""

    size: int
    chunks: tuple[str, ...]

    def to_json(self) -> list[str]:
        """The chunk ids, as a manifest stores them."""
        return list(self.chunks)


class Codec:
    """Per-thread zstd contexts (they are not thread-safe) plus the store's crypto."""

    def __init__(self, crypto: Crypto, max_raw: int = MAX_PACK_BYTES) -> None:
        self.crypto = crypto
        # No chunk is larger than the chunker's maximum: an entry claiming more is damaged
        # or crafted (a zstd bomb would otherwise get that much memory before any hash check).
        self.max_raw = max_raw
        self._local = threading.local()

    @property
    def compressor(self) -> zstandard.ZstdCompressor:
        """The calling thread's compressor."""
        cctx: zstandard.ZstdCompressor | None = getattr(self._local, "cctx", None)
        if cctx is None:
            cctx = self._local.cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        return cctx

    @property
    def decompressor(self) -> zstandard.ZstdDecompressor:
        """The calling thread's decompressor."""
        dctx: zstandard.ZstdDecompressor | None = getattr(self._local, "dctx", None)
        if dctx is None:
            dctx = self._local.dctx = zstandard.ZstdDecompressor()
        return dctx

    def encode_blob(self, data: bytes | memoryview) -> tuple[int, bytes]:
        """(flags, stored bytes): zstd unless that does not shrink it, then sealed."""
        packed = self.compressor.compress(data)
        if len(packed) < len(data):
            return FLAG_ZSTD, self.crypto.seal(packed)
        return 0, self.crypto.seal(bytes(data))

    def decode_blob(self, stored: bytes, flags: int, raw_length: int, what: str) -> bytes:
        """The plaintext of a stored blob; :class:`ObjectCorrupt` naming ``what``."""
        if raw_length > self.max_raw:
            raise ObjectCorrupt(
                f"{what} claims {raw_length} bytes, more than any chunk (damaged or crafted)"
            )
        payload = self.crypto.unseal(stored, what)
        if not flags & FLAG_ZSTD:
            return payload
        return decompress_bounded(self.decompressor, payload, raw_length, what)

    def seal_document(self, raw: bytes) -> bytes:
        """Stored form of an index/snapshot document: zstd, then sealed."""
        return self.crypto.seal(self.compressor.compress(raw))

    def unseal_document(self, stored: bytes, what: str) -> bytes:
        """Inverse of :meth:`seal_document`."""
        return decompress_bounded(
            self.decompressor, self.crypto.unseal(stored, what), MAX_DOCUMENT_BYTES, what
        )


class RepositoryState:
    """One open store and its loaded index; the base of every repository operation."""

    def __init__(
        self,
        backend: StoreBackend,
        config: dict[str, Any],
        crypto: Crypto,
        cache_dir: Path,
        owns_backend: bool,
    ) -> None:
        """Use :meth:`Repository.open`; this takes an already validated config."""
        self.backend = backend
        self.id: str = config["id"]
        self.config = config
        self.chunker_params = ChunkerParams.from_json(config["chunker"])
        self.pack_size = int(config.get("pack_size", PACK_SIZE))
        self.cache_dir = cache_dir
        params = self.chunker_params
        self._codec = Codec(crypto, max(params.max_size, params.small_file_size))
        self._crypto = crypto
        self._owns_backend = owns_backend
        # loaded on first use: reading manifests (a drift check, a listing) needs none of it
        self._blob_index: BlobIndex | None = None
        self._index_files: set[str] = set()
        self._lock = threading.RLock()
        self._active_writers = 0
        # Writer locks kept after the writer exits, until save_manifest commits its data.
        self._uncommitted_locks: list[StoreLock] = []

    def close(self) -> None:
        """Release locks still held for uncommitted writes; close a backend opened here."""
        with self._lock:
            locks, self._uncommitted_locks = self._uncommitted_locks, []
        for lock in locks:
            lock.release()
        if self._owns_backend:
            self.backend.close()

    @property
    def encrypted(self) -> bool:
        """Whether objects are encrypted."""
        return self._crypto.encrypted

    # -- the index in memory -------------------------------------------------------------

    @property
    def _index(self) -> BlobIndex:
        """The blob index in memory, loaded from the store's index files on first use."""
        return self._blob_index if self._blob_index is not None else self._refresh_index()

    def _refresh_index(self, full: bool = False) -> BlobIndex:
        """Load the index files written since the last look; return the index in memory.

        All of them are loaded on first use, or again when one disappeared.
        """
        keys = {k.rpartition("/")[2]: k for k in self.backend.list("index/")}
        with self._lock:
            if self._blob_index is None or not self._index_files <= keys.keys():
                full = True  # first use, or a prune replaced index files
            known = set() if full else set(self._index_files)
        new = [name for name in keys if name not in known]
        loaded: list[tuple[str, list[tuple[str, list[PackEntry]]]]] = []
        for name, packs in map_threaded(lambda n: (n, self._load_index_file(keys[n])), new):
            if packs is not None:
                loaded.append((name, packs))
        with self._lock:
            index = self._blob_index
            if full or index is None:
                index = self._blob_index = BlobIndex()
                self._index_files = set()
            for name, packs in loaded:
                for pack_id, entries in packs:
                    index.add_pack(pack_id, entries)
                self._index_files.add(name)
            return index

    def _load_index_file(self, key: str) -> list[tuple[str, list[PackEntry]]] | None:
        try:
            return decode_index_file(self.backend.load(key), self._crypto, key)
        except ObjectMissing:
            return None  # removed by a concurrent prune
        except ObjectCorrupt as exc:
            log.warning("skipping unreadable index file: %s", exc)
            return None

    def _locate(self, blob_id: bytes) -> Location | None:
        loc = self._index.get(blob_id)
        if loc is None:
            self._refresh_index()
            loc = self._index.get(blob_id)
        return loc
