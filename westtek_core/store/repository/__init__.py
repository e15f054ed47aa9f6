"""The repository: chunks in packs, an index, snapshot manifests; writers, check and prune.

Split by operation, as restic's ``internal/repository``: ``repository.py`` opens or
creates a store (config, keys) and assembles :class:`Repository`; ``read.py``,
``write.py`` and ``maintenance.py`` hold its reads, its writes and its check/prune;
``state.py`` what they share. Import from here (or from :mod:`westtek_core.store`).
"""

from westtek_core.store.repository.maintenance import CheckReport, PruneStats
from westtek_core.store.repository.repository import FORMAT_VERSION, Repository
from westtek_core.store.repository.state import (
    PACK_SIZE,
    ZSTD_LEVEL,
    FileContent,
    canonical_json,
    canonical_text,
    pack_key,
)
from westtek_core.store.repository.write import PackBuilder, RepositoryWriter

# The name snapshot.repair (rebuilding an index from packs) has long imported it by.
_PackBuilder = PackBuilder

__all__ = [
    "FORMAT_VERSION",
    "PACK_SIZE",
    "ZSTD_LEVEL",
    "CheckReport",
    "FileContent",
    "PackBuilder",
    "PruneStats",
    "Repository",
    "RepositoryWriter",
    "canonical_json",
    "canonical_text",
    "pack_key",
]
