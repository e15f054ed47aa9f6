"""What a tool call gets: one environment's service, store, event log and knowledge base.

:class:`ToolContext` is bound to one environment: the tools read its snapshots, live
drift, notebooks and knowledge base through it, each costly read cached for the request,
and an ``environment_id`` naming another environment is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from packaging.utils import canonicalize_name

from westtek_core.agents.api_diff import notebook_cells
from westtek_core.agents.tools.results import JSON, Citation, ToolError, snapshot_citation
from westtek_core.environment_service import EnvironmentService
from westtek_core.kb.lab_client import LabMemoryClient
from westtek_core.store import Repository, StoreError


class SearchIndex(Protocol):
    """What the tools need of a knowledge base (``westtek_core.kb.KnowledgeBase``)."""

    def search(self, query: str, k: int = 5, kinds: set[str] | None = None) -> Sequence[Any]:
        """The ``k`` best passages for ``query``, best first."""
        ...


class ToolContext:
    """One environment as the tools see it, with a per-request cache of costly reads."""

    def __init__(
        self,
        service: EnvironmentService,
        kb: SearchIndex | None = None,
        lab_memory: LabMemoryClient | None = None,
    ) -> None:
        self.service = service
        self.kb = kb
        self.lab_memory = lab_memory
        """The lab's memory on the hub service (what the lab preserved), under JupyterHub."""
        self._cache: dict[str, Any] = {}

    @property
    def environment_id(self) -> str:
        """The one environment these tools may read."""
        return self.service.environment_id

    @property
    def root(self) -> Path:
        """The environment's workspace."""
        return self.service.root

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per context."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def repo(self) -> Repository | None:
        """The store, or None when it does not exist yet."""
        try:
            return self.service.repo()
        except StoreError:
            return None

    def manifests(self) -> list[JSON]:
        """The environment's snapshots, oldest first (other environments' are left out)."""

        def load() -> list[JSON]:
            from westtek_core.snapshot import load_snapshot

            repo = self.repo()
            if repo is None:
                return []
            found = [load_snapshot(repo, i) for i in repo.list_manifests()]
            mine = [m for m in found if m.get("environment_id") == self.environment_id]
            return sorted(mine, key=lambda m: str(m.get("timestamp")))

        result: list[JSON] = self.cached("manifests", load)
        return result

    def manifest(self, id_or_prefix: str) -> JSON:
        """One of this environment's snapshots by id or unique prefix."""
        wanted = id_or_prefix.strip().lower()
        matches = [m for m in self.manifests() if str(m["id"]).startswith(wanted)]
        if len(wanted) < 4 or len(matches) != 1:
            raise ToolError(
                f"no single snapshot {id_or_prefix!r} in environment {self.environment_id}"
            )
        return matches[0]

    def snapshot_manifest(self, snapshot_id: str) -> JSON:
        """One of this environment's snapshots by id, loaded alone (not the whole history)."""
        if "manifests" in self._cache:
            return self.manifest(snapshot_id)

        def load() -> JSON:
            from westtek_core.snapshot import load_snapshot

            repo = self.repo()
            try:
                found = load_snapshot(repo, snapshot_id) if repo is not None else None
            except StoreError:
                found = None
            if found is None or found.get("environment_id") != self.environment_id:
                raise ToolError(
                    f"no single snapshot {snapshot_id!r} in environment {self.environment_id}"
                )
            return found

        result: JSON = self.cached(f"snapshot:{snapshot_id}", load)
        return result

    def baseline(self) -> JSON | None:
        """The baseline snapshot drift is measured against."""

        def load() -> JSON | None:
            from westtek_core.drift.baseline import baseline_or_none

            return baseline_or_none(self.repo(), self.environment_id)

        result: JSON | None = self.cached("baseline", load)
        return result

    def view(self) -> JSON:
        """The live environment (interpreters, packages with their importers, kernels)."""
        result: JSON = self.cached("view", self.service.environment_view)
        return result

    def drift(self) -> JSON:
        """The live drift state against the baseline."""
        result: JSON = self.cached("drift", self.service.drift_state)
        return result

    def latest_snapshot(self) -> JSON | None:
        """The environment's newest snapshot (the baseline is often an older one)."""
        manifests = self.manifests()
        return manifests[-1] if manifests else None

    def drift_since(self, manifest: Mapping[str, Any]) -> JSON:
        """The live environment graded against one snapshot, in the drift state's shape.

        Against the baseline this is :meth:`drift` (the watcher's report when one runs);
        against another snapshot the environment is captured afresh.
        """
        baseline = self.baseline()
        if baseline is not None and baseline["id"] == manifest["id"]:
            return self.drift()

        def compare() -> JSON:
            from westtek_core.drift import capture_live, detect_drift

            report = detect_drift(
                capture_live(self.service.pythons, self.root), manifest, self.root
            )
            return {
                "status": report.status.value,
                "baseline": report.baseline,
                "environment_id": self.environment_id,
                "changes": [c.to_json() for c in report.changes],
                "message": None,
            }

        result: JSON = self.cached(f"drift-since:{manifest['id']}", compare)
        return result

    def notebooks(self) -> list[Any]:
        """The workspace's notebook analyses (imports, data read, pip installs)."""
        from westtek_core.drift import analyse_notebooks_cached

        result: list[Any] = self.cached("notebooks", lambda: analyse_notebooks_cached(self.root))
        return result

    def package_citation(self, snapshot_id: str, package: str) -> Citation:
        """The line of a snapshot's manifest document that lists ``package``."""
        return self.manifest_citation(snapshot_id, "package", package)

    def manifest_citation(self, snapshot_id: str, kind: str, name: str) -> Citation:
        """The line of a snapshot's manifest document that lists one thing of ``kind``.

        ``kind`` is a drift change's: ``package``, ``interpreter``, ``kernel`` or ``config``;
        for anything else (or when the snapshot does not list it) the snapshot's first line.
        """
        manifest = self.snapshot_manifest(snapshot_id)
        full_id = str(manifest["id"])
        lines: list[tuple[str, str]] = self.cached(
            f"manifest-lines:{full_id}", lambda: _manifest_lines(manifest)
        )
        for locator, text in lines:
            if _lists(text, kind, name):
                return snapshot_citation(full_id, locator)
        return snapshot_citation(full_id)

    def changed_cells(self, manifest: Mapping[str, Any], notebook: str) -> list[int]:
        """The cells of a workspace notebook that differ from its copy in ``manifest``.

        Numbered in the live notebook (a deleted cell counts as a change where it was);
        empty when either side cannot be read.
        """
        import difflib

        old = _snapshot_notebook_cells(self.repo(), manifest, notebook)
        new = notebook_cells(self.root / notebook)
        if old is None or not new:
            return []
        changed: set[int] = set()
        matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
        for tag, _, _, j1, j2 in matcher.get_opcodes():
            if tag != "equal":
                changed.update(range(j1, j2) if j2 > j1 else [min(j1, len(new) - 1)])
        return sorted(changed)

    @property
    def can_search(self) -> bool:
        """Whether there is anything to search: this workspace's index or the lab's memory."""
        return self.kb is not None or self.lab_memory is not None

    def close(self) -> None:
        """Close the knowledge base, when it has something to close."""
        close = getattr(self.kb, "close", None)
        if callable(close):
            close()

    def check_environment(self, arguments: Mapping[str, Any]) -> None:
        """Refuse an ``environment_id`` naming another environment."""
        wanted = arguments.get("environment_id")
        if wanted and wanted != self.environment_id:
            raise ToolError(
                f"refused: this agent can only read environment {self.environment_id!r}; "
                f"{wanted!r} is not accessible from here"
            )


def _lists(line: str, kind: str, name: str) -> bool:
    """Whether a manifest document's line is the one that lists ``name`` of ``kind``."""
    if kind == "package":
        if not (line.startswith("Package ") and "==" in line):
            return False
        return canonicalize_name(line[len("Package ") :].split("==")[0]) == canonicalize_name(name)
    if kind == "interpreter":
        return line.startswith(f"Interpreter {name}: ")
    if kind == "kernel":
        return line.startswith(f"Kernel {name} (")
    if kind == "config":
        return line == f"Jupyter configuration file {name}"
    return False


_MAX_STORED_NOTEBOOK = 64 << 20  # compared cell by cell only below this size


def _snapshot_notebook_cells(
    repo: Repository | None, manifest: Mapping[str, Any], notebook: str
) -> list[tuple[str, str]] | None:
    """A notebook's (cell_type, source) cells as a snapshot stored it (None when absent)."""
    from westtek_core.store import FileContent

    if repo is None:
        return None
    for entry in manifest.get("workspace", {}).get("files", []):
        if entry.get("path") != notebook or entry.get("kind") != "file":
            continue
        size = int(entry.get("stored_size", entry.get("size", 0)))
        if size > _MAX_STORED_NOTEBOOK or not entry.get("content") and size:
            return None
        try:
            data = b"".join(repo.iter_file(FileContent(size, tuple(entry.get("content") or ()))))
            loaded = json.loads(data.decode("utf-8"))
        except (StoreError, OSError, ValueError, RecursionError):
            return None
        cells = loaded.get("cells") if isinstance(loaded, dict) else None
        out: list[tuple[str, str]] = []
        for cell in cells if isinstance(cells, list) else []:
            if isinstance(cell, dict):
                source = cell.get("source", "")
                text = "".join(source) if isinstance(source, list) else str(source)
                out.append((str(cell.get("cell_type", "")), text))
        return out
    return None


def _manifest_lines(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The manifest as the knowledge base indexes it: (``line N``, text) pairs."""
    try:
        from westtek_core.kb.documents import manifest_document
    except ImportError:
        return []
    return [(section.locator, section.text) for section in manifest_document(manifest).sections]
