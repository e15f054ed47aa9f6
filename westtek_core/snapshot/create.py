"""Create a snapshot: store every captured file, then commit the manifest."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from westtek_core.capture import Capture, FileEntry, FileTree, TreeScan
from westtek_core.capture.secret_scan import ENVIRONMENT_CONFIG_FILES
from westtek_core.labs import default_environment_id
from westtek_core.snapshot.manifest import MANIFEST_FORMAT, content_checksum
from westtek_core.store import Repository, RepositoryWriter


@dataclass(frozen=True)
class Progress:
    """How far a snapshot has got, for progress bars and job resources."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    # what the operation is doing when counts say nothing (waiting for archive storage)
    message: str = ""

    @property
    def percent(self) -> float:
        """Done, in percent of bytes (files when there are no bytes)."""
        if self.bytes_total:
            return 100.0 * self.bytes_done / self.bytes_total
        return 100.0 * self.files_done / self.files_total if self.files_total else 100.0


ProgressCallback = Callable[[Progress], None]


@dataclass
class SnapshotResult:
    """What ``create_snapshot`` did."""

    id: str
    manifest: dict[str, Any]
    files: int
    size_bytes: int
    new_bytes: int
    unchanged_files: int
    skipped: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``snapshot create --json`` output."""
        return {
            "id": self.id,
            "files": self.files,
            "size_bytes": self.size_bytes,
            "new_bytes": self.new_bytes,
            "unchanged_files": self.unchanged_files,
            "skipped": self.skipped,
            "secrets": self.secrets,
        }


class _TreeStorer:
    """Stores trees' files through one writer, recording skips and progress."""

    def __init__(
        self,
        writer: RepositoryWriter,
        total_files: int,
        total_bytes: int,
        progress: ProgressCallback | None,
    ) -> None:
        self.writer = writer
        self.progress = progress
        self.state = Progress(0, total_files, 0, total_bytes)
        self.skipped: list[dict[str, Any]] = []
        self.stored_bytes = 0

    def store(
        self,
        area: str,
        tree: FileTree,
        scan: TreeScan | None = None,
        *,
        replacements: Mapping[str, bytes] | None = None,
    ) -> list[dict[str, Any]]:
        """Store ``tree``'s files: ``replacements`` instead of theirs, the others as read.

        With the tree's secret ``scan``, its redacted copies are the replacements, and a
        file found clean is stored only as the version found clean: changed since, it is
        skipped and reported.
        """
        if scan is not None:
            replacements = scan.redacted
        versions = scan.clean if scan is not None else {}
        stored: list[dict[str, Any]] = []
        for entry in tree.entries:
            record = entry.to_json()
            if entry.kind == "file":
                try:
                    replacement = (replacements or {}).get(entry.path)
                    if replacement is not None:
                        content = self.writer.add_bytes(replacement)
                        record["stored_size"] = content.size  # size stays the original's
                    else:
                        content = self.writer.add_file(
                            entry.source, versions.get(entry.path), seen=entry.version
                        )
                except OSError as e:
                    self.skipped.append({"area": area, "path": entry.path, "reason": str(e)})
                    continue
                record["content"] = list(content.chunks)
                self.stored_bytes += int(record.get("stored_size", record["size"]))
            stored.append(record)
            self._advance(entry)
        self.skipped.extend({"area": area, **s.to_json()} for s in tree.skipped)
        return stored

    def _advance(self, entry: FileEntry) -> None:
        if self.progress:  # a Progress per file is ~5% of an unchanged snapshot: only if shown
            done = self.state
            self.state = Progress(
                done.files_done + 1,
                done.files_total,
                done.bytes_done + entry.size,
                done.bytes_total,
            )
            self.progress(self.state)


def _all_trees(capture: Capture) -> list[FileTree]:
    trees = [i.prefix_tree for i in capture.interpreters if i.prefix_tree]
    trees += [k.tree for k in capture.kernels]
    trees += [c.tree for c in capture.config]
    return [*trees, capture.workspace]


def package_records(info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An interpreter's distributions as the manifest records them (files as RECORD paths)."""
    return [
        {
            "name": dist["name"],
            "version": dist["version"],
            "installer": dist.get("installer"),
            "direct_url": dist.get("direct_url"),
            "requested": dist.get("requested"),
            "top_level": dist.get("top_level", []),
            "files": [f["path"] if isinstance(f, dict) else f for f in dist.get("files", [])],
        }
        for dist in info.get("distributions", [])
    ]


def create_snapshot(
    repo: Repository,
    capture: Capture,
    *,
    note: str = "",
    labels: Mapping[str, str] | None = None,
    environment_id: str | None = None,
    created_by: str | None = None,
    container_image: str | None = None,
    progress: ProgressCallback | None = None,
) -> SnapshotResult:
    """Store every file of ``capture`` in ``repo`` and commit its manifest.

    The manifest is saved only after every file's content is durable: a crash before
    that leaves no snapshot, and never touches an earlier one. The workspace's files, and
    the pip and conda config files of the environments, are scanned for secrets first
    (``capture.secret_scanner``): those holding a private key are left out, other secrets
    are redacted in the stored copy, and every finding is listed in the manifest's
    ``secrets``; a file changed between its scan and its storing is skipped (and listed
    in ``skipped``), never stored unscanned.
    """
    secrets = list(capture.secrets)
    scans: dict[str, TreeScan] = {}
    if capture.secret_scanner is not None:
        for index, interp in enumerate(capture.interpreters):
            if interp.prefix_tree:
                scans[f"env{index}"] = capture.secret_scanner.scan_tree(
                    interp.prefix_tree, f"env{index}", only=ENVIRONMENT_CONFIG_FILES
                )
        scans["workspace"] = capture.secret_scanner.scan_tree(capture.workspace, "workspace")
        secrets += [finding for scan in scans.values() for finding in scan.findings]
    trees = _all_trees(capture)
    files = [e for t in trees for e in t.entries]
    total_bytes = sum(e.size for e in files if e.kind == "file")
    with repo.writer() as writer:
        storer = _TreeStorer(writer, len(files), total_bytes, progress)
        interpreters: list[dict[str, Any]] = []
        for index, interp in enumerate(capture.interpreters):
            info = interp.info
            interpreters.append(
                {
                    "label": f"env{index}",
                    "path": interp.python,
                    "executable": info.get("executable"),
                    "prefix": info.get("prefix"),
                    "base_prefix": info.get("base_prefix"),
                    "is_venv": info.get("is_venv"),
                    "is_conda": info.get("is_conda"),
                    "version": info.get("version_string") or info.get("version"),
                    "version_info": info.get("version"),
                    "implementation": info.get("implementation"),
                    "platform": info.get("platform"),
                    "abi": info.get("abi"),
                    "paths": info.get("paths"),
                    "packages": package_records(info),
                    "conda_meta": info.get("conda_meta") or [],
                    "prefix_tree": (
                        {
                            "root": str(interp.prefix_tree.root),
                            "files": storer.store(
                                f"env{index}", interp.prefix_tree, scans.get(f"env{index}")
                            ),
                        }
                        if interp.prefix_tree
                        else None
                    ),
                }
            )
        kernels = [
            {
                "name": k.name,
                "spec": k.spec,
                "resource_dir": k.resource_dir,
                "interpreter": k.interpreter,
                "files": storer.store(f"kernel:{k.name}", k.tree, replacements=k.redacted),
            }
            for k in capture.kernels
        ]
        config: list[dict[str, Any]] = [
            {
                "dir": c.dir,
                "role": c.role,
                "files": storer.store(f"config:{c.dir}", c.tree, replacements=c.redacted),
            }
            for c in capture.config
        ]
        workspace_files = storer.store("workspace", capture.workspace, scans.get("workspace"))
    # the writer's counts are complete once it has flushed, on leaving the block
    new_bytes = writer.new_bytes
    unchanged = writer.stat_cache_hits

    installed = sorted(
        {f"{p['name']}=={p['version']}" for i in interpreters for p in i["packages"]}
    )
    configuration_files = sorted(f"{c['dir']}/{e['path']}" for c in config for e in c["files"])
    notebook_count = sum(1 for e in workspace_files if e["path"].endswith(".ipynb"))
    size_bytes = storer.stored_bytes
    jupyter_version = str(capture.jupyter.get("jupyter_core", "")) or None
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "environment_id": environment_id or default_environment_id(),
        # the hub user, not the OS account a shared server runs as
        "created_by": created_by or os.environ.get("JUPYTERHUB_USER") or getpass.getuser(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "size_bytes": size_bytes,
        "container_image": container_image or os.environ.get("JUPYTER_IMAGE"),
        "efs_snapshot_id": None,
        "ebs_snapshot_id": None,
        "notes": note,
        "labels": dict(labels or {}),
        "metadata": {
            "jupyter_version": jupyter_version,
            "installed_packages": installed,
            "notebook_count": notebook_count,
            "configuration_files": configuration_files,
            "notes": note,
            "stored_bytes": new_bytes,
        },
        "interpreters": interpreters,
        "kernels": kernels,
        "jupyter": {"versions": capture.jupyter, "config": config},
        "labextensions": capture.labextensions,
        "workspace": {"root": str(capture.workspace.root), "files": workspace_files},
        "secrets": [s.to_json() for s in secrets],
        "warnings": capture.warnings,
        "skipped": storer.skipped,
    }
    manifest["checksum"] = content_checksum(manifest)
    snapshot_id = repo.save_manifest(manifest)
    return SnapshotResult(
        id=snapshot_id,
        manifest={"id": snapshot_id, **manifest},
        files=sum(1 for e in files if e.kind == "file"),
        size_bytes=size_bytes,
        new_bytes=new_bytes,
        unchanged_files=unchanged,
        skipped=storer.skipped,
        secrets=manifest["secrets"],
    )


def summarize(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The one-line-per-snapshot facts ``snapshot list`` shows."""
    return {
        "id": manifest["id"],
        "timestamp": manifest.get("timestamp"),
        "environment_id": manifest.get("environment_id"),
        "created_by": manifest.get("created_by"),
        "size_bytes": manifest.get("size_bytes", 0),
        "notebook_count": manifest.get("metadata", {}).get("notebook_count", 0),
        "packages": len(manifest.get("metadata", {}).get("installed_packages", [])),
        "notes": manifest.get("notes", ""),
        "labels": manifest.get("labels", {}),
        "stored_bytes": manifest.get("metadata", {}).get("stored_bytes"),
    }
