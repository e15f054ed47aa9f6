"""The West Tek snapshot store: content-addressed, deduplicated, compressed, optionally encrypted.

Modelled on restic's design. Every object is written once, atomically, and never modified;
ids are BLAKE3 hashes (hex), so identity is content. Layout under a backend::

    config                      plain JSON: {"format": "westtek-store", "version": 1,
                                "id", "chunker": {...}, "pack_size", "compression",
                                "encryption": null | {"cipher", "kdf", "salt", "key_check"}}
    data/<2 hex>/<pack id>      packs of ~16 MiB of blobs (see westtek_core.store.pack);
                                pack id = BLAKE3 of the whole pack file
    index/<id>                  sealed zstd JSON, one per writer session: blob → pack, offset,
                                stored length, raw length, flags; id = BLAKE3 of stored bytes
    snapshots/<id>              sealed zstd of the manifest's canonical JSON;
                                id = BLAKE3 of that canonical JSON (the commit point)
    locks/<random>              sealed JSON {time, pid, hostname, exclusive, purpose}
    tmp/                        partial writes and packs being assembled (local directory
                                backend only; other backends assemble packs in the system's
                                temporary directory, then upload them)

Files are cut into chunks (one chunk below 512 KiB, FastCDC 256 KiB/~1 MiB/4 MiB above);
a chunk's id is BLAKE3 of its plaintext, keyed with a key derived from the master key when
the store is encrypted. A blob is the chunk zstd-compressed at level 3 (stored raw, flag
bit 0 clear, when that does not shrink it), then "sealed". Sealing is the identity for an
unencrypted store and AES-256-GCM (``nonce (12) || ciphertext || tag (16)``) with a key
derived from the 32-byte master key and the config's salt otherwise; the config keeps a
key-check value so a wrong key is refused before anything is written.

Writers take a shared lock and add one index file when they finish; a snapshot exists once
its manifest is saved. ``prune`` takes an exclusive lock. Locks older than 30 minutes, or
naming a dead process on this host, are ignored.
"""

from westtek_core.store.backend import (
    Availability,
    LocalDirectoryBackend,
    ObjectAvailability,
    StoreBackend,
)
from westtek_core.store.errors import (
    ArchiveWait,
    ObjectArchived,
    ObjectCorrupt,
    ObjectMissing,
    SnapshotNotFound,
    SourceChanged,
    StoreError,
    StoreFormatError,
    StoreKeyError,
    StoreLockedError,
    StoreNotFound,
)
from westtek_core.store.location import open_backend
from westtek_core.store.repository import (
    CheckReport,
    FileContent,
    PruneStats,
    Repository,
    RepositoryWriter,
)
from westtek_core.store.s3 import S3Backend

__all__ = [
    "ArchiveWait",
    "Availability",
    "CheckReport",
    "FileContent",
    "LocalDirectoryBackend",
    "ObjectArchived",
    "ObjectAvailability",
    "ObjectCorrupt",
    "ObjectMissing",
    "PruneStats",
    "Repository",
    "RepositoryWriter",
    "S3Backend",
    "SnapshotNotFound",
    "SourceChanged",
    "StoreBackend",
    "StoreError",
    "StoreFormatError",
    "StoreKeyError",
    "StoreLockedError",
    "StoreNotFound",
    "open_backend",
]
