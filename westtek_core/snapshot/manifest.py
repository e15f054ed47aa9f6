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


def iter_files(manifest: Mapping[str, Any]) -> Iterator[ManifestFile]:
    """Every file, link and dir entry of every area of a manifest."""
    for index, interp in enumerate(manifest.get("interpreters", [])):
        tree = interp.get("prefix_tree")
        if tree:
            for entry in tree.get("files", []):
                yield ManifestFile(AREA_ENV, str(index), entry)
    for kernel in manifest.get("kernels", []):
        for entry in kernel.get("files", []):
            yield ManifestFile(AREA_KERNEL, str(kernel["name"]), entry)
    for config in manifest.get("jupyter", {}).get("config", []):
        for entry in config.get("files", []):
            yield ManifestFile(AREA_CONFIG, str(config["dir"]), entry, config.get("role", "config"))
    for entry in manifest.get("workspace", {}).get("files", []):
        yield ManifestFile(AREA_WORKSPACE, "", entry)


def referenced_chunks(manifest: Mapping[str, Any]) -> set[str]:
    """Every chunk id a manifest needs."""
    return {chunk for item in iter_files(manifest) for chunk in item.chunks}


def content_checksum(manifest: Mapping[str, Any]) -> str:
    """A digest of every file's place, kind and content: equal for snapshots of equal content.

    Areas and their entries come in a fixed order (captures sort entries by path), so no
    sorting is needed here.
    """
    digest = blake3.blake3()
    for item in iter_files(manifest):
        entry = item.entry
        digest.update(
            "\0".join(
                (
                    item.area,
                    item.area_key,
                    item.path,
                    str(entry.get("kind")),
                    ",".join(entry.get("content") or ()),
                    str(entry.get("link_target") or ""),
                )
            ).encode()
            + b"\n"
        )
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
