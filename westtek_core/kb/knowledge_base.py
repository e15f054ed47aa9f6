"""The knowledge base: documents in, redacted and chunked, into one index; search out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from westtek_core.kb.chunking import chunk_document
from westtek_core.kb.documents import (
    Document,
    experiment_document,
    fingerprint_bytes,
    install_history_document,
    manifest_document,
    notebook_document,
    read_source,
    summary_document,
)
from westtek_core.kb.embedding import StaticEmbedder, shared_embedder
from westtek_core.kb.index import (
    HybridSqliteIndex,
    KnowledgeIndex,
    SearchResult,
)
from westtek_core.kb.redact import redact_sections
from westtek_core.paths import data_dir

EXPERIMENT_SUFFIXES = (".json", ".md", ".markdown", ".txt")


def default_index_path(lab_id: str | None = None) -> Path:
    """A lab's index file in the user's data directory (``personal`` outside a lab).

    The lab id is percent-encoded, which keeps ordinary ids (``vault-13``) as they are and
    gives any two different ids different files (``vault/13`` and ``vault_13`` must never
    share an index: that would show one lab's notebooks to the other).
    """
    name = quote(lab_id or "personal", safe="")
    return data_dir() / "kb" / f"{name}.sqlite"


@dataclass
class IngestReport:
    """What an ingestion did."""

    ingested: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)  # source, error
    chunks: int = 0
    redactions: int = 0

    def to_json(self) -> dict[str, Any]:
        """The ``kb ingest --json`` output."""
        return {
            # a snapshot is two documents of one source (its packages and its summary)
            "ingested": list(dict.fromkeys(self.ingested)),
            "unchanged": self.unchanged,
            "removed": self.removed,
            "failed": self.failed,
            "chunks": self.chunks,
            "redactions": self.redactions,
        }


def _redacted(document: Document) -> tuple[Document, int]:
    # lone surrogates (valid JSON escapes, invalid Unicode) break tokenizers and SQLite
    texts = [s.text.encode("utf-8", "replace").decode("utf-8") for s in document.sections]
    clean, total = redact_sections(texts)
    sections = tuple(replace(s, text=t) for s, t in zip(document.sections, clean, strict=True))
    return replace(document, sections=sections), total


def file_kind(path: str) -> str:
    """The kind of document a workspace file makes: ``notebook`` or ``experiment`` (a log)."""
    return "notebook" if path.endswith(".ipynb") else "experiment"


def merge_reports(report: IngestReport, other: IngestReport) -> None:
    """Add ``other``'s counts and lists to ``report``."""
    report.ingested += other.ingested
    report.unchanged += other.unchanged
    report.removed += other.removed
    report.failed += other.failed
    report.chunks += other.chunks
    report.redactions += other.redactions


class KnowledgeBase:
    """Ingest and search one lab's material."""

    def __init__(
        self,
        index_path: Path,
        embedder: StaticEmbedder | None = None,
        index: KnowledgeIndex | None = None,
    ) -> None:
        self.index_path = index_path
        self.index = index or HybridSqliteIndex(index_path, embedder or shared_embedder())

    def _add(self, document: Document, report: IngestReport) -> None:
        if self.index.fingerprint(document.source, document.kind) == document.fingerprint:
            report.unchanged += 1
            return
        self._index_document(document, report)

    def _add_file(
        self,
        path: Path,
        source: str,
        kind: str,
        read: Callable[[Path, str], Document],
        report: IngestReport,
    ) -> None:
        """Convert and index a file unless its bytes are the ones already indexed."""
        try:
            if self.index.fingerprint(source, kind) == fingerprint_bytes(read_source(path)):
                report.unchanged += 1
                return
            self._index_document(read(path, source), report)
        except (OSError, ValueError) as e:
            report.failed.append({"source": source, "error": str(e)})
        except Exception as e:  # noqa: BLE001 - one hostile file must not stop the ingest
            report.failed.append({"source": source, "error": f"{type(e).__name__}: {e}"})

    def _index_document(self, document: Document, report: IngestReport) -> None:
        clean, count = _redacted(document)
        report.redactions += count
        report.chunks += self.index.replace(
            clean.source, clean.kind, clean.fingerprint, chunk_document(clean)
        )
        report.ingested.append(document.source)

    def ingest_workspace(self, root: Path) -> IngestReport:
        """Every notebook under ``root`` and every log under ``root/experiments``."""
        from westtek_core.notebooks import find_notebooks

        report = IngestReport()
        root = root.absolute()
        found: dict[str, set[str]] = {"notebook": set(), "experiment": set()}
        for relative in find_notebooks(root):
            source = str(relative)
            found["notebook"].add(source)
            self._add_file(root / relative, source, "notebook", notebook_document, report)
        experiments = root / "experiments"
        for path in sorted(experiments.rglob("*")) if experiments.is_dir() else []:
            if path.is_file() and path.suffix.lower() in EXPERIMENT_SUFFIXES:
                source = str(path.relative_to(root))
                found["experiment"].add(source)
                self._add_file(path, source, "experiment", experiment_document, report)
        for kind, present in found.items():
            for source in self.index.sources(kind):
                if source not in present:
                    self.index.remove(source, kind)
                    report.removed.append(source)
        return report

    def ingest_files(self, root: Path, paths: Iterable[str], prefix: str = "") -> IngestReport:
        """Notebooks (``.ipynb``) and experiment logs among ``paths``, relative to ``root``.

        Each is indexed as ``prefix + path``; nothing else is forgotten (the lab's memory
        keeps what earlier snapshots held).
        """
        report = IngestReport()
        for relative in paths:
            kind = file_kind(relative)
            read = notebook_document if kind == "notebook" else experiment_document
            self._add_file(root / relative, prefix + relative, kind, read, report)
        return report

    def ingest_snapshot(
        self, manifest: Mapping[str, Any], notebooks: Iterable[Mapping[str, Any]] = ()
    ) -> IngestReport:
        """A snapshot's package manifest and its generated summary.

        ``notebooks`` are the analyses of the snapshot's notebooks (path, kernel, imports,
        data_files), for the summary.
        """
        report = IngestReport()
        self._add(manifest_document(manifest), report)
        self._add(summary_document(manifest, notebooks), report)
        return report

    def ingest_install_history(
        self, rows: Iterable[Mapping[str, Any]], source: str = "install-history"
    ) -> IngestReport:
        """The install history (every package change seen), indexed as ``source``."""
        report = IngestReport()
        self._add(install_history_document(rows, source), report)
        return report

    def ingest_everything(
        self,
        root: Path,
        manifests: Iterable[Mapping[str, Any]] = (),
        history: Iterable[Mapping[str, Any]] | None = None,
    ) -> IngestReport:
        """Ingest what runs after every new snapshot: workspace, snapshots, install history.

        Each snapshot's summary names the workspace's notebooks and what they import.
        """
        from dataclasses import asdict

        from westtek_core.drift import analyse_notebooks_cached

        report = self.ingest_workspace(root)
        analyses = [asdict(a) for a in analyse_notebooks_cached(root) if not a.error]
        for manifest in manifests:
            merge_reports(report, self.ingest_snapshot(manifest, analyses))
        if history is not None:
            merge_reports(report, self.ingest_install_history(history))
        return report

    def search(
        self, query: str, k: int = 5, kinds: set[str] | None = None, mode: str = "hybrid"
    ) -> list[SearchResult]:
        """The ``k`` best passages for ``query``, best first."""
        if not query.strip():
            raise ValueError("the search query is empty")
        return self.index.search(query, k, kinds, mode)

    def close(self) -> None:
        """Close the index."""
        self.index.close()
