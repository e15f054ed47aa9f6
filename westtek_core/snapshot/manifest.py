"""The snapshot manifest: what was captured and where each file's content lives in the store.

A manifest is canonical JSON; its id is the hash of that JSON (the store computes it), so
the id never appears inside it: ``load_manifest`` adds it back for readers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import blake3
from packaging.utils import canonicalize_name

MANIFEST_FORMAT = 1

# Areas of a restored snapshot, by the manifest section that lists their files.
AREA_WORKSPACE = "workspace"
AREA_ENV = "env"
AREA_KERNEL = "kernel"
AREA_CONFIG = "config"


class ManifestError(ValueError):
    """A manifest that cannot be trusted (e.g. a path escaping its area)."""


@dataclass(frozen=True)
class ManifestFile:
    """One file of a manifest with the area it belongs to."""

    area: str  # workspace | env | kernel | config
    area_key: str  # which env/kernel/config dir, "" for the workspace
    entry: Mapping[str, Any]
    role: str = ""  # for config files: what kind of config dir they come from

    @property
    def path(self) -> str:
        """Path relative to the area root."""
        return str(self.entry["path"])

    @property
    def chunks(self) -> list[str]:
        """Chunk ids of the content, in order."""
        return list(self.entry.get("content") or [])

    @property
    def display(self) -> str:
        """How a person should see where this file is."""
        where = f"{self.area}:{self.area_key}" if self.area_key else self.area
        return f"{where}/{self.path}"


def safe_relative_path(path: str) -> PurePosixPath:
    """Refuse absolute paths and ``..``: a manifest must not write outside its area."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or "\x00" in path:
        raise ManifestError(f"unsafe path in manifest: {path!r}")
    return pure


def _areas(manifest: Mapping[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    """(area, area key, config role, entries) of every area of a manifest, in a fixed order."""
    for index, interp in enumerate(manifest.get("interpreters", [])):
        tree = interp.get("prefix_tree")
        if tree:
            yield AREA_ENV, str(index), "", tree.get("files", [])
    for kernel in manifest.get("kernels", []):
        yield AREA_KERNEL, str(kernel["name"]), "", kernel.get("files", [])
    for config in manifest.get("jupyter", {}).get("config", []):
        yield AREA_CONFIG, str(config["dir"]), config.get("role", "config"), config.get("files", [])
    yield AREA_WORKSPACE, "", "", manifest.get("workspace", {}).get("files", [])


def iter_files(manifest: Mapping[str, Any]) -> Iterator[ManifestFile]:
    """Every file, link and dir entry of every area of a manifest."""
    for area, area_key, role, entries in _areas(manifest):
        for entry in entries:
            yield ManifestFile(area, area_key, entry, role)


def referenced_chunks(manifest: Mapping[str, Any], workspace: bool = True) -> set[str]:
    """Every chunk id a manifest needs; without the workspace's, those a rollback reads."""
    return {
        chunk
        for item in iter_files(manifest)
        if workspace or item.area != AREA_WORKSPACE
        for chunk in item.chunks
    }


def checksum_line(area: str, area_key: str, entry: Mapping[str, Any]) -> bytes:
    """What :func:`content_checksum` takes of one entry: its place, kind and content."""
    fields = (
        area,
        area_key,
        str(entry["path"]),
        str(entry.get("kind")),
        ",".join(entry.get("content") or ()),
        str(entry.get("link_target") or ""),
    )
    return "\0".join(fields).encode() + b"\n"


def content_checksum(
    manifest: Mapping[str, Any], lines: Mapping[tuple[str, str], bytes] | None = None
) -> str:
    """A digest of every file's place, kind and content: equal for snapshots of equal content.

    Areas and their entries come in a fixed order (captures sort entries by path), so no
    sorting is needed here. ``lines`` gives the :func:`checksum_line` lines of some areas,
    by (area, area key), already joined: those areas' entries are not read.
    """
    digest = blake3.blake3()
    known = lines or {}
    for area, area_key, _, entries in _areas(manifest):
        joined = known.get((area, area_key))
        if joined is not None:
            digest.update(joined)
            continue
        for entry in entries:
            digest.update(checksum_line(area, area_key, entry))
    return "blake3:" + digest.hexdigest()


def first_by_name(packages: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Distributions by canonical name: the one ``import`` finds of each.

    A manifest lists an interpreter's distributions in ``sys.path`` order within a name (the
    probe's order), so the first wins: a researcher's own ``six`` ahead of the suite's copy
    it shadows. One marked ``shadowed`` never wins.
    """
    found: dict[str, Mapping[str, Any]] = {}
    for package in packages:
        if package.get("shadowed"):
            continue
        found.setdefault(canonicalize_name(str(package["name"])), package)
    return found
