"""The lab's knowledge base: its notebooks, snapshots, install history and experiment logs.

Everything ingested is redacted (e-mail addresses, phone numbers, keys, tokens), converted
to located sections (a notebook cell, a manifest line…), chunked hierarchically and indexed
for hybrid search. Each lab has its own index file, so nothing of one lab can be retrieved
through another's. Re-ingestion is incremental: an unchanged source is skipped by its
fingerprint, a vanished one is forgotten.
"""

from westtek_core.kb.backend import KnowledgeIndexBackend
from westtek_core.kb.index import SEARCH_MODES, HybridSqliteIndex, KnowledgeIndex, SearchResult
from westtek_core.kb.knowledge_base import (
    IngestReport,
    KnowledgeBase,
    default_index_path,
)

__all__ = [
    "SEARCH_MODES",
    "HybridSqliteIndex",
    "IngestReport",
    "KnowledgeBase",
    "KnowledgeIndex",
    "KnowledgeIndexBackend",
    "SearchResult",
    "default_index_path",
]
