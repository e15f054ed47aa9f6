"""The knowledge-base index: one small interface, SQLite FTS5 + embeddings by default.

``HybridSqliteIndex`` keeps parents, children, BM25 over the children (FTS5) and the
children's embeddings in one SQLite file per lab. A query scores children both ways and
blends the two scores (see ``fuse``): BM25 finds exact names (``curve_fit``,
``scipy==1.10``), embeddings find paraphrases ("why is it pinned") and reorder.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from westtek_core.kb.chunking import Parent
from westtek_core.kb.embedding import (
    SMOOTHING,
    Counts,
    StaticEmbedder,
    Vectors,
    frequency_weights,
)
from westtek_core.paths import claim_database

# The hybrid score is BM25_SHARE x BM25 + (1 - BM25_SHARE) x cosine, each as a z-score over
# the candidates. Researchers ask with the domain words BM25 matches, so BM25 leads and the
# embeddings reorder and add what BM25 ranks just too low. bench/kb.py chose 0.75 with the
# embedder's SMOOTHING on its first 120 questions: the middle of the range (0.6-0.9) where
# hybrid keeps every BM25 top-5 answer; 40 questions written afterwards confirmed it.
BM25_SHARE = 0.75
CANDIDATES = 50
SEARCH_MODES = ("hybrid", "bm25", "embedding")
WEIGHTING = f"smooth inverse frequency, a={SMOOTHING:g}"  # how the stored vectors were made

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
CREATE TABLE IF NOT EXISTS token_counts (token INTEGER PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
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


Scored = list[tuple[int, float]]  # (child id, score), best first


def fuse(bm25: Scored, nearest: Scored, cosine: Callable[[int], float], share: float) -> Scored:
    """Blend BM25 and cosine scores over both candidate lists, best first.

    Each score becomes a z-score: BM25's over the candidates BM25 found (one it did not find
    takes BM25's lowest), the cosine's over all candidates. ``cosine`` gives the similarity
    of any candidate.
    """
    candidates = list(dict.fromkeys([c for c, _ in bm25] + [c for c, _ in nearest]))
    if not candidates:
        return []

    def standardised(values: dict[int, float]) -> dict[int, float]:
        found = np.fromiter(values.values(), dtype=np.float64, count=len(values))
        spread = float(found.std()) if len(found) else 0.0
        if spread == 0:  # none, one, or all equal: each found one is the best
            return {c: 1.0 if c in values else 0.0 for c in candidates}
        mean, low = float(found.mean()), float(found.min())
        return {c: (values.get(c, low) - mean) / spread for c in candidates}

    lexical = standardised(dict(bm25))
    semantic = standardised({c: cosine(c) for c in candidates})
    blended = {c: share * lexical[c] + (1 - share) * semantic[c] for c in candidates}
    return sorted(blended.items(), key=lambda item: -item[1])


@dataclass(frozen=True)
class _Embedded:
    """Every child's vector, loaded once per index change: ids, kinds and rows aligned."""

    weights: Vectors  # the tokens' weights the vectors were made with (frequency_weights)
    matrix: Vectors
    ids: list[int]
    kinds: Any  # numpy array of the children's kinds
    row: dict[int, int]  # child id → its row


def _best(scores: Vectors, ids: list[int]) -> Scored:
    """The ``CANDIDATES`` highest scores with their ids, skipping excluded (``-inf``) ones."""
    best = np.argsort(-scores)[:CANDIDATES]
    return [(ids[i], float(scores[i])) for i in best if np.isfinite(scores[i])]


class HybridSqliteIndex(KnowledgeIndex):
    """BM25 (SQLite FTS5) fused with static embeddings, in one SQLite file."""

    def __init__(self, path: Path, embedder: StaticEmbedder) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.embedder = embedder
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        claim_database(self._db)
        self._lock = threading.Lock()
        self._matrix: _Embedded | None = None
        self._data_version = int(self._db.execute("PRAGMA data_version").fetchone()[0])
        self._counts = self._stored_counts()
        if self._setting("weighting") != WEIGHTING:  # new, or made before the weighting
            with self._lock:
                self._transaction(lambda: self._reweigh(None))

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

    def _setting(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def _set(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))

    def _stored_counts(self) -> Counts:
        counts = np.zeros(self.embedder.vocabulary, dtype=np.int64)
        rows = np.array(self._db.execute("SELECT token, count FROM token_counts").fetchall())
        if len(rows):
            counts[rows[:, 0]] = rows[:, 1]
        return counts

    def _store_counts(self, counts: Counts) -> None:
        changed = np.flatnonzero(counts != self._counts)
        self._db.executemany(
            "INSERT OR REPLACE INTO token_counts (token, count) VALUES (?, ?)",
            [(int(t), int(counts[t])) for t in changed],
        )

    def _children_texts(self, where: str = "", params: tuple[str, ...] = ()) -> list[Any]:
        """(id, text) of the children matching ``where`` (all of them without)."""
        return self._db.execute(
            "SELECT children.id, children_fts.text FROM children"
            " JOIN children_fts ON children_fts.rowid = children.id" + where,
            params,
        ).fetchall()

    def _children_counts(self, source: str, kind: str) -> Counts:
        """The token counts of a document's indexed children."""
        rows = self._children_texts(
            " WHERE children.source = ? AND children.kind = ?", (source, kind)
        )
        return self.embedder.counts(self.embedder.tokens([str(r[1]) for r in rows]))

    def _catch_up(self) -> None:
        """Drop what this process holds of the index if another process has changed it.

        A notebook server and ``westtek kb ingest`` may write one lab's index at once: the
        token counts and the loaded vectors must then be read again.
        """
        version = int(self._db.execute("PRAGMA data_version").fetchone()[0])
        if version != self._data_version:
            self._data_version = version
            self._counts = self._stored_counts()
            self._matrix = None

    def _transaction(self, change: Callable[[], Counts]) -> None:
        """Run ``change`` (which returns the new token counts) in one transaction."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._catch_up()  # under the write lock: the counts are the stored ones
            counts = change()
            self._store_counts(counts)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._counts = counts
        self._matrix = None

    def _reweigh(self, counts: Counts | None) -> Counts:
        """Embed every child again with the weights of ``counts`` (None: count them now).

        A document is embedded with the weights of the material indexed with it; once that
        material has doubled or halved since every vector was last weighed, all are
        weighed again, so old and new vectors stay comparable (the cost stays linear).
        """
        rows = self._children_texts()
        tokens = self.embedder.tokens([str(r[1]) for r in rows])
        if counts is None:
            counts = self.embedder.counts(tokens)
        vectors = self.embedder.pool(tokens, frequency_weights(counts))
        self._db.executemany(
            "UPDATE children SET embedding = ? WHERE id = ?",
            [(vector.tobytes(), row[0]) for row, vector in zip(rows, vectors, strict=True)],
        )
        self._set("weighting", WEIGHTING)
        self._set("weighed_total", str(int(counts.sum())))
        return counts

    def _weighed(self, counts: Counts) -> Counts:
        """``counts``, after weighing every vector again if the material has changed size."""
        total, weighed = int(counts.sum()), int(self._setting("weighed_total") or 0)
        if total > 2 * weighed or 2 * total < weighed:
            self._reweigh(counts)
        return counts

    def replace(self, source: str, kind: str, fingerprint: str, parents: Sequence[Parent]) -> int:
        """Index a document's chunks in place of its old ones, in one transaction."""
        tokens = self.embedder.tokens([c.text for p in parents for c in p.children])

        def change() -> Counts:
            counts = (
                self._counts - self._children_counts(source, kind) + self.embedder.counts(tokens)
            )
            vectors = self.embedder.pool(tokens, frequency_weights(counts))
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
            return self._weighed(counts)

        with self._lock:
            self._transaction(change)
        return len(tokens)

    def remove(self, source: str, kind: str) -> None:
        """Forget a document."""

        def change() -> Counts:
            counts = self._counts - self._children_counts(source, kind)
            self._delete(source, kind)
            return self._weighed(counts)

        with self._lock:
            self._transaction(change)

    def _embeddings(self) -> _Embedded:
        if self._matrix is None:
            rows = self._db.execute("SELECT id, kind, embedding FROM children").fetchall()
            matrix = (
                np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(
                    len(rows), self.embedder.dimensions
                )
                if rows
                else np.zeros((0, self.embedder.dimensions), dtype=np.float32)
            )
            ids = [int(r[0]) for r in rows]
            self._matrix = _Embedded(
                frequency_weights(self._counts),
                matrix,
                ids,
                np.array([str(r[1]) for r in rows]),
                {c: i for i, c in enumerate(ids)},
            )
        return self._matrix

    def _bm25(self, query: str, kinds: set[str] | None) -> Scored:
        """The best children by BM25 (higher is better)."""
        match = fts_query(query)
        if not match:
            return []
        rows = self._db.execute(
            "SELECT children_fts.rowid, children.kind, -bm25(children_fts) FROM children_fts"
            " JOIN children ON children.id = children_fts.rowid"
            " WHERE children_fts MATCH ? ORDER BY bm25(children_fts) LIMIT ?",
            (match, CANDIDATES * 4 if kinds else CANDIDATES),
        ).fetchall()
        return [(int(r[0]), float(r[2])) for r in rows if not kinds or r[1] in kinds][:CANDIDATES]

    def _similarities(self, query: str, kinds: set[str] | None) -> tuple[Vectors, list[int]]:
        """The query's cosine with every child (``-inf`` for other kinds), and their ids."""
        embedded = self._embeddings()
        if not embedded.ids:
            return np.zeros(0, dtype=np.float32), embedded.ids
        scores = embedded.matrix @ self.embedder.embed([query], embedded.weights)[0]
        if kinds:
            scores = np.where(np.isin(embedded.kinds, list(kinds)), scores, -np.inf)
        return scores, embedded.ids

    def _nearest(self, query: str, kinds: set[str] | None) -> Scored:
        """The best children by cosine."""
        return _best(*self._similarities(query, kinds))

    def _hybrid(self, query: str, kinds: set[str] | None) -> Scored:
        """The best children by BM25 and cosine blended (``fuse``)."""
        scores, ids = self._similarities(query, kinds)
        row = self._embeddings().row

        def cosine(child: int) -> float:
            return float(scores[row[child]])

        return fuse(self._bm25(query, kinds), _best(scores, ids), cosine, BM25_SHARE)

    def search(
        self, query: str, k: int = 5, kinds: set[str] | None = None, mode: str = "hybrid"
    ) -> list[SearchResult]:
        """The ``k`` best passages, one per parent, best first."""
        if mode not in SEARCH_MODES:
            raise ValueError(f"search mode must be one of {', '.join(SEARCH_MODES)}")
        rank = {"bm25": self._bm25, "embedding": self._nearest, "hybrid": self._hybrid}[mode]
        with self._lock:
            self._catch_up()
            results: list[SearchResult] = []
            seen_parents: set[int] = set()
            for child_id, score in rank(query, kinds):
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
