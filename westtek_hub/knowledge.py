"""The labs' memories, owned by the hub service: what each lab preserved, searchable.

Each snapshot a server reports is added to its lab's memory from the lab's own store
(``LabStores``), with the environment's install history from the registry, in the
background: the report is answered at once. A memory's index is an embedded SQLite file in
the service's data directory, or, with ``c.KnowledgeIndexBackend.backend = "bedrock"`` (as
on AWS), the lab's own Bedrock Knowledge Base, where the memory writes and searches only
under its own scope (``LAB_MEMORY_SCOPE``), beside the servers' live-workspace documents.
Every lab member searches their lab's memory through the service with their own token,
whatever server they run (or none), so what a researcher preserved outlives their server,
their account and their time in the lab.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from traitlets import Bool, Integer
from traitlets.config import LoggingConfigurable

from westtek_core.kb import IngestReport, KnowledgeIndexBackend
from westtek_core.kb.index import KnowledgeIndex
from westtek_core.kb.lab_memory import LabMemory
from westtek_core.kb.succession import onboarding_checklist
from westtek_core.notebooks import MAX_NOTEBOOK_BYTES
from westtek_core.snapshot.catalog import load_snapshot, read_stored_file, workspace_files
from westtek_core.store import StoreError
from westtek_hub import registry
from westtek_hub.stores import LabStores

LAB_MEMORY_SCOPE = "lab memory"
"""Where the memory's documents sit in a lab's Bedrock Knowledge Base (``env/lab%20memory/``):
a space makes it no environment id, so no server's ingest lists or replaces them."""


class CellNotFound(LookupError):
    """A cited cell that the snapshot does not hold; ``str()`` says which."""


class KnowledgeClosed(RuntimeError):
    """The service is stopping: nothing more is added (the next start catches up)."""


class LabKnowledge(LoggingConfigurable):
    """Each lab's memory (an embedded index per lab in the service's data directory)."""

    enabled = Bool(
        True,
        config=True,
        help="Keep each lab's memory: add every reported snapshot's notebooks, experiment "
        "logs, manifest and summary (read from the lab's store) and its install history to "
        "the lab's index, searchable by the lab's members. Needs LabStores.store_template.",
    )

    max_results = Integer(50, config=True, help="The most passages one search may ask for (its k).")

    def __init__(self, directory: Path, stores: LabStores, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.directory = directory
        self.stores = stores
        self._memories: dict[str, LabMemory] = {}
        self._lock = threading.Lock()
        self._closed = False

    @property
    def active(self) -> bool:
        """Whether reported snapshots are added (enabled, and the labs' stores are known)."""
        return self.enabled and self.stores.configured

    def memory(self, lab_id: str) -> LabMemory:
        """A lab's memory, opened once per service."""
        with self._lock:
            if self._closed:
                raise KnowledgeClosed("the hub service is stopping")
            found = self._memories.get(lab_id)
            if found is None:
                index = self._bedrock_index(lab_id)
                found = self._memories[lab_id] = LabMemory(self.directory, lab_id, index)
            return found

    def _bedrock_index(self, lab_id: str) -> KnowledgeIndex | None:
        """The lab's Bedrock Knowledge Base under the memory's scope, when that is the backend.

        The bucket defaults to the labs' stores' when they are on S3, as infra lays them out.
        """
        backend = KnowledgeIndexBackend(parent=self, lab_id=lab_id)
        if backend.backend != "bedrock":
            return None
        if not backend.bucket:
            backend.bucket = self.stores.bucket
        return backend.open_index(self.directory, LAB_MEMORY_SCOPE, own_only=True)

    def add_snapshot(
        self,
        sessions: sessionmaker[Session],
        lab_id: str,
        snapshot_id: str,
        environment_id: str,
        researcher: str,
    ) -> IngestReport:
        """Add a snapshot read from the lab's store, and the environment's install history.

        ``snapshot_id`` is the snapshot's id in that store (a copy's, after a reassignment
        to another lab). Runs in a worker thread: it reads the registry and the store.
        """
        memory = self.memory(lab_id)
        with sessions() as session:
            history = registry.environment_history(session, environment_id)
        repo = self.stores.open(lab_id)
        try:
            report = memory.add_snapshot(repo, snapshot_id, environment_id, researcher)
        finally:
            repo.close()
        added = memory.add_install_history(environment_id, researcher, history)
        self.log.info(
            "lab %s's memory: snapshot %s of %s added (%d indexed, %d unchanged, %d failed)",
            lab_id, snapshot_id[:12], environment_id, len(report.ingested) + len(added.ingested),
            report.unchanged + added.unchanged, len(report.failed),
        )  # fmt: skip
        return report

    def remember(
        self,
        sessions: sessionmaker[Session],
        snapshot_id: str,
        lab_id: str | None = None,
        stored_id: str | None = None,
    ) -> IngestReport | None:
        """Add a registered snapshot to its lab's memory (None if it is not registered).

        ``lab_id`` and ``stored_id`` name another lab and the snapshot's id in that lab's
        store (a reassignment's copy).
        """
        with sessions() as session:
            found = registry.snapshot_origin(session, snapshot_id)
        if found is None:
            return None
        lab, environment_id, researcher = found
        return self.add_snapshot(
            sessions, lab_id or lab, stored_id or snapshot_id, environment_id, researcher
        )

    def catch_up(self, sessions: sessionmaker[Session]) -> int:
        """Add every registered snapshot its lab's memory lacks; how many were added.

        Run at each start: a snapshot reported while the service was stopping, or before
        labs had memories, is added then. One that its lab's store does not hold is logged
        and skipped.
        """
        with sessions() as session:
            backlog = registry.memory_backlog(session)
        added = 0
        for lab_id, snapshot_id, environment_id, researcher in backlog:
            try:
                if self.memory(lab_id).has_snapshot(snapshot_id):
                    continue
                self.add_snapshot(sessions, lab_id, snapshot_id, environment_id, researcher)
                added += 1
            except KnowledgeClosed:
                break
            except (StoreError, OSError) as e:
                self.log.info("lab %s's memory: snapshot %s skipped: %s", lab_id,
                              snapshot_id[:12], e)  # fmt: skip
        return added

    def take_over(self, package: dict[str, Any]) -> dict[str, Any]:
        """A transfer package with its latest snapshot's notebooks and a checklist from them.

        The notebooks (what each imports, runs on and reads, in run order) and the
        onboarding steps come from the lab's memory of that snapshot; a package whose
        snapshot the memory has not read (yet) is returned as it is.
        """
        env = package["environment"]
        latest = package["snapshots"][-1]["id"] if package.get("snapshots") else None
        if not self.active or latest is None:
            return package
        try:
            facts = self.memory(env["lab_id"]).notebook_facts(latest)
        except KnowledgeClosed:
            return package
        if facts is None:
            return package
        return package | {
            "notebooks": facts["notebooks"],
            "kernels": facts["kernels"],
            "onboarding_checklist": onboarding_checklist(env["id"], latest, facts),
        }

    def search(
        self,
        labs: Iterable[str],
        query: str,
        k: int,
        shared: Mapping[str, Collection[str]] | None = None,
    ) -> list[dict[str, Any]]:
        """The ``k`` best cited passages over the labs' memories, best first.

        ``shared`` (lab → snapshot ids shared with the caller's labs) adds what those
        snapshots hold, and nothing else of those labs.
        """
        searches: list[tuple[str, Collection[str] | None]] = [(lab, None) for lab in set(labs)]
        searches += [(lab, ids) for lab, ids in (shared or {}).items() if lab not in labs]
        found = []
        for lab_id, snapshots in sorted(searches, key=lambda s: s[0]):
            for result, citation in self.memory(lab_id).search(query, k, snapshots=snapshots):
                found.append(
                    result.to_json()
                    | {"lab_id": lab_id, "shared": snapshots is not None,
                       "citation": citation.to_json()}
                )  # fmt: skip
        found.sort(key=lambda r: -float(r["score"]))
        return found[:k]

    def holds(self, lab_id: str, snapshot_id: str, environment_id: str) -> bool:
        """Whether the lab's memory added ``snapshot_id`` (as stored there) of the environment."""
        return self.memory(lab_id).snapshot_environment(snapshot_id) == environment_id

    def cell(self, lab_id: str, snapshot_id: str, path: str, index: int) -> dict[str, Any]:
        """Cell ``index`` of notebook ``path`` as a snapshot in the lab's store holds it.

        Raises :class:`CellNotFound`, or ``StoreError`` when the store cannot be read.
        """
        repo = self.stores.open(lab_id)
        try:
            manifest = load_snapshot(repo, snapshot_id)
            items = [i for i in workspace_files(manifest, (".ipynb",)) if i.path == path]
            if not items:
                raise CellNotFound(f"snapshot {snapshot_id[:12]} holds no notebook {path!r}")
            data = read_stored_file(repo, items[0], MAX_NOTEBOOK_BYTES)
        finally:
            repo.close()
        try:
            cells = json.loads(data)["cells"]
            cell = cells[index]
        except (ValueError, KeyError, IndexError, TypeError):
            missing = f"{path} in snapshot {snapshot_id[:12]} has no cell {index}"
            raise CellNotFound(missing) from None
        return {
            "lab_id": lab_id,
            "snapshot_id": str(manifest["id"]),
            "path": path,
            "cell": index,
            "cells": len(cells),
            "cell_type": str(cell.get("cell_type", "")),
            "source": _text(cell.get("source", "")),
            "outputs": [_output_text(o) for o in cell.get("outputs", []) if isinstance(o, dict)],
        }

    def close(self) -> None:
        """Close every opened memory, once what is being added to it is in."""
        with self._lock:
            self._closed = True
            memories = list(self._memories.values())
            self._memories.clear()
        for memory in memories:
            memory.close()


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _output_text(output: Mapping[str, Any]) -> str:
    """An output as text: a stream's text, a result's text/plain, an error's name."""
    if output.get("output_type") == "stream":
        return _text(output.get("text", ""))
    if output.get("output_type") == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    data = output.get("data") or {}
    return _text(data.get("text/plain", "")) if isinstance(data, dict) else ""
