"""The knowledge-base index: one small interface, SQLite FTS5 + embeddings by default.

``HybridSqliteIndex`` keeps parents, children, BM25 over the children (FTS5) and the
children's embeddings in one SQLite file per lab. A query ranks children both ways and
fuses the two rankings by reciprocal rank (RRF): BM25 finds exact names
(``curve_fit``, ``scipy==1.10``), embeddings find paraphrases ("why is it pinned").
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from westtek_core.kb.chunking import Parent
from westtek_core.kb.embedding import StaticEmbedder, Vectors

RRF_K = 5
# BM25's clear first places must not be pulled down by a weaker embedding ranking: measured
# on bench/kb.py's 93 questions, weight 0.3 with k=5 ranks best (MRR) of the grid tried
RRF_WEIGHTS = {"bm25": 1.0, "embedding": 0.3}
CANDIDATES = 50
SEARCH_MODES = ("hybrid", "bm25", "embedding")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    source TEXT NOT NULL, kind TEXT NOT NULL, fingerprint TEXT NOT NULL, ingested REAL,
    PRIMARY KEY (source, kind)
);
CREATE TABLE IF NOT EXISTS parents (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS children (
    id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL, source TEXT NOT NULL,
    kind TEXT NOT NULL, locator TEXT NOT NULL, embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS children_by_source ON children (source, kind);
CREATE VIRTUAL TABLE IF NOT EXISTS children_fts USING fts5(
    text, tokenize = "porter unicode61 tokenchars '_'"
);
"""
_TERM = re.compile(r"\w+")


@dataclass(frozen=True)
class SearchResult:
    """A retrieved passage: where it is (source, locator), its score and its text."""

    source: str
    locator: str
    score: float
    text: str
    kind: str

    def to_json(self) -> dict[str, Any]:
        """The ``kb search --json`` result shape."""
        return {
            "source": self.source,
            "locator": self.locator,
            "score": round(self.score, 6),
            "text": self.text,
            "kind": self.kind,
        }


class KnowledgeIndex:
    """What every index backend does: replace a document's chunks, remove, search."""

    def fingerprint(self, source: str, kind: str) -> str | None:
        """The stored fingerprint of a document, if it is indexed."""
        raise NotImplementedError

    def sources(self, kind: str) -> list[str]:
        """Every indexed source of a kind."""
        raise NotImplementedError

    def replace(self, source: str, kind: str, fingerprint: str, parents: Sequence[Parent]) -> int:
        """Index a document's chunks in place of its old ones; returns the children added."""
        raise NotImplementedError

    def remove(self, source: str, kind: str) -> None:
        """Forget a document."""
        raise NotImplementedError

    def search(
        self, query: str, k: int = 5, kinds: set[str] | None = None, mode: str = "hybrid"
    ) -> list[SearchResult]:
        """The ``k`` best passages, one per parent, best first."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the index."""


def fts_query(text: str) -> str:
    """A query's words OR-ed for FTS5, quoted so no word is read as syntax."""
    terms = dict.fromkeys(t.lower() for t in _TERM.findall(text))
    return " OR ".join(f'"{t}"' for t in terms)


class HybridSqliteIndex(KnowledgeIndex):
    """BM25 (SQLite FTS5) fused with static embeddings, in one SQLite file."""

    def __init__(self, path: Path, embedder: StaticEmbedder) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.embedder = embedder
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._matrix: tuple[Vectors, list[int], list[str]] | None = None

    def fingerprint(self, source: str, kind: str) -> str | None:
        """The stored fingerprint of a document, if it is indexed."""
        with self._lock:
            row = self._db.execute(
                "SELECT fingerprint FROM documents WHERE source = ? AND kind = ?", (source, kind)
            ).fetchone()
        return str(row[0]) if row else None

    def sources(self, kind: str) -> list[str]:
        """Every indexed source of a kind."""
        with self._lock:
            rows = self._db.execute("SELECT source FROM documents WHERE kind = ?", (kind,))
            return [str(r[0]) for r in rows]

    def _delete(self, source: str, kind: str) -> None:
        ids = [
            r[0]
            for r in self._db.execute(
                "SELECT id FROM children WHERE source = ? AND kind = ?", (source, kind)
            )
        ]
        self._db.executemany("DELETE FROM children_fts WHERE rowid = ?", [(i,) for i in ids])
        self._db.execute("DELETE FROM children WHERE source = ? AND kind = ?", (source, kind))
        self._db.execute("DELETE FROM parents WHERE source = ? AND kind = ?", (source, kind))
        self._db.execute("DELETE FROM documents WHERE source = ? AND kind = ?", (source, kind))

    def replace(self, source: str, kind: str, fingerprint: str, parents: Sequence[Parent]) -> int:
        """Index a document's chunks in place of its old ones, in one transaction."""
        texts = [c.text for p in parents for c in p.children]
        vectors = self.embedder.embed(texts)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._delete(source, kind)
                row = 0
                for parent in parents:
                    parent_id = self._db.execute(
                        "INSERT INTO parents (source, kind, text) VALUES (?, ?, ?)",
                        (source, kind, parent.text),
                    ).lastrowid
                    for child in parent.children:
                        child_id = self._db.execute(
                            "INSERT INTO children (parent_id, source, kind, locator, embedding)"
                            " VALUES (?, ?, ?, ?, ?)",
                            (parent_id, source, kind, child.locator, vectors[row].tobytes()),
                        ).lastrowid
                        self._db.execute(
                            "INSERT INTO children_fts (rowid, text) VALUES (?, ?)",
                            (child_id, child.text),
                        )
                        row += 1
                self._db.execute(
                    "INSERT INTO documents (source, kind, fingerprint, ingested)"
                    " VALUES (?, ?, ?, strftime('%s','now'))",
                    (source, kind, fingerprint),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._matrix = None
        return len(texts)

    def remove(self, source: str, kind: str) -> None:
        """Forget a document."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._delete(source, kind)
            self._db.execute("COMMIT")
            self._matrix = None

    def _embeddings(self) -> tuple[Vectors, list[int], list[str]]:
        if self._matrix is None:
            rows = self._db.execute("SELECT id, kind, embedding FROM children").fetchall()
            matrix = (
                np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(
                    len(rows), self.embedder.dimensions
                )
                if rows
                else np.zeros((0, self.embedder.dimensions), dtype=np.float32)
            )
            self._matrix = (matrix, [int(r[0]) for r in rows], [str(r[1]) for r in rows])
        return self._matrix

    def _bm25(self, query: str, kinds: set[str] | None) -> list[int]:
        match = fts_query(query)
        if not match:
            return []
        rows = self._db.execute(
            "SELECT children_fts.rowid, children.kind FROM children_fts"
            " JOIN children ON children.id = children_fts.rowid"
            " WHERE children_fts MATCH ? ORDER BY bm25(children_fts) LIMIT ?",
            (match, CANDIDATES * 4 if kinds else CANDIDATES),
        ).fetchall()
        return [int(r[0]) for r in rows if not kinds or r[1] in kinds][:CANDIDATES]

    def _nearest(self, query: str, kinds: set[str] | None) -> list[int]:
        matrix, ids, row_kinds = self._embeddings()
        if not ids:
            return []
        scores = matrix @ self.embedder.embed([query])[0]
        if kinds:
            scores = np.where([k in kinds for k in row_kinds], scores, -np.inf)
        best = np.argsort(-scores)[:CANDIDATES]
        return [ids[i] for i in best if np.isfinite(scores[i])]

    def search(
        self, query: str, k: int = 5, kinds: set[str] | None = None, mode: str = "hybrid"
    ) -> list[SearchResult]:
        """The ``k`` best passages, one per parent, best first."""
        if mode not in SEARCH_MODES:
            raise ValueError(f"search mode must be one of {', '.join(SEARCH_MODES)}")
        with self._lock:
            rankings: list[tuple[float, list[int]]] = []
            if mode in ("hybrid", "bm25"):
                rankings.append((RRF_WEIGHTS["bm25"], self._bm25(query, kinds)))
            if mode in ("hybrid", "embedding"):
                rankings.append((RRF_WEIGHTS["embedding"], self._nearest(query, kinds)))
            fused: dict[int, float] = {}
            for weight, ranking in rankings:
                for rank, child_id in enumerate(ranking):
                    fused[child_id] = fused.get(child_id, 0.0) + weight / (RRF_K + rank + 1)
            results: list[SearchResult] = []
            seen_parents: set[int] = set()
            for child_id, score in sorted(fused.items(), key=lambda item: -item[1]):
                row = self._db.execute(
                    "SELECT children.parent_id, children.source, children.locator,"
                    " children.kind, parents.text FROM children"
                    " JOIN parents ON parents.id = children.parent_id WHERE children.id = ?",
                    (child_id,),
                ).fetchone()
                if row is None or row[0] in seen_parents:
                    continue
                seen_parents.add(row[0])
                results.append(SearchResult(row[1], row[2], score, row[4], row[3]))
                if len(results) == k:
                    break
        return results

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
