"""Create a snapshot: store every captured file, then commit the manifest."""

from __future__ import annotations

import functools
import getpass
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from secrets import token_hex
from typing import Any

from westtek_core.capture import Capture, FileEntry, FileTree, TreeScan
from westtek_core.capture.secret_scan import ENVIRONMENT_CONFIG_FILES
from westtek_core.labs import default_environment_id
from westtek_core.snapshot.manifest import (
    AREA_ENV,
    MANIFEST_FORMAT,
    checksum_line,
    content_checksum,
)
from westtek_core.snapshot.record_cache import (
    EncodedRun,
    RecordCache,
    directory_runs,
    discarded_on_failure,
    run_key,
)
from westtek_core.store import Repository, RepositoryWriter
from westtek_core.store.repository import canonical_json, canonical_text


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
    encoded: bytes = field(repr=False)  # the manifest as stored (canonical JSON)
    files: int
    size_bytes: int
    new_bytes: int
    unchanged_files: int
    skipped: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[dict[str, Any]] = field(default_factory=list)

    @functools.cached_property
    def manifest(self) -> dict[str, Any]:
        """The manifest with its ``id``, as ``Repository.load_manifest`` reads it.

        Decoded when first asked for: a snapshot's own run has no use for ~7 MB of records.
        """
        return {"id": self.id, **json.loads(self.encoded)}

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
        replacing, versions = _what_to_store(scan, replacements)
        stored = [r for e in tree.entries if (r := self._record(area, e, replacing, versions))]
        self.skipped.extend({"area": area, **s.to_json()} for s in tree.skipped)
        return stored

    def store_encoded(
        self,
        area: str,
        place: tuple[str, str],
        tree: FileTree,
        scan: TreeScan | None,
        cache: RecordCache,
    ) -> tuple[bytes, bytes]:
        """:meth:`store`, the records given encoded: their JSON list and checksum lines.

        ``place`` is the (area, area key) of the manifest the checksum lines name. A run of
        entries ``cache`` holds unchanged is reused whole: no record is built, no file
        looked up; runs holding a file the scan read are always built (it is stored only
        as scanned), and a run with a file skipped is not kept.
        """
        replacing, versions = _what_to_store(scan, None)
        scanned = {path.rpartition("/")[0] for path in (*replacing, *versions)}
        parts: list[bytes] = []
        lines: list[bytes] = []
        for run in directory_runs(tree.entries):
            key = None if run[0].path.rpartition("/")[0] in scanned else run_key(run)
            encoded = cache.get(key) if key is not None else None
            if encoded is not None and self.writer.reuse(encoded.chunks, encoded.files):
                self.stored_bytes += encoded.stored_bytes
                if self.progress:
                    for entry in run:
                        self._advance(entry)
            else:
                skips, stored_before = len(self.skipped), self.stored_bytes
                records = [r for e in run if (r := self._record(area, e, replacing, versions))]
                encoded = EncodedRun(
                    json=canonical_text(records)[1:-1].encode(),
                    lines=b"".join(checksum_line(*place, r) for r in records),
                    chunks=tuple(bytes.fromhex(c) for r in records for c in r.get("content", ())),
                    files=sum(1 for r in records if r["kind"] == "file"),
                    stored_bytes=self.stored_bytes - stored_before,
                )
                if len(self.skipped) != skips:
                    key = None
            if key is not None:
                cache.keep(key, encoded)
            if encoded.json:
                parts.append(encoded.json)
                lines.append(encoded.lines)
        self.skipped.extend({"area": area, **s.to_json()} for s in tree.skipped)
        return b"[" + b",".join(parts) + b"]", b"".join(lines)

    def _record(
        self,
        area: str,
        entry: FileEntry,
        replacements: Mapping[str, bytes],
        versions: Mapping[str, os.stat_result],
    ) -> dict[str, Any] | None:
        """Store one entry's content; its manifest record (None: skipped, and reported)."""
        record = entry.to_json()
        if entry.kind == "file":
            try:
                replacement = replacements.get(entry.path)
                if replacement is not None:
                    content = self.writer.add_bytes(replacement)
                    record["stored_size"] = content.size  # size stays the original's
                else:
                    content = self.writer.add_file(
                        entry.source, versions.get(entry.path), seen=entry.version
                    )
            except OSError as e:
                self.skipped.append({"area": area, "path": entry.path, "reason": str(e)})
                return None
            record["content"] = list(content.chunks)
            self.stored_bytes += int(record.get("stored_size", record["size"]))
        self._advance(entry)
        return record

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


def _what_to_store(
    scan: TreeScan | None, replacements: Mapping[str, bytes] | None
) -> tuple[Mapping[str, bytes], Mapping[str, os.stat_result]]:
    """Contents to store instead of files', and the only versions of files that may be stored.

    With a secret ``scan``, its redacted copies and the versions it found clean.
    """
    if scan is not None:
        return scan.redacted, scan.clean
    return replacements or {}, {}


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
            "files": list(dist.get("files", [])),
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
    # The environments' records are encoded as they are stored, most reused from the last
    # snapshot (record_cache): the manifest holds a placeholder for each list until saved.
    fragments: dict[str, bytes] = {}
    lines: dict[tuple[str, str], bytes] = {}
    with discarded_on_failure() as caches, repo.writer() as writer:
        storer = _TreeStorer(writer, len(files), total_bytes, progress)
        interpreters: list[dict[str, Any]] = []
        for index, interp in enumerate(capture.interpreters):
            info = interp.info
            prefix_tree = None
            if interp.prefix_tree:
                root = str(interp.prefix_tree.root)
                caches.append(RecordCache.of_area(repo.cache_dir, f"env{index}", root))
                placeholder = f"westtek:records:env{index}:{token_hex(16)}"
                place = (AREA_ENV, str(index))
                fragments[placeholder], lines[place] = storer.store_encoded(
                    f"env{index}", place, interp.prefix_tree, scans.get(f"env{index}"), caches[-1]
                )
                prefix_tree = {"root": root, "files": placeholder}
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
                    "prefix_tree": prefix_tree,
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
    manifest["checksum"] = content_checksum(manifest, lines)
    encoded = canonical_json(manifest, fragments)
    snapshot_id = repo.save_encoded_manifest(encoded)
    for cache in caches:  # only once committed: the chunks they name are then indexed
        cache.save()
    return SnapshotResult(
        id=snapshot_id,
        encoded=encoded,
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
