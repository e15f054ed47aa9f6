"""A package version's source, as a snapshot stored it or as it is installed now.

:class:`PackageSource` holds one version's modules (``.py`` text), its ``METADATA`` and
the changelog-like files it ships, read through the distribution's RECORD paths. Nothing
is imported or executed.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from westtek_core.notebooks import module_of_record_path

# A package's source beyond this is not read: the largest scientific packages stay below.
MAX_SOURCE_FILES = 4000
MAX_SOURCE_BYTES = 2 * 1024 * 1024


@dataclass
class PackageSource:
    """One installed version of a distribution: its modules' source and its metadata."""

    name: str
    version: str
    origin: str
    """Where it was read: ``snapshot:<id>`` or ``live``."""
    modules: dict[str, str] = field(default_factory=dict)
    """Dotted module name → Python source."""
    packages: set[str] = field(default_factory=set)
    """Modules that are packages (an ``__init__.py``)."""
    paths: dict[str, str] = field(default_factory=dict)
    """Dotted module name → its RECORD path (relative to site-packages)."""
    metadata: str = ""
    """The ``METADATA`` file's text."""
    release_notes: dict[str, str] = field(default_factory=dict)
    """Changelog-like files shipped with the distribution: RECORD path → text."""

    @property
    def top_level(self) -> set[str]:
        """The top-level import names it provides."""
        return {m.split(".")[0] for m in self.modules}


_NOTES_RE = re.compile(r"(?:^|/)(CHANGE[S]?(?:LOG)?|HISTORY|NEWS|RELEASE[-_]?NOTES)[^/]*$", re.I)


def collect_source(
    name: str,
    version: str,
    origin: str,
    record_paths: Iterable[str],
    read: Any,
) -> PackageSource:
    """Gather a distribution's ``.py`` modules and metadata, reading each path with ``read``.

    ``read(record_path) -> bytes | None`` reads a file relative to site-packages (None when
    it is missing). Unreadable or undecodable files are skipped.
    """
    source = PackageSource(name=name, version=version, origin=origin)
    count = 0
    for path in record_paths:
        if path.endswith(".dist-info/METADATA"):
            data = read(path)
            source.metadata = data.decode("utf-8", "replace") if data else ""
            continue
        if _NOTES_RE.search(path) and not path.endswith(".py"):
            data = read(path)
            if data and len(data) <= MAX_SOURCE_BYTES:
                source.release_notes[path] = data.decode("utf-8", "replace")
            continue
        if not path.endswith(".py") or count >= MAX_SOURCE_FILES:
            continue
        module = module_of_record_path(path)
        if module is None:
            continue
        data = read(path)
        if data is None or len(data) > MAX_SOURCE_BYTES:
            continue
        try:
            source.modules[module] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        source.paths[module] = path
        if path.endswith("/__init__.py") or path == "__init__.py":
            source.packages.add(module)
        count += 1
    return source


def site_packages_relative(interpreter: Mapping[str, Any]) -> str | None:
    """Where site-packages lies inside a captured interpreter's prefix (POSIX, relative)."""
    prefix = interpreter.get("prefix")
    purelib = (interpreter.get("paths") or {}).get("purelib")
    if not prefix or not purelib:
        return None
    relative = posixpath.relpath(str(purelib), str(prefix))
    return None if relative.startswith("..") else relative


def find_package(
    manifest: Mapping[str, Any], name: str, version: str | None = None
) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """The (interpreter, package record) of ``name`` (at ``version``) in a manifest."""
    from packaging.utils import canonicalize_name

    wanted = canonicalize_name(name)
    for interp in manifest.get("interpreters", []):
        for package in interp.get("packages", []):
            if canonicalize_name(str(package.get("name", ""))) != wanted:
                continue
            if version is None or str(package.get("version")) == version:
                return interp, package
    return None


def source_from_snapshot(
    repo: Any, manifest: Mapping[str, Any], name: str, version: str | None = None
) -> PackageSource | None:
    """A package's source as a snapshot stored it (None when absent or not stored)."""
    from westtek_core.store import FileContent

    found = find_package(manifest, name, version)
    if found is None:
        return None
    interp, package = found
    site = site_packages_relative(interp)
    tree = interp.get("prefix_tree") or {}
    if site is None or not tree.get("files"):
        return None
    entries = {str(e["path"]): e for e in tree["files"] if e.get("kind") == "file"}

    def read(record_path: str) -> bytes | None:
        entry = entries.get(posixpath.normpath(posixpath.join(site, record_path)))
        if entry is None:
            return None
        size = int(entry.get("stored_size", entry.get("size", 0)))
        if size > MAX_SOURCE_BYTES:
            return None
        content = FileContent(size=size, chunks=tuple(entry.get("content") or ()))
        return b"".join(repo.iter_file(content))

    return collect_source(
        str(package["name"]),
        str(package["version"]),
        f"snapshot:{manifest.get('id', '')}",
        [str(p) for p in package.get("files", [])],
        read,
    )


def source_from_directory(
    site_packages: Path, name: str, version: str, record_paths: Iterable[str]
) -> PackageSource:
    """A package's source read from a live site-packages directory."""

    def read(record_path: str) -> bytes | None:
        path = site_packages / record_path
        try:
            if path.stat().st_size > MAX_SOURCE_BYTES:
                return None
            return path.read_bytes()
        except OSError:
            return None

    return collect_source(name, version, "live", record_paths, read)
