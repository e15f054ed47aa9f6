"""Writing to a repository: chunks into packs, one index file per writer, then the manifest.

:class:`RepositoryWriter` is the session (``with repo.writer() as w``): the caller's thread
reads, chunks and hashes, a small pool compresses, encrypts and appends to a pack being
assembled in a staged file (not in memory), and saves full packs; on a normal exit it adds
one index file. Its shared lock is kept until
:meth:`WriteOps.save_manifest` commits the snapshot, so a prune in between cannot collect
the new data. :class:`PackBuilder` is also how maintenance repacks.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

import blake3
from pyfastcdc import BinaryStreamReader

from westtek_core.paths import FileVersion, file_version
from westtek_core.store.backend import StagedObject, StoreBackend
from westtek_core.store.chunker import Chunker
from westtek_core.store.crypto import Crypto
from westtek_core.store.errors import SourceChanged, StoreError
from westtek_core.store.index import BlobIndex, encode_index_file
from westtek_core.store.locks import StoreLock
from westtek_core.store.pack import MAX_PACK_BYTES, PackEntry, encode_trailer
from westtek_core.store.repository.state import (
    FileContent,
    RepositoryState,
    canonical_json,
    pack_key,
)
from westtek_core.store.statcache import StatCache

# Chunks smaller than this are compressed in batches, to keep per-file overhead low.
_BATCH_CHUNK = 64 << 10
_BATCH_BYTES = 1 << 20
_BATCH_COUNT = 256
# Raw bytes handed to the compression threads and not yet packed; bounds writer memory.
# 8 MiB (two 4 MiB batches, one per thread) kept the benchmark's first snapshot as fast as
# 16 MiB did, with ~4 MiB less peak RSS.
_MAX_IN_FLIGHT = 8 << 20
# Threads compressing/encrypting while the caller's thread reads and hashes.
_COMPRESS_THREADS = max(1, min(2, os.cpu_count() or 1))


class WriteOps(RepositoryState):
    """The write operations of :class:`~westtek_core.store.Repository`."""

    def writer(self) -> RepositoryWriter:
        """A writer session; use it as a context manager."""
        return RepositoryWriter(self)

    def save_manifest(self, manifest: dict[str, Any]) -> str:
        """Store a snapshot manifest and return its id: the commit point of a snapshot.

        The id is the BLAKE3 of the manifest's canonical JSON. Call it after the writer
        whose chunks the manifest names has exited.
        """
        return self.save_encoded_manifest(canonical_json(manifest))

    def save_encoded_manifest(self, raw: bytes) -> str:
        """:meth:`save_manifest` for a manifest already encoded by :func:`canonical_json`."""
        with self._lock:
            if self._active_writers:
                raise StoreError("save_manifest must be called after the writer has exited")
        snapshot_id = blake3.blake3(raw).hexdigest()
        key = f"snapshots/{snapshot_id}"
        if not self.backend.exists(key):
            self.backend.save(key, self._codec.seal_document(raw))
        self._release_uncommitted()
        return snapshot_id

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


class PackBuilder:
    """Accumulates stored blobs into one pack, assembled in a staged file, not in memory.

    The pack is hashed as it is written; :meth:`save` appends the trailer and saves the
    file under the pack's id. Until then it is no object: a crash leaves at most a stray
    temporary file, never a half pack under a key (see :class:`StagedObject`).
    """

    def __init__(self, crypto: Crypto, backend: StoreBackend) -> None:
        self._crypto = crypto
        self._backend = backend
        self._staged: StagedObject | None = None
        self._hash = blake3.blake3()
        self._id: str | None = None
        self.entries: list[PackEntry] = []
        self.size = 0

    def add(self, blob_id: bytes, flags: int, stored: bytes, raw_length: int) -> None:
        """Append one stored blob."""
        if self._id is not None:
            raise StoreError("a finished pack cannot take more blobs")
        if self.size + len(stored) > MAX_PACK_BYTES:
            raise StoreError("pack exceeds 4 GiB")  # cannot happen with ≤ 4 MiB chunks
        if self._staged is None:
            self._staged = self._backend.stage()
        self._write(stored)
        self.entries.append(PackEntry(blob_id, flags, self.size, len(stored), raw_length))
        self.size += len(stored)

    def finish(self) -> str:
        """Append the trailer (once); the pack's id. Nothing can be added afterwards."""
        if self._id is None:
            if self._staged is None:
                self._staged = self._backend.stage()
            self._write(encode_trailer(self.entries, self._crypto))
            self._id = self._hash.hexdigest()
        return self._id

    def save(self) -> tuple[str, list[PackEntry]]:
        """Write the pack under its id (finishing it if need be); its id and entries.

        The temporary file goes, whether the pack was saved or not.
        """
        try:
            pack_id = self.finish()
            assert self._staged is not None
            self._staged.save(pack_key(pack_id))
        finally:
            self.discard()
        return pack_id, self.entries

    def discard(self) -> None:
        """Drop an unsaved pack's temporary file."""
        if self._staged is not None:
            self._staged.discard()

    def _write(self, data: bytes) -> None:
        assert self._staged is not None
        self._staged.write(data)
        self._hash.update(data)


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

    def __init__(self, repo: WriteOps) -> None:
        self._repo = repo
        self._codec = repo._codec
        self._crypto = repo._crypto
        self._params = repo.chunker_params
        self._chunker = Chunker(self._params)
        self._session = BlobIndex()
        self._queued: set[bytes] = set()
        self._batch: list[tuple[bytes, bytes | memoryview]] = []
        self._batch_bytes = 0
        self._builder = PackBuilder(self._crypto, repo.backend)
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
        self._builder.discard()  # the unsaved last pack of a failed session
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

    def add_file(
        self,
        path: str | os.PathLike[str],
        expect: os.stat_result | None = None,
        *,
        seen: FileVersion | None = None,
    ) -> FileContent:
        """Store a regular file's content, skipping the read when the stat cache says so.

        ``expect`` is the version of the file its caller checked (size, times and inode,
        as a secret scan saw them): when the file is no longer that version, before or
        while it is read, :class:`SourceChanged` is raised and no byte read since it
        changed is stored. The file is streamed, each read checked (see
        :class:`_CheckedReader`), so a big file is never held whole.
        ``seen`` is the version a walk just saw (``FileEntry.version``), trusted for the
        stat cache's check instead of a second ``stat``, as restic trusts its walk's.
        """
        self._check_alive()
        name = os.fspath(path)
        if not os.path.isabs(name):
            name = os.path.abspath(name)
        if expect is not None:
            version = file_version(os.stat(name))
            if version != file_version(expect):
                raise SourceChanged(f"{name} changed after it was checked")
        else:
            version = seen or file_version(os.stat(name))
        if self._statcache is not None:
            cached = self._statcache.lookup(name, version)
            if cached is not None and all(i in self._repo._index for i in cached):
                self.stat_cache_hits += 1
                return FileContent(version[0], tuple(i.hex() for i in cached))
        # os-level calls: io.open/close cost ~15 µs per file, a third of a small file's time.
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fst = os.fstat(fd)
            self.files_read += 1
            if expect is not None and file_version(fst) != file_version(expect):
                raise SourceChanged(f"{name} changed after it was checked")
            if fst.st_size < self._params.small_file_size:
                data = _read_all(fd, fst.st_size)
                if expect is not None and file_version(os.fstat(fd)) != file_version(expect):
                    raise SourceChanged(f"{name} changed after it was checked")
                ids = [self._add_chunk(chunk) for chunk in self._chunker.cut_buffer(data)]
                size = len(data)
            else:
                ids, size = [], 0
                stream: BinaryStreamReader = (
                    _CheckedReader(fd, name, file_version(expect))
                    if expect is not None
                    else open(fd, "rb", buffering=0, closefd=False)
                )
                for chunk in self._chunker.cut_stream(stream):
                    ids.append(self._add_chunk(chunk))
                    size += len(chunk)
        finally:
            os.close(fd)
        if self._statcache is not None and size == fst.st_size:
            self._statcache.record(name, file_version(fst), ids)
        return FileContent(size, tuple(i.hex() for i in ids))

    def reuse(self, chunk_ids: Iterable[bytes], files: int) -> bool:
        """Whether content an earlier session stored, ``chunk_ids``, is all still in the store.

        When it is, the ``files`` it is the content of count as unchanged, read no more
        than stat cache hits are; a prune since may have removed some (then: False).
        """
        self._check_alive()
        if not self._repo._index.has_all(chunk_ids):
            return False
        self.stat_cache_hits += files
        return True

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
        if isinstance(data, memoryview) and len(data) != len(data.obj):  # type: ignore[arg-type]
            # a view into a file read whole: copied, or the chunks waiting for compression
            # would keep whole files alive beyond the in-flight budget, which counts chunks
            data = data.tobytes()
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
            full: PackBuilder | None = None
            with self._pack_lock:
                for blob_id, flags, stored, raw_length in encoded:
                    self._builder.add(blob_id, flags, stored, raw_length)
                    self.new_bytes += len(stored)
                if self._builder.size >= self._repo.pack_size:
                    full, self._builder = (
                        self._builder,
                        PackBuilder(self._crypto, self._repo.backend),
                    )
        finally:
            with self._flow:
                self._in_flight -= size
                self._flow.notify_all()
        if full is not None:
            self._save_pack(full)

    def _save_pack(self, builder: PackBuilder) -> None:
        pack_id, entries = builder.save()
        with self._pack_lock:
            self._session.add_pack(pack_id, entries)
        _release_freed_memory()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def _release_freed_memory() -> None:
    """Hand the heap's free pages back to the OS once a pack is out.

    glibc keeps freed chunk and pack buffers in each thread's arena, so without this the
    resident size of a first snapshot grows far beyond what is alive (~280 MiB measured
    for ~140 MiB in use on the benchmark tree); a trim per 16 MiB pack costs ~1 ms.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class _CheckedReader:
    """Reads of a file that fail once it is no longer the version its caller checked.

    The version is compared after every read, before the chunker sees its bytes, so every
    byte stored was read while the file was still that version (the scanned one): a change
    never lets bytes the scan did not see into the store, while memory stays one chunker
    buffer however big the file.
    """

    def __init__(self, fd: int, name: str, version: FileVersion) -> None:
        self._fd = fd
        self._name = name
        self._version = version

    def readinto(self, buffer: memoryview, /) -> int:
        """One ``readv`` into ``buffer``; :class:`SourceChanged` if the file changed."""
        count = os.readv(self._fd, [buffer])
        if file_version(os.fstat(self._fd)) != self._version:
            raise SourceChanged(f"{self._name} changed after it was checked")
        return count


def _read_all(fd: int, size: int) -> bytes:
    """The rest of ``fd``, expected to be ``size`` bytes: one ``read`` unless it grew."""
    data = os.read(fd, size + 1)
    if len(data) <= size:
        return data
    parts = [data]
    while block := os.read(fd, 1 << 20):
        parts.append(block)
    return b"".join(parts)
