"""Import names → distributions: which installed distributions provide an imported module.

Answered from the distributions' own RECORD file lists (plus ``top_level`` for editable
installs), not from a hand-kept name table.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from westtek_core.notebooks.analysis import is_module_name

_EXTENSION_RE = re.compile(r"([A-Za-z_]\w*)(?:\.[\w-]+)*\.(?:so|pyd)")
_META_DIR_SUFFIXES = (".dist-info", ".data", ".egg-info")
_MODULE_SUFFIXES = (".py", ".pyc", ".so", ".pyd")


def module_of_record_path(path: str) -> str | None:
    """The dotted module a RECORD path provides, or None (data, scripts, metadata, caches).

    ``a/b/c.py``, ``a/b/c.cpython-311-x86_64-linux-gnu.so`` → ``a.b.c``;
    ``a/b/__init__.py`` → ``a.b``; ``a.py`` → ``a``.
    """
    path = path.replace("\\", "/")
    if not path.endswith(_MODULE_SUFFIXES) or path.startswith("/"):
        return None
    directory, _, filename = path.rpartition("/")
    package = _package_of(directory)
    if package is None:
        return None
    if filename.endswith((".py", ".pyc")):
        stem = filename.rpartition(".")[0]
    else:
        extension = _EXTENSION_RE.fullmatch(filename)
        if extension is None:
            return None
        stem = extension.group(1)
    if not stem.isidentifier():
        return None
    if stem == "__init__":
        return package or None
    if not package and stem.startswith("__editable__"):
        return None  # setuptools' editable finder, not a module of the project
    return f"{package}.{stem}" if package else stem


@functools.lru_cache(maxsize=16384)
def _package_of(directory: str) -> str | None:
    """The dotted package a RECORD directory is ("" at the top), None if not a package's.

    Cached: an environment's ~30k RECORD paths lie in a few thousand directories.
    """
    if not directory:
        return ""
    parts = directory.split("/")
    if parts[0] in (".", "..") or ".." in parts or "__pycache__" in parts:
        return None
    if parts[0].endswith(_META_DIR_SUFFIXES) or not all(p.isidentifier() for p in parts):
        return None
    return directory.replace("/", ".")


def _ancestors(module: str) -> Iterator[str]:
    parts = module.split(".")
    for size in range(1, len(parts)):
        yield ".".join(parts[:size])


def _record_paths(files: Any) -> Iterator[str]:
    """RECORD paths given as strings or as ``{"path": …}`` entries (probes before version 2)."""
    if not isinstance(files, (list, tuple)):
        return
    for entry in files:
        if isinstance(entry, str):
            yield entry
        elif isinstance(entry, Mapping) and isinstance(entry.get("path"), str):
            yield entry["path"]


@dataclass(frozen=True)
class ImportMap:
    """Maps import names to one captured interpreter's distributions, from the dists' own data.

    ``modules`` holds, per dotted module, the distributions that ship it (its ``.py``, its
    ``__init__`` or an extension module) or name it in ``top_level``. ``namespaces`` holds,
    per dotted package, the distributions that ship something beneath it without shipping
    the package itself: ``google``, ``google.cloud`` and ``mpl_toolkits`` are shared that way.
    """

    # names as a frozenset, or the list read back by from_json (converting ~20k is wasted
    # when a drift check looks up a few hundred modules)
    modules: Mapping[str, Collection[str]]
    namespaces: Mapping[str, Collection[str]]

    @classmethod
    def from_packages(cls, packages: Sequence[Mapping[str, Any]]) -> ImportMap:
        """Build the map from captured distribution records.

        Each record has ``name``, and optionally ``files`` (RECORD paths relative to
        site-packages, as strings or ``{"path": …}``) and ``top_level`` (import names, dotted
        for namespace portions). Files decide; ``top_level`` adds the names the files do not
        show, which is how editable installs (RECORD holding only a ``.pth``) are mapped.
        """
        return cls({}, {}).extended(packages)

    def extended(self, packages: Sequence[Mapping[str, Any]]) -> ImportMap:
        """The map of this one's records and ``packages`` together.

        Each record's modules and namespaces depend on that record alone, so a map kept
        for one set of records is extended by more without mapping the first set again.
        """
        modules: dict[str, set[str]] = {}
        namespaces: dict[str, set[str]] = {}
        for package in packages:
            name = package.get("name")
            if not isinstance(name, str) or not name:
                continue
            owned: set[str] = set()
            parents: set[str] = set()
            for path in _record_paths(package.get("files")):
                module = module_of_record_path(path)
                if module is not None:
                    owned.add(module)
                    parents.add(module.rpartition(".")[0])
            # the ancestors of each module's package, once per package (not per module)
            parents.discard("")
            shared = set(parents)
            for parent in parents:
                shared.update(_ancestors(parent))
            top_level = package.get("top_level")
            for entry in top_level if isinstance(top_level, (list, tuple)) else ():
                if isinstance(entry, str) and is_module_name(entry):
                    if entry not in owned and entry not in shared:
                        owned.add(entry)
                        shared.update(_ancestors(entry))
            for module in owned:
                modules.setdefault(module, set()).add(name)
            for module in shared - owned:
                namespaces.setdefault(module, set()).add(name)
        return ImportMap(_merged(self.modules, modules), _merged(self.namespaces, namespaces))

    def to_json(self) -> dict[str, dict[str, list[str]]]:
        """The map as JSON (:meth:`from_json` reads it back)."""
        return {
            "modules": {k: sorted(v) for k, v in self.modules.items()},
            "namespaces": {k: sorted(v) for k, v in self.namespaces.items()},
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ImportMap:
        """The map :meth:`to_json` wrote; ``ValueError`` if ``doc`` is not one."""
        return cls(_names_by_module(doc.get("modules")), _names_by_module(doc.get("namespaces")))

    def distributions_for(self, module: str) -> set[str]:
        """Distributions providing ``module``: the deepest owner of its dotted path wins.

        ``google.cloud.storage.blob`` → ``{"google-cloud-storage"}``; ``google.cloud`` alone
        → every distribution providing a part of it; standard library or unknown → empty.
        """
        parts = module.split(".")
        for size in range(len(parts), 0, -1):
            prefix = ".".join(parts[:size])
            owners = self.modules.get(prefix) or self.namespaces.get(prefix)
            if owners:
                return set(owners)
        return set()


def _merged(
    kept: Mapping[str, Collection[str]], more: Mapping[str, set[str]]
) -> dict[str, Collection[str]]:
    merged = dict(kept)
    for key, names in more.items():
        merged[key] = frozenset(merged.get(key, ())) | names
    return merged


def _names_by_module(part: Any) -> dict[str, list[str]]:
    if not isinstance(part, dict) or not all(type(v) is list for v in part.values()):
        raise ValueError("not an import map")
    return part
