"""A lab's memory: its knowledge base built from what the lab preserved.

The knowledge base a researcher's own server builds reads that server's live workspace,
so it leaves with the researcher. A lab's memory is built instead from the lab's snapshot
store (each snapshot's notebooks, experiment logs, manifest and summary) and from the
install history the hub service holds. Every source is keyed by environment
(``<environment id>/<path>``), so two researchers' ``analysis.ipynb`` stay apart, and
nothing in it depends on a server, an account or a researcher still being there. The hub
service keeps one per lab (``westtek_hub.knowledge``) and adds each snapshot reported to
it. Adding is incremental: a notebook unchanged since an earlier snapshot is not
converted again, and its citation keeps pointing at that snapshot, which holds exactly the
indexed bytes.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from westtek_core.kb.index import KnowledgeIndex, SearchResult
from westtek_core.kb.knowledge_base import (
    EXPERIMENT_SUFFIXES,
    IngestReport,
    KnowledgeBase,
    file_kind,
    merge_reports,
)
from westtek_core.kb.succession import notebook_facts
from westtek_core.notebooks import MAX_NOTEBOOK_BYTES, analyse_workspace
from westtek_core.snapshot.catalog import load_snapshot, read_stored_file, workspace_files
from westtek_core.store import Repository

EXPERIMENTS_DIR = "experiments/"
"""Where a workspace keeps its experiment logs (as the researcher's own index reads them)."""


@dataclass(frozen=True)
class Citation:
    """Where a passage of the lab's memory comes from."""

    environment_id: str
    researcher: str
    snapshot_id: str
    """The snapshot holding exactly the indexed bytes ("" for the install history)."""
    path: str
    """The file within the snapshot's workspace ("" for a manifest, summary or history)."""
    locator: str
    """Where in it: ``cell N`` of a notebook, ``line N`` of a log or a generated document."""

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return asdict(self)


class SourceCatalogue:
    """Which environment, researcher, snapshot and path each indexed source came from."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sources (source TEXT NOT NULL, kind TEXT NOT NULL, "
            "environment_id TEXT NOT NULL, researcher TEXT NOT NULL, snapshot_id TEXT NOT NULL, "
            "path TEXT NOT NULL, PRIMARY KEY (source, kind))"
        )
        # what each snapshot's notebooks import, run on and read (for successors)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS notebook_facts (snapshot_id TEXT PRIMARY KEY, "
            "facts TEXT NOT NULL)"
        )
        # which snapshot holds which source: what a share of one snapshot gives
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS held (snapshot_id TEXT NOT NULL, source TEXT NOT NULL, "
            "kind TEXT NOT NULL, PRIMARY KEY (snapshot_id, source, kind))"
        )

    def has(self, source: str, kind: str) -> bool:
        """Whether the source is catalogued."""
        query = "SELECT 1 FROM sources WHERE source = ? AND kind = ?"
        return self._db.execute(query, (source, kind)).fetchone() is not None

    def record(self, rows: Iterable[tuple[str, str, str, str, str, str]]) -> None:
        """Record (source, kind, environment, researcher, snapshot, path) rows."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?)", rows)

    def record_held(self, snapshot_id: str, sources: Iterable[tuple[str, str]]) -> None:
        """Record that a snapshot holds these (source, kind), in the indexed version or not."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR IGNORE INTO held VALUES (?, ?, ?)",
                [(snapshot_id, source, kind) for source, kind in sources],
            )

    def holder(self, source: str, kind: str, snapshots: Collection[str]) -> str | None:
        """One of ``snapshots`` that holds the source, if any."""
        for snapshot_id in sorted(snapshots):
            query = "SELECT 1 FROM held WHERE snapshot_id = ? AND source = ? AND kind = ?"
            if self._db.execute(query, (snapshot_id, source, kind)).fetchone():
                return snapshot_id
        return None

    def record_facts(self, snapshot_id: str, facts: Mapping[str, Any]) -> None:
        """Keep a snapshot's notebook facts."""
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO notebook_facts VALUES (?, ?)",
                (snapshot_id, json.dumps(facts)),
            )

    def facts(self, snapshot_id: str) -> dict[str, Any] | None:
        """A snapshot's notebook facts, if it was added."""
        query = "SELECT facts FROM notebook_facts WHERE snapshot_id = ?"
        row = self._db.execute(query, (snapshot_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def of(self, source: str, kind: str) -> tuple[str, str, str, str] | None:
        """(environment, researcher, snapshot, path) of a source."""
        row = self._db.execute(
            "SELECT environment_id, researcher, snapshot_id, path FROM sources "
            "WHERE source = ? AND kind = ?",
            (source, kind),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]), str(row[3]))

    def close(self) -> None:
        """Close the file."""
        self._db.close()


def memory_file_name(lab_id: str) -> str:
    """A lab's file name stem: percent-encoded, so two different ids never share a file."""
    return quote(lab_id, safe="")


class LabMemory:
    """One lab's knowledge base over its preserved snapshots and install history."""

    def __init__(self, directory: Path, lab_id: str, index: KnowledgeIndex | None = None) -> None:
        name = memory_file_name(lab_id)
        self.lab_id = lab_id
        self.directory = directory
        self.kb = KnowledgeBase(directory / f"{name}.sqlite", index=index)
        self.catalogue = SourceCatalogue(directory / f"{name}.sources.sqlite")
        self._lock = threading.Lock()

    def add_snapshot(
        self, repo: Repository, snapshot_id: str, environment_id: str, researcher: str
    ) -> IngestReport:
        """Index what a stored snapshot preserved: notebooks, experiment logs, manifest, summary.

        Raises ``StoreError`` when the snapshot cannot be read from ``repo``.
        """
        manifest = load_snapshot(repo, snapshot_id)
        snapshot_id = str(manifest["id"])
        manifest["environment_id"] = environment_id
        manifest.setdefault("created_by", researcher)
        files = [
            item
            for item in workspace_files(manifest, (".ipynb", *EXPERIMENT_SUFFIXES))
            if item.path.endswith(".ipynb") or item.path.startswith(EXPERIMENTS_DIR)
        ]
        prefix = f"{environment_id}/"
        report = IngestReport()
        with self._lock, tempfile.TemporaryDirectory(dir=self._scratch()) as scratch:
            root = Path(scratch)
            readable = []
            for item in files:
                try:
                    data = read_stored_file(repo, item, MAX_NOTEBOOK_BYTES)
                except Exception as e:  # noqa: BLE001 - one damaged file must not stop the rest
                    report.failed.append({"source": prefix + item.path, "error": str(e)})
                    continue
                target = root / item.path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                readable.append(item.path)
            merge_reports(report, self.kb.ingest_files(root, readable, prefix))
            notebooks = [p for p in readable if p.endswith(".ipynb")]
            analyses = [asdict(a) for a in analyse_workspace(root, files=notebooks) if not a.error]
            merge_reports(report, self.kb.ingest_snapshot(manifest, analyses))
            self.catalogue.record_facts(snapshot_id, notebook_facts(manifest, analyses))
            changed = set(report.ingested)
            held = [(prefix + path, file_kind(path)) for path in readable]
            rows = [
                (source, kind, environment_id, researcher, snapshot_id, source[len(prefix) :])
                for source, kind in held
                if source in changed or not self.catalogue.has(source, kind)
            ]
            for kind in ("manifest", "summary"):
                source = f"snapshot:{snapshot_id}"
                rows.append((source, kind, environment_id, researcher, snapshot_id, ""))
                held.append((source, kind))
            self.catalogue.record(rows)
            self.catalogue.record_held(snapshot_id, held)
        return report

    def notebook_facts(self, snapshot_id: str) -> dict[str, Any] | None:
        """What the snapshot's notebooks import, run on and read (None if not added)."""
        with self._lock:
            return self.catalogue.facts(snapshot_id)

    def has_snapshot(self, snapshot_id: str) -> bool:
        """Whether a snapshot was added (its summary is catalogued)."""
        with self._lock:
            return self.catalogue.has(f"snapshot:{snapshot_id}", "summary")

    def snapshot_environment(self, snapshot_id: str) -> str | None:
        """The environment a snapshot added under this id belongs to (None if not added).

        A copy made into this lab's store may have an id of its own (stores with different
        keys): the memory knows it by the id it was added under.
        """
        with self._lock:
            found = self.catalogue.of(f"snapshot:{snapshot_id}", "summary")
        return found[0] if found else None

    def add_install_history(
        self, environment_id: str, researcher: str, rows: Iterable[Mapping[str, Any]]
    ) -> IngestReport:
        """Index an environment's install history (rows as ``install_history_document``)."""
        source = f"{environment_id}/install-history"
        with self._lock:
            report = self.kb.ingest_install_history(rows, source)
            self.catalogue.record([(source, "install-history", environment_id, researcher, "", "")])
        return report

    def search(
        self,
        query: str,
        k: int = 5,
        environments: Collection[str] | None = None,
        snapshots: Collection[str] | None = None,
    ) -> list[tuple[SearchResult, Citation]]:
        """The ``k`` best passages with their citations, best first.

        ``environments`` limits them to those environments' material; ``snapshots`` to what
        those snapshots hold (what a share gives), each cited to the shared snapshot.
        """
        limited = environments is not None or snapshots is not None
        wanted = k * 4 if limited else k
        with self._lock:
            found = self.kb.search(query, wanted)
            cited = []
            for result in found:
                origin = self.catalogue.of(result.source, result.kind)
                if origin is None:
                    continue  # indexed, but its origin not recorded: it cannot be cited
                environment, researcher, snapshot, path = origin
                if environments is not None and environment not in environments:
                    continue
                if snapshots is not None:
                    shared = self.catalogue.holder(result.source, result.kind, snapshots)
                    if shared is None:
                        continue
                    snapshot = shared
                cited.append(
                    (result, Citation(environment, researcher, snapshot, path, result.locator))
                )
        return cited[:k]

    def _scratch(self) -> Path:
        scratch = self.directory / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        return scratch

    def close(self) -> None:
        """Close the index and the catalogue (after an addition in progress)."""
        with self._lock:
            self.kb.close()
            self.catalogue.close()
