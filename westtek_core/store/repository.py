"""The repository: chunks in packs, an index, snapshot manifests; writers, check and prune."""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import blake3
import zstandard

from westtek_core.paths import cache_dir as default_cache_dir
from westtek_core.store.backend import StoreBackend
from westtek_core.store.chunker import Chunker, ChunkerParams
from westtek_core.store.crypto import (
    Crypto,
    create_key_file,
    generate_kms_data_key,
    key_check_value,
    read_key_file,
    unwrap_kms_data_key,
)
from westtek_core.store.errors import (
    ObjectCorrupt,
    ObjectMissing,
    StoreError,
    StoreFormatError,
    StoreKeyError,
    StoreNotFound,
)
from westtek_core.store.index import BlobIndex, Location, decode_index_file, encode_index_file
from westtek_core.store.location import open_backend
from westtek_core.store.locks import StoreLock
from westtek_core.store.pack import FLAG_ZSTD, MAX_PACK_BYTES, PackEntry, decode_trailer
from westtek_core.store.pack import encode_trailer as _encode_trailer
from westtek_core.store.statcache import StatCache

FORMAT_VERSION = 1
PACK_SIZE = 16 << 20
ZSTD_LEVEL = 3
# Chunks smaller than this are compressed in batches, to keep per-file overhead low.
_BATCH_CHUNK = 64 << 10
_BATCH_BYTES = 1 << 20
_BATCH_COUNT = 256
# Raw bytes handed to the compression threads and not yet packed; bounds writer memory.
_MAX_IN_FLIGHT = 64 << 20
# Threads compressing/encrypting while the caller's thread reads and hashes.
_COMPRESS_THREADS = max(1, min(2, os.cpu_count() or 1))
log = logging.getLogger(__name__)


def pack_key(pack_id: str) -> str:
    """The backend key of a pack."""
    return f"data/{pack_id[:2]}/{pack_id}"


def canonical_json(doc: Any) -> bytes:
    """The canonical bytes of a JSON document: key-sorted, compact, UTF-8."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class FileContent:
    """A stored file: its size and the ids of its chunks in order."""

    size: int
    chunks: tuple[str, ...]

    def to_json(self) -> list[str]:
        """The chunk ids, as a manifest stores them."""
        return list(self.chunks)


@dataclass
class CheckReport:
    """What :meth:`Repository.check` found."""

    damaged_chunks: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    # Packs no index lists (left by an interrupted writer): harmless, removed by prune.
    orphan_packs: list[str] = field(default_factory=list)
    packs_checked: int = 0
    chunks_checked: int = 0

    @property
    def ok(self) -> bool:
        """No problems and no damaged chunks."""
        return not self.problems and not self.damaged_chunks


@dataclass
class PruneStats:
    """What :meth:`Repository.prune` did."""

    removed_packs: int = 0
    repacked_packs: int = 0
    removed_blobs: int = 0
    kept_blobs: int = 0
    freed_bytes: int = 0
    # Referenced chunks the store does not have (their snapshots are already damaged).
    missing_blobs: int = 0


class _Codec:
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
        try:
            return self.decompressor.decompress(payload, max_output_size=raw_length)
        except zstandard.ZstdError as exc:
            raise ObjectCorrupt(f"{what} does not decompress ({exc})") from None

    def seal_document(self, raw: bytes) -> bytes:
        """Stored form of an index/snapshot document: zstd, then sealed."""
        return self.crypto.seal(self.compressor.compress(raw))

    def unseal_document(self, stored: bytes, what: str) -> bytes:
        """Inverse of :meth:`seal_document`."""
        try:
            return self.decompressor.decompress(self.crypto.unseal(stored, what))
        except zstandard.ZstdError as exc:
            raise ObjectCorrupt(f"{what} does not decompress ({exc})") from None


class Repository:
    """A content-addressed, deduplicated, compressed, optionally encrypted snapshot store.

    Open one with :meth:`open`. Write with ``with repo.writer() as w: ...`` and then commit
    with :meth:`save_manifest`. Reading, :meth:`check` and :meth:`prune` need no writer.
    """

    def __init__(
        self,
        backend: StoreBackend,
        config: dict[str, Any],
        crypto: Crypto,
        cache_dir: Path,
        owns_backend: bool,
    ) -> None:
        """Use :meth:`open`; this takes an already validated config."""
        self.backend = backend
        self.id: str = config["id"]
        self.config = config
        self.chunker_params = ChunkerParams.from_json(config["chunker"])
        self.pack_size = int(config.get("pack_size", PACK_SIZE))
        self.cache_dir = cache_dir
        params = self.chunker_params
        self._codec = _Codec(crypto, max(params.max_size, params.small_file_size))
        self._crypto = crypto
        self._owns_backend = owns_backend
        self._index = BlobIndex()
        self._index_files: set[str] = set()
        self._lock = threading.RLock()
        self._active_writers = 0
        # Writer locks kept after the writer exits, until save_manifest commits its data.
        self._uncommitted_locks: list[StoreLock] = []
        self._refresh_index(full=True)

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        location: str | StoreBackend,
        *,
        create: bool = True,
        key_file: Path | None = None,
        encrypt: bool = False,
        cache_dir: Path | None = None,
        kms_key_id: str | None = None,
    ) -> Repository:
        """Open the store at ``location`` (a URL for :func:`open_backend`, or a backend).

        ``create`` initialises an empty location (encrypted with a key from ``key_file``,
        created 0600 if missing, when ``encrypt``; or, given ``kms_key_id``, with an AWS KMS
        data key whose wrapped form is kept in the store's config). An encrypted store needs
        its key file, or KMS access to unwrap its data key; a wrong key raises
        :class:`StoreKeyError` before anything is written. The stat cache lives in
        ``cache_dir/<store id>/`` (default :func:`westtek_core.paths.cache_dir`).
        """
        owns = not isinstance(location, StoreBackend)
        backend = open_backend(location) if isinstance(location, str) else location
        try:
            try:
                raw = backend.load("config")
            except ObjectMissing:
                if not create:
                    raise StoreNotFound(f"no West Tek store at {backend.url}") from None
                raw = cls._initialise(backend, key_file if encrypt else None, encrypt, kms_key_id)
            config = _parse_config(raw, backend.url)
            crypto = _crypto_for(config, backend.url, key_file, encrypt)
            base = cache_dir if cache_dir is not None else default_cache_dir()
            return cls(backend, config, crypto, base / config["id"], owns)
        except BaseException:
            if owns:
                backend.close()
            raise

    @staticmethod
    def _initialise(
        backend: StoreBackend, key_file: Path | None, encrypt: bool, kms_key_id: str | None
    ) -> bytes:
        encryption: dict[str, Any] | None = None
        if encrypt:
            wrapped: dict[str, str] | None = None
            if kms_key_id:
                master, wrapped = generate_kms_data_key(kms_key_id)
            elif key_file is None:
                raise StoreKeyError("an encrypted store needs a key file: none was given")
            else:
                master = create_key_file(key_file)
            salt = secrets.token_bytes(16)
            encryption = {
                "cipher": "AES-256-GCM",
                "kdf": "blake3-derive-key",
                "salt": salt.hex(),
                "key_check": key_check_value(master, salt),
            }
            if wrapped:
                encryption["kms"] = wrapped
        config = {
            "format": "westtek-store",
            "version": FORMAT_VERSION,
            "id": secrets.token_hex(16),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "chunker": ChunkerParams().to_json(),
            "pack_size": PACK_SIZE,
            "compression": {"algorithm": "zstd", "level": ZSTD_LEVEL},
            "encryption": encryption,
        }
        backend.save("config", json.dumps(config, indent=2).encode() + b"\n")
        # Write-once: if another process initialised the store first, its config wins.
        return backend.load("config")

    def close(self) -> None:
        """Release locks still held for uncommitted writes; close a backend opened here."""
        with self._lock:
            locks, self._uncommitted_locks = self._uncommitted_locks, []
        for lock in locks:
            lock.release()
        if self._owns_backend:
            self.backend.close()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def encrypted(self) -> bool:
        """Whether objects are encrypted."""
        return self._crypto.encrypted

    # -- index ---------------------------------------------------------------------------

    def _refresh_index(self, full: bool = False) -> None:
        """Load index files written since the last look; reload all if any disappeared."""
        keys = {k.rpartition("/")[2]: k for k in self.backend.list("index/")}
        with self._lock:
            if not full and not self._index_files <= keys.keys():
                full = True  # a prune replaced index files
            known = set() if full else set(self._index_files)
        new = [name for name in keys if name not in known]
        index = BlobIndex() if full else None
        loaded: list[tuple[str, list[tuple[str, list[PackEntry]]]]] = []
        for name, packs in _map_threaded(lambda n: (n, self._load_index_file(keys[n])), new):
            if packs is not None:
                loaded.append((name, packs))
        with self._lock:
            target = index if index is not None else self._index
            for _name, packs in loaded:
                for pack_id, entries in packs:
                    target.add_pack(pack_id, entries)
            if index is not None:
                self._index = index
                self._index_files = {name for name, _ in loaded}
            else:
                self._index_files.update(name for name, _ in loaded)

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

    def has_chunk(self, chunk_id: str) -> bool:
        """Whether the index knows ``chunk_id``."""
        return _parse_id(chunk_id) in self._index

    def stored_size(self, chunk_ids: Iterable[str]) -> int:
        """Bytes the store holds for these chunks (compressed, as packed)."""
        self._refresh_index()
        total = 0
        for chunk_id in chunk_ids:
            location = self._index.get(_parse_id(chunk_id))
            total += location.length if location else 0
        return total

    # -- writing -------------------------------------------------------------------------

    def writer(self) -> RepositoryWriter:
        """A writer session; use it as a context manager."""
        return RepositoryWriter(self)

    def _write_index_file(self, packs: list[tuple[str, list[PackEntry]]]) -> str:
        stored = encode_index_file(packs, self._crypto, self._codec.compressor)
        name = blake3.blake3(stored).hexdigest()
        self.backend.save(f"index/{name}", stored)
        return name

    def _commit_session(self, index_name: str | None, session: BlobIndex, lock: StoreLock) -> None:
        with self._lock:
            self._index.update(session)
            if index_name is not None:
                self._index_files.add(index_name)
            self._uncommitted_locks.append(lock)

    def _release_uncommitted(self) -> None:
        with self._lock:
            if self._active_writers:
                return  # a running writer still needs its lock; they go on close()
            locks, self._uncommitted_locks = self._uncommitted_locks, []
        for lock in locks:
            lock.release()

    # -- reading -------------------------------------------------------------------------

    def read_chunk(self, chunk_id: str) -> bytes:
        """The plaintext of a chunk, verified against its id."""
        blob_id = _parse_id(chunk_id)
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

    def save_manifest(self, manifest: dict[str, Any]) -> str:
        """Store a snapshot manifest and return its id: the commit point of a snapshot.

        The id is the BLAKE3 of the manifest's canonical JSON. Call it after the writer
        whose chunks the manifest names has exited.
        """
        with self._lock:
            if self._active_writers:
                raise StoreError("save_manifest must be called after the writer has exited")
        raw = canonical_json(manifest)
        snapshot_id = blake3.blake3(raw).hexdigest()
        key = f"snapshots/{snapshot_id}"
        if not self.backend.exists(key):
            self.backend.save(key, self._codec.seal_document(raw))
        self._release_uncommitted()
        return snapshot_id

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

    def delete_manifest(self, snapshot_id: str) -> None:
        """Remove a snapshot (its data stays until :meth:`prune`)."""
        sid = self._resolve_snapshot(snapshot_id)
        if not self.backend.exists(f"snapshots/{sid}"):
            raise ObjectMissing(f"no snapshot {sid} in the store at {self.backend.url}")
        self.backend.remove(f"snapshots/{sid}")

    # -- maintenance ---------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counts over the index: packs, blobs, stored_bytes, raw_bytes, snapshots."""
        self._refresh_index()
        with self._lock:
            stored, raw = self._index.totals()
            packs = len(self._index.pack_ids())
            blobs = len(self._index)
        return {
            "packs": packs,
            "blobs": blobs,
            "stored_bytes": stored,
            "raw_bytes": raw,
            "snapshots": len(self.list_manifests()),
        }

    def _read_all_indexes(
        self, problems: list[str] | None
    ) -> tuple[list[str], dict[str, dict[bytes, PackEntry]]]:
        """Every index file's key and, per pack, its blobs (from all files, merged)."""
        keys = list(self.backend.list("index/"))
        packs: dict[str, dict[bytes, PackEntry]] = {}
        for key in keys:
            try:
                decoded = decode_index_file(self.backend.load(key), self._crypto, key)
            except (ObjectCorrupt, ObjectMissing) as exc:
                if problems is None:
                    raise StoreError(f"{exc}: run check, then retry") from None
                problems.append(str(exc))
                continue
            for pack_id, entries in decoded:
                blobs = packs.setdefault(pack_id, {})
                for entry in entries:
                    blobs.setdefault(entry.blob_id, entry)
        return keys, packs

    def _present_packs(self) -> dict[str, str]:
        return {k.rpartition("/")[2]: k for k in self.backend.list("data/")}

    def check(
        self, read_data: bool = True, progress: Callable[[int, int], None] | None = None
    ) -> CheckReport:
        """Verify the store: indexes, packs, snapshots; with ``read_data`` every chunk's hash.

        Problems are human lines naming the object; ``damaged_chunks`` lists the chunks with
        no intact copy anywhere. Packs no index lists are reported as orphans, not problems.
        ``progress(packs_done, packs_total)`` is called after each pack read.
        """
        report = CheckReport()
        _, indexed = self._read_all_indexes(report.problems)
        present = self._present_packs()
        healthy: set[bytes] = set()
        for pack_id in sorted(present.keys() - indexed.keys()):
            report.orphan_packs.append(present[pack_id])
        for pack_id in sorted(indexed.keys() - present.keys()):
            count = len(indexed[pack_id])
            report.problems.append(f"pack {pack_key(pack_id)} is missing ({count} chunks)")
        to_read = sorted(indexed.keys() & present.keys())
        if not read_data:
            for pack_id in to_read:
                healthy.update(indexed[pack_id])
        else:
            results = _map_threaded(
                lambda p: self._check_pack(p, present[p], indexed[p]), to_read, workers=2
            )
            for good, problems, count in results:
                healthy.update(good)
                report.problems.extend(problems)
                report.chunks_checked += count
                report.packs_checked += 1
                if progress:
                    progress(report.packs_checked, len(to_read))
        for blobs in indexed.values():
            report.damaged_chunks.update(b.hex() for b in blobs if b not in healthy)
        for sid in self.list_manifests():
            try:
                self.load_manifest(sid)
            except (ObjectCorrupt, ObjectMissing) as exc:
                report.problems.append(str(exc))
        return report

    def _check_pack(
        self, pack_id: str, key: str, blobs: dict[bytes, PackEntry]
    ) -> tuple[set[bytes], list[str], int]:
        problems: list[str] = []
        good: set[bytes] = set()
        try:
            data = self.backend.load(key)
        except ObjectMissing:
            return good, [f"pack {key} is missing ({len(blobs)} chunks)"], 0
        if blake3.blake3(data).hexdigest() != pack_id:
            problems.append(f"pack {key} does not match its id (damaged, {len(data)} bytes)")
        trailer: dict[bytes, PackEntry] = {}
        try:
            trailer = {e.blob_id: e for e in decode_trailer(data, self._crypto, f"pack {key}")}
        except ObjectCorrupt as exc:
            problems.append(str(exc))
        for blob_id, entry in blobs.items():
            what = f"chunk {blob_id.hex()} in pack {key}"
            if trailer and trailer.get(blob_id) != entry:
                problems.append(f"{what} is not where the index says")
            stored = data[entry.offset : entry.offset + entry.length]
            try:
                if len(stored) != entry.length:
                    raise ObjectCorrupt(f"{what} is truncated")
                plain = self._codec.decode_blob(stored, entry.flags, entry.raw_length, what)
                if len(plain) != entry.raw_length or self._crypto.chunk_id(plain) != blob_id:
                    raise ObjectCorrupt(f"{what} does not match its id (damaged)")
            except ObjectCorrupt as exc:
                problems.append(str(exc))
                continue
            good.add(blob_id)
        return good, problems, len(blobs)

    def prune(
        self,
        referenced: set[str] | Callable[[], set[str]],
        *,
        wait: float = 0.0,
    ) -> PruneStats:
        """Delete what no snapshot references, under an exclusive lock.

        ``referenced`` holds every chunk id the remaining snapshots use, or is a function
        computing that set; a function is called once the lock is held, so a snapshot
        committed meanwhile cannot lose its data (a set computed beforehand is only safe
        when no writer can commit in between). Packs with no referenced chunk are deleted;
        packs more than half unused are repacked; orphan packs go too; the index is
        rewritten. Refuses (:class:`StoreLockedError`) while a writer holds a fresh lock,
        after retrying for ``wait`` seconds.
        """
        with self._lock:
            if self._active_writers:
                raise StoreError("cannot prune while this process has a writer open")
        lock = StoreLock(self.backend, self._crypto, exclusive=True, purpose="prune").acquire(wait)
        try:
            chunk_ids = referenced() if callable(referenced) else referenced
            # A lock older than STALE_AFTER counts as abandoned: a long prune keeps renewing
            # its own, or a writer on another host could start and dedup against packs
            # this prune is about to delete.
            lock.refresh_if_due()
            return self._prune_locked({_parse_id(c) for c in chunk_ids}, lock.refresh_if_due)
        finally:
            lock.release()

    def _prune_locked(
        self, wanted: set[bytes], keep_fresh: Callable[[], None] = lambda: None
    ) -> PruneStats:
        stats = PruneStats()
        index_keys, indexed = self._read_all_indexes(None)
        present = self._present_packs()
        kept: list[tuple[str, list[PackEntry]]] = []
        to_repack: list[tuple[str, list[PackEntry]]] = []
        to_delete = [p for p in present if p not in indexed]  # orphans
        placed: set[bytes] = set()
        for pack_id, blobs in indexed.items():
            if pack_id not in present:
                continue
            used = [e for e in blobs.values() if e.blob_id in wanted and e.blob_id not in placed]
            placed.update(e.blob_id for e in used)
            total = sum(e.length for e in blobs.values())
            unused = total - sum(e.length for e in used)
            if not used:
                to_delete.append(pack_id)
                stats.removed_blobs += len(blobs)
            elif unused * 2 > total:
                to_repack.append((pack_id, used))
                stats.removed_blobs += len(blobs) - len(used)
            else:
                kept.append((pack_id, list(blobs.values())))
        stats.missing_blobs = len(wanted - placed)
        if stats.missing_blobs:
            log.warning("prune: %d referenced chunks are not in the store", stats.missing_blobs)
        new_packs = self._repack(to_repack, keep_fresh)
        new_index = kept + new_packs
        new_name = self._write_index_file(new_index) if new_index else None
        for key in index_keys:
            if key.rpartition("/")[2] != new_name:
                self.backend.remove(key)
        sizes = {p: sum(e.length for e in indexed.get(p, {}).values()) for p in present}
        for pack_id in to_delete + [p for p, _ in to_repack]:
            self.backend.remove(present[pack_id])
            stats.freed_bytes += sizes[pack_id]
        stats.freed_bytes -= sum(e.length for _, entries in new_packs for e in entries)
        stats.removed_packs = len(to_delete)
        stats.repacked_packs = len(to_repack)
        stats.kept_blobs = sum(len(entries) for _, entries in new_index)
        self._refresh_index(full=True)
        return stats

    def _repack(
        self,
        packs: list[tuple[str, list[PackEntry]]],
        keep_fresh: Callable[[], None] = lambda: None,
    ) -> list[tuple[str, list[PackEntry]]]:
        """Copy the given blobs (verified, still compressed and sealed) into new packs."""
        out: list[tuple[str, list[PackEntry]]] = []
        builder = _PackBuilder(self._crypto)
        for pack_id, entries in packs:
            keep_fresh()
            key = pack_key(pack_id)
            data = self.backend.load(key)
            for e in entries:
                stored = data[e.offset : e.offset + e.length]
                what = f"chunk {e.blob_id.hex()} in pack {key}"
                plain = self._codec.decode_blob(stored, e.flags, e.raw_length, what)
                if self._crypto.chunk_id(plain) != e.blob_id:
                    raise ObjectCorrupt(f"{what} does not match its id: run check; prune stopped")
                builder.add(e.blob_id, e.flags, stored, e.raw_length)
                if builder.size >= self.pack_size:
                    out.append(builder.save(self.backend))
                    builder = _PackBuilder(self._crypto)
        if builder.entries:
            out.append(builder.save(self.backend))
        return out


class _PackBuilder:
    """Accumulates stored blobs into one pack."""

    def __init__(self, crypto: Crypto) -> None:
        self._crypto = crypto
        self.parts: list[bytes] = []
        self.entries: list[PackEntry] = []
        self.size = 0

    def add(self, blob_id: bytes, flags: int, stored: bytes, raw_length: int) -> None:
        """Append one stored blob."""
        self.entries.append(PackEntry(blob_id, flags, self.size, len(stored), raw_length))
        self.parts.append(stored)
        self.size += len(stored)

    def finish(self) -> tuple[str, bytes]:
        """(pack id, pack bytes) with the trailer appended."""
        self.parts.append(_encode_trailer(self.entries, self._crypto))
        data = b"".join(self.parts)
        if len(data) > MAX_PACK_BYTES:
            raise StoreError("pack exceeds 4 GiB")  # cannot happen with ≤ 4 MiB chunks
        return blake3.blake3(data).hexdigest(), data

    def save(self, backend: StoreBackend) -> tuple[str, list[PackEntry]]:
        """Write the pack; return its id and entries."""
        pack_id, data = self.finish()
        backend.save(pack_key(pack_id), data)
        return pack_id, self.entries


class RepositoryWriter:
    """One writer session: chunks files, dedups, compresses and packs them.

    The calling thread reads and hashes (so ``add_*`` can return chunk ids at once); a
    small thread pool compresses, encrypts and writes packs. On normal exit the last pack
    and then one index file are written; after an exception nothing new is indexed, so
    packs already written are orphans that ``prune`` removes. After a normal exit the
    writer's lock is kept until :meth:`Repository.save_manifest` (or ``close``), so a
    prune cannot collect data the manifest about to be saved refers to.

    Counters: ``new_bytes`` (compressed, sealed bytes of the new blobs; complete once the
    session has exited, as compression runs behind the ``add_*`` calls), ``stat_cache_hits``
    and ``files_read`` (files whose content was opened).
    """

    def __init__(self, repo: Repository) -> None:
        self._repo = repo
        self._codec = repo._codec
        self._crypto = repo._crypto
        self._params = repo.chunker_params
        self._chunker = Chunker(self._params)
        self._session = BlobIndex()
        self._queued: set[bytes] = set()
        self._batch: list[tuple[bytes, bytes | memoryview]] = []
        self._batch_bytes = 0
        self._builder = _PackBuilder(self._crypto)
        self._pack_lock = threading.Lock()
        self._flow = threading.Condition()
        self._in_flight = 0
        self._pending: set[Future[None]] = set()
        self._error: BaseException | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock: StoreLock | None = None
        self._statcache: StatCache | None = None
        self.new_bytes = 0
        self.stat_cache_hits = 0
        self.files_read = 0

    # -- session -------------------------------------------------------------------------

    def __enter__(self) -> RepositoryWriter:
        if self._pool is not None:
            raise StoreError("a writer session can only be entered once")
        self._lock = StoreLock(self._repo.backend, self._crypto, exclusive=False, purpose="writer")
        self._lock.acquire()
        with self._repo._lock:
            self._repo._active_writers += 1
        try:
            self._repo._refresh_index()  # see packs a prune removed since we opened
            self._statcache = StatCache(self._repo.cache_dir / "statcache.sqlite")
            self._pool = ThreadPoolExecutor(_COMPRESS_THREADS, thread_name_prefix="westtek-pack")
        except BaseException:
            self._end(success=False)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._end(success=False)
            return
        try:
            self._flush_batch()
            self._drain()
            if self._builder.entries:
                self._save_pack(self._builder)
            index_name = None
            if len(self._session):
                index_name = self._repo._write_index_file(list(self._session.iter_packs()))
        except BaseException:
            self._end(success=False)
            raise
        assert self._lock is not None
        self._repo._commit_session(index_name, self._session, self._lock)
        if self._statcache is not None:
            self._statcache.commit()
        self._end(success=True)

    def _end(self, success: bool) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=not success)
        if self._statcache is not None:
            if not success:
                self._statcache.discard()
            self._statcache.close()
        if not success and self._lock is not None:
            self._lock.release()
        with self._repo._lock:
            self._repo._active_writers -= 1

    # -- adding --------------------------------------------------------------------------

    def add_bytes(self, data: bytes) -> FileContent:
        """Store an in-memory buffer as a file's content."""
        self._check_alive()
        ids = [self._add_chunk(chunk) for chunk in self._chunker.cut_buffer(data)]
        return FileContent(len(data), tuple(i.hex() for i in ids))

    def add_file(self, path: Path) -> FileContent:
        """Store a regular file's content, skipping the read when the stat cache says so."""
        self._check_alive()
        name = os.path.abspath(path)
        st = os.stat(name)
        if self._statcache is not None:
            cached = self._statcache.lookup(name, st)
            if cached is not None and all(i in self._repo._index for i in cached):
                self.stat_cache_hits += 1
                return FileContent(st.st_size, tuple(i.hex() for i in cached))
        # os-level calls: io.open/close cost ~15 µs per file, a third of a small file's time.
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fst = os.fstat(fd)
            self.files_read += 1
            if fst.st_size < self._params.small_file_size:
                data = _read_all(fd, fst.st_size)
                ids = [self._add_chunk(chunk) for chunk in self._chunker.cut_buffer(data)]
                size = len(data)
            else:
                ids, size = [], 0
                with open(fd, "rb", buffering=0, closefd=False) as stream:
                    for chunk in self._chunker.cut_stream(stream):
                        ids.append(self._add_chunk(chunk))
                        size += len(chunk)
        finally:
            os.close(fd)
        if self._statcache is not None and size == fst.st_size:
            self._statcache.record(name, fst, ids)
        return FileContent(size, tuple(i.hex() for i in ids))

    def add_chunk(self, data: bytes) -> str:
        """Store one chunk as given (no re-chunking); its id in this store.

        For copying snapshots between stores: the chunk boundaries stay, the ids follow
        this store's keys.
        """
        self._check_alive()
        return self._add_chunk(data).hex()

    def _check_alive(self) -> None:
        if self._pool is None:
            raise StoreError("use the writer as a context manager: with repo.writer() as w")
        if self._error is not None:
            raise self._error
        assert self._lock is not None
        self._lock.refresh_if_due()

    def _add_chunk(self, data: bytes | memoryview) -> bytes:
        blob_id = self._crypto.chunk_id(data)
        if blob_id in self._queued or blob_id in self._repo._index:
            return blob_id
        self._queued.add(blob_id)
        if len(data) < _BATCH_CHUNK:
            self._batch.append((blob_id, data))
            self._batch_bytes += len(data)
            if self._batch_bytes >= _BATCH_BYTES or len(self._batch) >= _BATCH_COUNT:
                self._flush_batch()
        else:
            self._submit([(blob_id, data)], len(data))
        return blob_id

    def _flush_batch(self) -> None:
        if self._batch:
            batch, size = self._batch, self._batch_bytes
            self._batch, self._batch_bytes = [], 0
            self._submit(batch, size)

    def _submit(self, batch: list[tuple[bytes, bytes | memoryview]], size: int) -> None:
        with self._flow:
            while self._in_flight and self._in_flight + size > _MAX_IN_FLIGHT:
                self._flow.wait()
            self._in_flight += size
        if self._error is not None:
            raise self._error
        assert self._pool is not None
        future = self._pool.submit(self._pack_batch, batch, size)
        with self._flow:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._flow:
            self._pending.discard(future)
            self._flow.notify_all()
        if not future.cancelled() and future.exception() is not None and self._error is None:
            self._error = future.exception()

    def _drain(self) -> None:
        with self._flow:
            while self._pending:
                self._flow.wait()
        if self._error is not None:
            raise self._error

    def _pack_batch(self, batch: list[tuple[bytes, bytes | memoryview]], size: int) -> None:
        """Worker thread: compress and seal, append to the open pack, save it when full."""
        try:
            encoded = [(bid, *self._codec.encode_blob(data), len(data)) for bid, data in batch]
            full: _PackBuilder | None = None
            with self._pack_lock:
                for blob_id, flags, stored, raw_length in encoded:
                    self._builder.add(blob_id, flags, stored, raw_length)
                    self.new_bytes += len(stored)
                if self._builder.size >= self._repo.pack_size:
                    full, self._builder = self._builder, _PackBuilder(self._crypto)
        finally:
            with self._flow:
                self._in_flight -= size
                self._flow.notify_all()
        if full is not None:
            self._save_pack(full)

    def _save_pack(self, builder: _PackBuilder) -> None:
        pack_id, entries = builder.save(self._repo.backend)
        with self._pack_lock:
            self._session.add_pack(pack_id, entries)


def _read_all(fd: int, size: int) -> bytes:
    """The rest of ``fd``, expected to be ``size`` bytes: one ``read`` unless it grew."""
    data = os.read(fd, size + 1)
    if len(data) <= size:
        return data
    parts = [data]
    while block := os.read(fd, 1 << 20):
        parts.append(block)
    return b"".join(parts)


def _parse_id(chunk_id: str) -> bytes:
    try:
        blob_id = bytes.fromhex(chunk_id)
    except (ValueError, TypeError):
        blob_id = b""
    if len(blob_id) != 32:
        raise StoreError(f"{chunk_id!r} is not a chunk id (64 hex characters)")
    return blob_id


def _parse_config(raw: bytes, url: str) -> dict[str, Any]:
    try:
        config = json.loads(raw)
        version = config["version"]
        if not isinstance(version, int):
            raise TypeError("version is not an integer")
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreFormatError(f"store at {url} has an unreadable config ({exc})") from None
    if version > FORMAT_VERSION:
        raise StoreFormatError(
            f"store at {url} was written by a newer West Tek (format {version}, this one reads"
            f" up to {FORMAT_VERSION}): upgrade westtek"
        )
    if config.get("format") != "westtek-store" or version < 1 or "id" not in config:
        raise StoreFormatError(f"store at {url} has a config West Tek does not recognise")
    ChunkerParams.from_json(config.get("chunker"))
    return dict(config)


def _crypto_for(config: dict[str, Any], url: str, key_file: Path | None, encrypt: bool) -> Crypto:
    encryption = config.get("encryption")
    if not encryption:
        if encrypt:
            raise StoreError(f"store at {url} is not encrypted (it was created without a key)")
        return Crypto()
    if isinstance(encryption.get("kms"), dict):
        master = unwrap_kms_data_key(encryption["kms"], url)
    elif key_file is None:
        raise StoreKeyError(f"store at {url} is encrypted: its key file is needed")
    else:
        master = read_key_file(key_file)
    try:
        salt = bytes.fromhex(encryption["salt"])
        check = str(encryption["key_check"])
    except (KeyError, TypeError, ValueError):
        raise StoreFormatError(f"store at {url} has malformed encryption settings") from None
    if not secrets.compare_digest(key_check_value(master, salt), check):
        raise StoreKeyError(f"the key given does not open the store at {url} (wrong key)")
    return Crypto(master, salt)


def _map_threaded(fn: Callable[[Any], Any], items: list[Any], workers: int = 8) -> Iterator[Any]:
    """``map`` in threads for I/O-bound loads (sequential when there are few items)."""
    if len(items) <= 2:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="westtek-io") as pool:
        yield from pool.map(fn, items)
