"""Manifests reduced to comparable facets, and the raw differences between two of them.

A snapshot's manifest and a live capture (``live_manifest``) are both reduced by
``manifest_facets`` to key → comparable value per kind of change; ``raw_changes`` lists
what differs, before any grading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from westtek_core.drift.report import version_direction
from westtek_core.snapshot.create import package_records
from westtek_core.snapshot.manifest import first_by_name


@dataclass(frozen=True)
class RawChange:
    """A difference before grading: what changed, not yet how much it matters."""

    kind: str
    name: str
    change: str
    before: str | None
    after: str | None
    interpreter: str = ""  # the interpreter label, for packages and interpreters


def _digest(entry: Mapping[str, Any], by: str) -> str:
    if entry.get("kind") == "symlink":
        return f"-> {entry.get('link_target')}"
    if by == "content" and entry.get("content") is not None:
        return ",".join(entry.get("content") or ()) or "empty"
    return f"{entry.get('size', 0)}:{entry.get('mtime_ns', 0)}"


def _kernel_digest(kernel: Mapping[str, Any]) -> str:
    spec = kernel.get("spec", {})
    return " ".join(spec.get("argv", [])) + f" [{spec.get('display_name', '')}]"


def manifest_facets(manifest: Mapping[str, Any], by: str = "content") -> dict[str, dict[Any, str]]:
    """Reduce a manifest to key → comparable value, per kind of change.

    ``by="content"`` compares files by their content ids (two snapshots); ``by="stat"`` by
    size and mtime (a snapshot against a live capture, whose files were not hashed).
    Packages are keyed by (interpreter label, name).
    """
    interpreters: dict[Any, str] = {}
    packages: dict[Any, str] = {}
    for interp in manifest.get("interpreters", []):
        label = str(interp.get("label") or interp.get("path", "?"))
        interpreters[label] = str(interp.get("version", "?")).split()[0]
        for pkg in first_by_name(interp.get("packages", [])).values():
            packages[(label, pkg["name"])] = pkg["version"]
    kernels: dict[Any, str] = {k["name"]: _kernel_digest(k) for k in manifest.get("kernels", [])}
    config: dict[Any, str] = {
        f"{c['dir']}/{e['path']}": _digest(e, by)
        for c in manifest.get("jupyter", {}).get("config", [])
        for e in c.get("files", [])
        if e.get("kind") != "dir"
    }
    extensions: dict[Any, str] = {
        x["name"]: str(x.get("version", "?")) for x in manifest.get("labextensions", [])
    }
    notebooks: dict[Any, str] = {}
    data: dict[Any, str] = {}
    for entry in manifest.get("workspace", {}).get("files", []):
        if entry.get("kind") == "dir":
            continue
        target = notebooks if entry["path"].endswith(".ipynb") else data
        target[entry["path"]] = _digest(entry, by)
    return {
        "interpreter": interpreters,
        "package": packages,
        "kernel": kernels,
        "config": config,
        "extension": extensions,
        "notebook": notebooks,
        "data": data,
    }


_VERSIONED = {"interpreter", "package", "extension"}


_SHOW_VALUES = {"interpreter", "package", "extension", "kernel"}


def raw_changes(
    before: Mapping[str, Mapping[Any, str]], after: Mapping[str, Mapping[Any, str]]
) -> list[RawChange]:
    """Every difference between two environments reduced by ``manifest_facets``."""
    changes = []
    for kind in ("interpreter", "package", "kernel", "config", "extension", "notebook", "data"):
        old_side, new_side = before.get(kind, {}), after.get(kind, {})
        for key in sorted(old_side.keys() | new_side.keys(), key=str):
            old, new = old_side.get(key), new_side.get(key)
            if old == new:
                continue
            interpreter, name = key if isinstance(key, tuple) else ("", str(key))
            if kind == "interpreter":
                interpreter = name
            if old is None:
                change = "added"
            elif new is None:
                change = "removed"
            elif kind in _VERSIONED:
                change = version_direction(old, new)
            else:
                change = "modified"
            if kind not in _SHOW_VALUES:  # content ids and stat digests mean nothing to a reader
                old = new = None
            changes.append(RawChange(kind, name, change, old, new, interpreter))
    return changes


def live_manifest(capture: Any) -> dict[str, Any]:
    """A capture in the manifest's shape, files described by stat only (nothing is read)."""

    def entries(tree: Any) -> list[dict[str, Any]]:
        return [e.to_json() for e in tree.entries]

    return {
        "id": "live",
        "interpreters": [
            {
                "label": f"env{index}",
                "path": interp.python,
                "executable": interp.info.get("executable"),
                "prefix": interp.info.get("prefix"),
                "version": interp.info.get("version_string") or interp.info.get("version"),
                "packages": package_records(interp.info),
            }
            for index, interp in enumerate(capture.interpreters)
        ],
        "kernels": [{"name": k.name, "spec": k.spec} for k in capture.kernels],
        "jupyter": {"config": [{"dir": c.dir, "files": entries(c.tree)} for c in capture.config]},
        "labextensions": capture.labextensions,
        "workspace": {"files": entries(capture.workspace)},
    }


def kernel_interpreters(manifest: Mapping[str, Any]) -> dict[str, str]:
    """Kernel name → label of the manifest interpreter it runs."""
    result: dict[str, str] = {}
    for kernel in manifest.get("kernels", []):
        argv = kernel.get("spec", {}).get("argv") or [""]
        for interp in manifest.get("interpreters", []):
            prefix = str(interp.get("prefix") or "")
            if argv[0] in (interp.get("path"), interp.get("executable")) or (
                prefix and argv[0].startswith(prefix.rstrip("/") + "/")
            ):
                result[kernel["name"]] = str(interp.get("label"))
                break
    return result
