"""Rollback: put the live environment back to a snapshot, in place, one step at a time.

``westtek rollback --to ID`` first takes a *safety snapshot* of the environment as it is,
then applies a plan step by step: one distribution of one interpreter, one kernelspec or
one Jupyter config file at a time. Each step is recorded in a journal
(``<data dir>/rollbacks/<id>.json``, replaced atomically after every step), so a rollback
that is interrupted can be resumed (``--resume``, or the same command again) or undone
(``--undo``: a rollback to the safety snapshot).

A distribution is removed by the RECORD of the live one and written back byte-exact, mode
and mtime included, from the snapshot's copy of the interpreter's prefix; nothing comes
from a package index. The workspace (notebooks and data) is never touched. Every path a
snapshot names must stay inside its interpreter prefix, a Jupyter kernels directory or a
Jupyter config directory; a manifest that says otherwise is refused before anything
changes.

:func:`plan_rollback` is pure (a target manifest and a description of the live
environment in, a :class:`RollbackPlan` out); :func:`run_rollback` orchestrates.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import posixpath
import secrets
import shutil
import socket
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from westtek_core.capture import REDACTION_MARKER, Capture, is_lab_layout
from westtek_core.capture.secret_rules import redact_config
from westtek_core.drift_report import DriftReport
from westtek_core.paths import is_within
from westtek_core.snapshot.manifest import ManifestError, safe_relative_path
from westtek_core.store import FileContent, Repository

AREAS: tuple[str, ...] = ("packages", "kernels", "config")
# Which kinds of drift-report change each area puts right.
AREA_DRIFT_KINDS: dict[str, frozenset[str]] = {
    "packages": frozenset({"interpreter", "package"}),
    "kernels": frozenset({"kernel"}),
    "config": frozenset({"config"}),
}
SAFETY_LABEL = "westtek.rollback"
JOURNAL_FORMAT = 1
# The distribution that is running this rollback: never removed from under itself.
SELF_DISTRIBUTION = "westtek"
_UNSAFE_MODE_BITS = 0o6000  # setuid/setgid never come back from a snapshot


class RollbackError(Exception):
    """A rollback that cannot start or go on; ``str()`` is one clear line for the CLI."""


# -- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollbackStep:
    """One unit of a rollback: a distribution, a kernelspec or a config file.

    ``action`` is ``remove`` (live only), ``install`` (snapshot only), ``replace`` (both,
    different) or ``restore-prefix`` (the interpreter's whole prefix is gone). ``where`` is
    the interpreter's path (packages), the kernelspec's directory (kernels) or the config
    directory (config); ``interpreter`` the index of the target manifest's interpreter.
    """

    area: str
    action: str
    name: str
    where: str
    interpreter: int | None = None
    before: str | None = None
    after: str | None = None

    @property
    def key(self) -> str:
        """Identity of the step within a plan."""
        return f"{self.area}:{self.where}:{self.name}"

    def describe(self) -> str:
        """One human line: what the step does."""
        if self.area == "packages":
            if self.action == "restore-prefix":
                return f"restore the environment of {self.where}"
            versions = {
                "remove": f"{self.before}",
                "install": f"{self.after}",
                "replace": f"{self.before} → {self.after}",
            }[self.action]
            return f"{self.action} {self.name} {versions} ({self.where})"
        what = "kernel" if self.area == "kernels" else "config"
        where = self.name if self.area == "kernels" else f"{self.where}/{self.name}"
        return f"{self.action} {what} {where}"

    def to_json(self) -> dict[str, Any]:
        """The journal's and the report's form."""
        return {
            "area": self.area,
            "action": self.action,
            "name": self.name,
            "where": self.where,
            "interpreter": self.interpreter,
            "before": self.before,
            "after": self.after,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RollbackStep:
        """Rebuild a step from its journal form."""
        return cls(
            area=str(data["area"]),
            action=str(data["action"]),
            name=str(data["name"]),
            where=str(data["where"]),
            interpreter=data.get("interpreter"),
            before=data.get("before"),
            after=data.get("after"),
        )


@dataclass
class RollbackPlan:
    """What a rollback will do: its steps in order, what stays, and what it cannot do."""

    target: str
    only: tuple[str, ...]
    steps: list[RollbackStep] = field(default_factory=list)
    unchanged: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        """Identity of what the plan does: a preview confirmed is the rollback applied."""
        canonical = json.dumps(
            [self.target, list(self.only), [s.to_json() for s in self.steps]],
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON (also kept in the journal)."""
        return {
            "target": self.target,
            "only": list(self.only),
            "steps": [s.to_json() for s in self.steps],
            "unchanged": dict(self.unchanged),
            "notes": list(self.notes),
        }

    def to_preview(self) -> dict[str, Any]:
        """The plan shown before it runs: each step with its line, and its fingerprint."""
        plan = self.to_json()
        for step, row in zip(self.steps, plan["steps"], strict=True):
            row["description"] = step.describe()
        return plan | {"fingerprint": self.fingerprint}


def _areas(only: Collection[str] | None) -> tuple[str, ...]:
    if not only:
        return AREAS
    unknown = sorted(set(only) - set(AREAS))
    if unknown:
        raise RollbackError(
            f"cannot roll back {', '.join(unknown)}: choose from {', '.join(AREAS)}"
        )
    return tuple(a for a in AREAS if a in only)


def _relative_to_prefix(path: str | None, prefix: str) -> str | None:
    if not path:
        return None
    normal = posixpath.normpath(path)
    if not is_within(normal, prefix):
        return None
    return posixpath.relpath(normal, prefix)


def _tree_index(interp: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    tree = interp.get("prefix_tree") or {}
    return {str(e["path"]): e for e in tree.get("files", [])}


class NotRestorable(Exception):
    """A snapshot's distribution whose files the snapshot does not hold."""


def distribution_entries(
    interp: Mapping[str, Any],
    package: Mapping[str, Any],
    index: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[Mapping[str, Any]], list[str]]:
    """The prefix-tree entries of one of a snapshot's distributions, and its missing files.

    The distribution's RECORD paths are relative to the site directory it was installed
    in (``purelib`` or ``platlib``, whichever holds its ``.dist-info``); each must stay
    inside the prefix once normalised (``../../../bin/tool`` does; ``../../../../etc``
    does not: :class:`RollbackError`). Bytecode caches are never stored and never missed.
    Raises :class:`NotRestorable` when the snapshot lacks the distribution's metadata.
    """
    prefix = posixpath.normpath(str(interp.get("prefix") or ""))
    index = _tree_index(interp) if index is None else index
    if not interp.get("prefix_tree") or not prefix.startswith("/"):
        raise NotRestorable("the snapshot holds no files of this interpreter's prefix")
    paths = interp.get("paths") or {}
    sites = []
    for key in ("purelib", "platlib"):
        site = _relative_to_prefix(paths.get(key), prefix)
        if site is not None and site not in sites:
            sites.append(site)
    files = [str(f) for f in package.get("files", [])]
    metadata_dirs = [
        f.split("/", 1)[0]
        for f in files
        if f.count("/") == 1 and f.split("/", 1)[0].endswith(".dist-info")
    ]
    site_dir = next(
        (s for s in sites for d in metadata_dirs if posixpath.join(s, d, "METADATA") in index),
        None,
    )
    if site_dir is None or not metadata_dirs:
        raise NotRestorable("its files are not in the snapshot (installed outside the prefix?)")
    chosen: dict[str, Mapping[str, Any]] = {}
    missing: list[str] = []
    for record_path in files:
        relative = posixpath.normpath(posixpath.join(site_dir, record_path))
        if posixpath.isabs(record_path) or relative == ".." or relative.startswith("../"):
            raise RollbackError(
                f"unsafe path in snapshot: {package.get('name')} lists {record_path!r}, "
                f"outside the prefix {prefix}"
            )
        safe_relative_path(relative)
        if "__pycache__" in relative.split("/") or relative.endswith((".pyc", ".pyo")):
            continue
        entry = index.get(relative)
        if entry is None:
            missing.append(relative)
        else:
            chosen[relative] = entry
    metadata_dir = posixpath.join(site_dir, metadata_dirs[0])
    for path, entry in index.items():
        if path.startswith(metadata_dir + "/") and path not in chosen:
            chosen[path] = entry
    return [chosen[p] for p in sorted(chosen)], missing


def _first_by_name(packages: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Distributions by canonical name; the first one wins (what ``import`` finds)."""
    found: dict[str, Mapping[str, Any]] = {}
    for package in packages:
        if package.get("shadowed"):
            continue
        found.setdefault(canonicalize_name(str(package["name"])), package)
    return found


def _target_interpreters(
    target: Mapping[str, Any], wanted: Sequence[str] | None
) -> list[tuple[int, Mapping[str, Any]]]:
    interpreters = list(enumerate(target.get("interpreters", [])))
    if wanted is None:
        return interpreters
    chosen = []
    for python in wanted:
        match = next(
            (
                (i, interp)
                for i, interp in interpreters
                if python in (interp.get("path"), interp.get("executable"))
            ),
            None,
        )
        if match is None:
            known = ", ".join(str(i.get("path")) for _, i in interpreters) or "none"
            raise RollbackError(
                f"interpreter {python} is not in snapshot {str(target.get('id', ''))[:12]} "
                f"(it has: {known})"
            )
        if match not in chosen:
            chosen.append(match)
    return chosen


def _live_interpreter(interp: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any] | None:
    for candidate in live.get("interpreters", []):
        if candidate.get("path") in (interp.get("path"), interp.get("executable")):
            return dict(candidate)
    return None


def _plan_packages(target: Mapping[str, Any], live: Mapping[str, Any], plan: RollbackPlan) -> None:
    removals: list[RollbackStep] = []
    writes: list[RollbackStep] = []
    for index, interp in _target_interpreters(target, live.get("pythons")):
        python = str(interp.get("path"))
        prefix = posixpath.normpath(str(interp.get("prefix") or ""))
        current = _live_interpreter(interp, live)
        if current is None:
            if not interp.get("prefix_tree"):
                raise RollbackError(
                    f"interpreter {python} is gone and snapshot holds no copy of its files "
                    "(a system interpreter): reinstall it, then roll back"
                )
            if not prefix.startswith("/") or prefix == "/" or not is_within(python, prefix):
                raise RollbackError(f"unsafe prefix in snapshot for {python}: {prefix!r}")
            for entry in (interp.get("prefix_tree") or {}).get("files", []):
                safe_relative_path(str(entry["path"]))
            writes.append(RollbackStep("packages", "restore-prefix", python, python, index))
            continue
        live_prefix = posixpath.normpath(str(current.get("prefix") or ""))
        if live_prefix != prefix:
            raise RollbackError(
                f"interpreter {python} now runs from {live_prefix}, not {prefix} as in the "
                "snapshot: restore it elsewhere with `westtek snapshot restore`"
            )
        tree_index = _tree_index(interp)
        wanted = _first_by_name(interp.get("packages", []))
        present = _first_by_name(current.get("packages", []))
        for name in sorted(wanted.keys() | present.keys()):
            old, new = present.get(name), wanted.get(name)
            if old is not None and new is not None and old.get("version") == new.get("version"):
                plan.unchanged["packages"] = plan.unchanged.get("packages", 0) + 1
                continue
            if name == SELF_DISTRIBUTION and prefix == live.get("self_prefix"):
                plan.notes.append(f"{name} is running this rollback: left as it is in {python}")
                continue
            if old is not None and not is_within(
                posixpath.normpath(str(old.get("location") or "")), prefix
            ):
                plan.notes.append(
                    f"{old.get('name')} {old.get('version')} of {python} is installed outside "
                    f"its prefix ({old.get('location')}): left as it is"
                )
                continue
            if new is not None:
                try:
                    _, missing = distribution_entries(interp, new, tree_index)
                except NotRestorable as e:
                    plan.notes.append(
                        f"{new.get('name')} {new.get('version')} of {python} cannot be "
                        f"restored: {e}"
                    )
                    continue
                if missing:
                    plan.notes.append(
                        f"{new.get('name')} {new.get('version')}: {len(missing)} file(s) not in "
                        f"the snapshot, e.g. {missing[0]}"
                    )
            step = RollbackStep(
                "packages",
                "remove" if new is None else "install" if old is None else "replace",
                str((new or old or {}).get("name")),
                python,
                index,
                before=None if old is None else str(old.get("version")),
                after=None if new is None else str(new.get("version")),
            )
            (removals if new is None else writes).append(step)
    # removals first: a distribution written later never loses a file a removed one shared
    plan.steps.extend(removals + writes)


def _facts(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes two entries of a kernel or config area the same (as drift sees them)."""
    if entry.get("kind") == "dir":
        return ("dir",)
    return (
        entry.get("kind"),
        entry.get("size"),
        entry.get("mtime_ns"),
        entry.get("mode"),
        entry.get("link_target"),
    )


def _by_path(files: Iterable[Mapping[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {str(e["path"]): _facts(e) for e in files}


def _normal_dirs(dirs: Iterable[str]) -> set[str]:
    return {posixpath.normpath(d) for d in dirs if str(d).startswith("/")}


def _check_kernel_dir(kernel: Mapping[str, Any], kernel_dirs: set[str]) -> str:
    name = str(kernel.get("name", ""))
    if "/" in name or name in ("", ".", ".."):
        raise RollbackError(f"unsafe kernel name in snapshot: {name!r}")
    resource_dir = posixpath.normpath(str(kernel.get("resource_dir") or ""))
    if (
        posixpath.basename(resource_dir) != name
        or posixpath.dirname(resource_dir) not in kernel_dirs
    ):
        raise RollbackError(
            f"kernel {name}: its directory {kernel.get('resource_dir')!r} in the snapshot is not "
            f"a kernelspec of a Jupyter kernels directory ({', '.join(sorted(kernel_dirs))})"
        )
    for entry in kernel.get("files", []):
        safe_relative_path(str(entry["path"]))
    return resource_dir


def _plan_kernels(target: Mapping[str, Any], live: Mapping[str, Any], plan: RollbackPlan) -> None:
    kernel_dirs = _normal_dirs(live.get("kernel_dirs", []))
    wanted = {str(k["name"]): k for k in target.get("kernels", [])}
    present = {str(k["name"]): k for k in live.get("kernels", [])}
    for name in sorted(wanted.keys() | present.keys()):
        old, new = present.get(name), wanted.get(name)
        if old is not None and new is not None:
            if _by_path(old.get("files", [])) == _by_path(new.get("files", [])):
                plan.unchanged["kernels"] = plan.unchanged.get("kernels", 0) + 1
                continue
        if new is None:
            assert old is not None
            where = posixpath.normpath(str(old.get("resource_dir")))
            if posixpath.dirname(where) not in kernel_dirs:
                plan.notes.append(f"kernel {name} ({where}) belongs to a package: left as it is")
                continue
            plan.steps.append(RollbackStep("kernels", "remove", name, where))
            continue
        where = _check_kernel_dir(new, kernel_dirs)
        action = "install" if old is None else "replace"
        if old is not None and posixpath.normpath(str(old.get("resource_dir"))) != where:
            action = "install"  # another dir of the search path shadows it now; write ours
        plan.steps.append(RollbackStep("kernels", action, name, where))


def _plan_config(target: Mapping[str, Any], live: Mapping[str, Any], plan: RollbackPlan) -> None:
    allowed = _normal_dirs(live.get("config_dirs", []))
    wanted: dict[tuple[str, str], Mapping[str, Any]] = {}
    for config in target.get("jupyter", {}).get("config", []):
        directory = posixpath.normpath(str(config.get("dir") or ""))
        if directory not in allowed:
            raise RollbackError(
                f"config directory {config.get('dir')!r} in the snapshot is not a Jupyter config "
                "directory here: refusing to write there"
            )
        for entry in config.get("files", []):
            if entry.get("kind") != "dir" and not is_lab_layout(str(entry["path"])):
                wanted[directory, str(safe_relative_path(str(entry["path"])))] = entry
    present: dict[tuple[str, str], Mapping[str, Any]] = {}
    for config in live.get("config", []):
        directory = posixpath.normpath(str(config.get("dir")))
        for entry in config.get("files", []):
            if entry.get("kind") != "dir":
                present[directory, str(entry["path"])] = entry
    for key in sorted(wanted.keys() | present.keys()):
        old, new = present.get(key), wanted.get(key)
        if old is not None and new is not None and _facts(old) == _facts(new):
            plan.unchanged["config"] = plan.unchanged.get("config", 0) + 1
            continue
        action = "remove" if new is None else "install" if old is None else "replace"
        plan.steps.append(RollbackStep("config", action, key[1], key[0]))


def plan_rollback(
    target: Mapping[str, Any], live: Mapping[str, Any], only: Collection[str] | None = None
) -> RollbackPlan:
    """Plan the steps that turn the live environment into ``target``; no I/O.

    ``live`` is :func:`live_state`'s shape: the live interpreters (path, prefix, packages
    with location and RECORD paths), kernels and config files (stat entries), the kernels
    and config directories where writing is allowed, ``pythons`` (which of the target's
    interpreters to roll back; all when absent) and ``self_prefix``. Unsafe paths in the
    target raise :class:`RollbackError`; what cannot be done safely is left as it is and
    named in ``notes``.
    """
    areas = _areas(only)
    plan = RollbackPlan(target=str(target.get("id", "")), only=areas)
    plan.unchanged = {area: 0 for area in areas}
    try:
        if "packages" in areas:
            _plan_packages(target, live, plan)
        if "kernels" in areas:
            _plan_kernels(target, live, plan)
        if "config" in areas:
            _plan_config(target, live, plan)
    except ManifestError as e:
        raise RollbackError(str(e)) from None
    return plan


# -- the live side -------------------------------------------------------------------------


def kernel_dirs() -> list[str]:
    """The Jupyter kernels directories a kernelspec may be written to."""
    from jupyter_core.paths import jupyter_path

    return [os.path.abspath(d) for d in jupyter_path("kernels")]


def config_dirs(capture: Capture | None = None) -> list[str]:
    """The Jupyter config directories a config file may be written to (present or not)."""
    from jupyter_core.paths import jupyter_config_path

    from westtek_core.capture.jupyter_env import lab_app_dir

    dirs = [os.path.abspath(d) for d in jupyter_config_path()]
    dirs.append(os.path.join(lab_app_dir(), "settings"))
    for variable in ("JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"):
        if os.environ.get(variable):
            dirs.append(os.path.abspath(os.environ[variable]))
    if capture is not None:
        dirs.extend(c.dir for c in capture.config)
    return dirs


def live_state(capture: Capture, pythons: Sequence[str] | None = None) -> dict[str, Any]:
    """Describe a live capture for :func:`plan_rollback` (JSON-shaped, like a manifest)."""
    return {
        "pythons": list(pythons) if pythons is not None else None,
        "self_prefix": posixpath.normpath(sys.prefix),
        "interpreters": [
            {
                "path": interp.python,
                "prefix": interp.info.get("prefix"),
                "packages": [
                    {
                        "name": dist["name"],
                        "version": dist["version"],
                        "location": dist.get("location"),
                        "metadata_dir": dist.get("metadata_dir"),
                        "shadowed": dist.get("shadowed", False),
                        "files": [
                            f["path"] if isinstance(f, dict) else f for f in dist.get("files", [])
                        ],
                    }
                    for dist in interp.info.get("distributions", [])
                ],
            }
            for interp in capture.interpreters
        ],
        "kernels": [
            {
                "name": k.name,
                "resource_dir": k.resource_dir,
                "files": [e.to_json() for e in k.tree.entries],
            }
            for k in capture.kernels
        ],
        "config": [
            {"dir": c.dir, "files": [e.to_json() for e in c.tree.entries]} for c in capture.config
        ],
        "kernel_dirs": kernel_dirs(),
        "config_dirs": config_dirs(capture),
    }


# -- secrets of redacted files -------------------------------------------------------------

_MARKER_JSON = json.dumps(REDACTION_MARKER).encode()


def _assignments(tree: ast.AST) -> Iterator[tuple[str, ast.expr]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                yield ast.unparse(target), node.value
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and node.value is not None:
            yield ast.unparse(node.target), node.value


def _byte_span(starts: list[int], node: ast.expr) -> tuple[int, int]:
    end_line = node.end_lineno or node.lineno
    end_col = node.end_col_offset if node.end_col_offset is not None else node.col_offset
    return starts[node.lineno - 1] + node.col_offset, starts[end_line - 1] + end_col


def _line_starts(data: bytes) -> list[int]:
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _python_secrets(stored: bytes, live: bytes) -> bytes:
    """Put the live file's values back into the stored file's redacted assignments."""
    stored_tree, live_tree = ast.parse(stored), ast.parse(live)
    live_starts = _line_starts(live)
    values: dict[str, list[bytes]] = {}
    for name, value in _assignments(live_tree):
        start, end = _byte_span(live_starts, value)
        values.setdefault(name, []).append(live[start:end])
    seen: dict[str, int] = {}
    spans: list[tuple[int, int, bytes]] = []
    stored_starts = _line_starts(stored)
    for name, value in _assignments(stored_tree):
        occurrence = seen.get(name, 0)
        seen[name] = occurrence + 1
        redacted = any(
            isinstance(n, ast.Constant) and n.value in (REDACTION_MARKER, REDACTION_MARKER.encode())
            for n in ast.walk(value)
        )
        candidates = values.get(name, [])
        if redacted and candidates:
            replacement = candidates[min(occurrence, len(candidates) - 1)]
            start, end = _byte_span(stored_starts, value)
            spans.append((start, end, replacement))
    out = bytearray(stored)
    for start, end, replacement in sorted(spans, reverse=True):
        out[start:end] = replacement
    return bytes(out)


def _json_marker_values(stored: Any, live: Any) -> Iterator[Any]:
    """For each redaction marker of ``stored`` in document order, the live value (or None)."""
    if isinstance(stored, str):
        if stored == REDACTION_MARKER:
            yield live if isinstance(live, str) and live != REDACTION_MARKER else None
    elif isinstance(stored, dict):
        for key, value in stored.items():
            yield from _json_marker_values(value, live.get(key) if isinstance(live, dict) else None)
    elif isinstance(stored, list):
        for i, value in enumerate(stored):
            other = live[i] if isinstance(live, list) and i < len(live) else None
            yield from _json_marker_values(value, other)


def _json_secrets(stored: bytes, live: bytes) -> bytes:
    """Put the live values back where the stored JSON says ``<redacted-by-westtek>``.

    Done on the text, marker by marker in document order, so the stored formatting stays.
    """
    values = list(_json_marker_values(json.loads(stored), json.loads(live)))
    pieces = stored.split(_MARKER_JSON)
    if len(pieces) != len(values) + 1:
        return stored
    out = [pieces[0]]
    for value, piece in zip(values, pieces[1:], strict=True):
        out.append(
            _MARKER_JSON if value is None else json.dumps(value, ensure_ascii=False).encode()
        )
        out.append(piece)
    return b"".join(out)


def with_live_secrets(path: str, stored: bytes, live: bytes | None) -> bytes:
    """The stored (redacted) content of a config file with the live file's secrets put back.

    When the live file differs from the stored one only in its secrets, the live content
    is the answer. Otherwise each redacted value takes the live file's value of the same
    setting; a setting the live file lacks keeps ``<redacted-by-westtek>``.
    """
    if live is None:
        return stored
    redacted = redact_config(path, live)
    if redacted is not None and redacted[0] == stored:
        return live
    try:
        if path.endswith(".py"):
            return _python_secrets(stored, live)
        return _json_secrets(stored, live)
    except (SyntaxError, ValueError, RecursionError):
        return stored


# -- applying steps ------------------------------------------------------------------------


@dataclass(frozen=True)
class RollbackProgress:
    """How far a rollback has got: steps done of all, and the step just done."""

    done: int
    total: int
    step: RollbackStep


ProgressCallback = Callable[[RollbackProgress], None]


def _check_inside(path: Path, root: str) -> None:
    """Refuse to write where a symlink would lead out of ``root``."""
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    if not is_within(real, real_root):
        raise RollbackError(f"refusing to write {path}: it leads outside {root}")


def _remove_path(path: Path) -> bool:
    if path.is_symlink() or path.is_file():
        path.unlink()
        return True
    if path.is_dir():
        shutil.rmtree(path)
        return True
    return False


def _prune_empty_dirs(paths: Iterable[Path], root: str, stop: Collection[str] = ()) -> None:
    """Remove directories left empty below ``root``, walking up; never ``root`` or ``stop``."""
    for start in sorted({p.parent for p in paths}, key=lambda p: -len(p.parts)):
        current = start
        while str(current) != root and str(current) not in stop and is_within(str(current), root):
            try:
                current.rmdir()
            except OSError:
                break
            current = current.parent


class _Applier:
    """Applies steps to the live environment from the target manifest's stored files."""

    def __init__(
        self, repo: Repository, target: Mapping[str, Any], live: Mapping[str, Any]
    ) -> None:
        self.repo = repo
        self.target = target
        self.live = live
        self.notes: list[str] = []
        self._owners: dict[int, dict[str, set[str]]] = {}

    # files

    def _read(self, entry: Mapping[str, Any]) -> bytes:
        size = int(entry.get("stored_size", entry.get("size", 0)))
        content = FileContent(size=size, chunks=tuple(entry.get("content") or ()))
        return b"".join(self.repo.iter_file(content))

    def _write_entry(
        self, entry: Mapping[str, Any], dest: Path, root: str, data: bytes | None = None
    ) -> None:
        kind = entry.get("kind")
        dest.parent.mkdir(parents=True, exist_ok=True)
        _check_inside(dest.parent, root)
        mtime = int(entry.get("mtime_ns", 0))
        mode = int(entry.get("mode", 0o644)) & 0o7777 & ~_UNSAFE_MODE_BITS
        if kind == "dir":
            if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
                dest.unlink()
            dest.mkdir(exist_ok=True)
            os.chmod(dest, mode)
            return
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        if kind == "symlink":
            if dest.is_symlink() or dest.exists():
                dest.unlink()
            os.symlink(str(entry.get("link_target") or ""), dest)
            os.utime(dest, ns=(mtime, mtime), follow_symlinks=False)
            return
        # written beside, then renamed: an interruption never leaves a truncated file
        tmp = dest.with_name(f".{dest.name}.westtek-rollback")
        try:
            with open(tmp, "wb") as out:
                if data is not None:
                    out.write(data)
                else:
                    size = int(entry.get("size", 0))
                    for block in self.repo.iter_file(
                        FileContent(size=size, chunks=tuple(entry.get("content") or ()))
                    ):
                        out.write(block)
            os.chmod(tmp, mode)
            os.utime(tmp, ns=(mtime, mtime))
            tmp.replace(dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _write_config_like(
        self, entry: Mapping[str, Any], dest: Path, root: str, label: str
    ) -> None:
        """Write a kernel or config file, putting live secrets back into redacted copies."""
        if "stored_size" not in entry or entry.get("kind") != "file":
            self._write_entry(entry, dest, root)
            return
        live = dest.read_bytes() if dest.is_file() else None
        data = with_live_secrets(dest.name, self._read(entry), live)
        if REDACTION_MARKER.encode() in data:
            self.notes.append(f"{label}: written with its secrets redacted; set them again")
        self._write_entry(entry, dest, root, data)

    # packages

    def _interp(self, step: RollbackStep) -> Mapping[str, Any]:
        assert step.interpreter is not None
        return dict(self.target["interpreters"][step.interpreter])

    def _target_owners(self, index: int) -> dict[str, set[str]]:
        """Prefix-relative path → the target distributions that own it."""
        if index not in self._owners:
            interp = self.target["interpreters"][index]
            tree_index = _tree_index(interp)
            owners: dict[str, set[str]] = {}
            for package in interp.get("packages", []):
                try:
                    entries, _ = distribution_entries(interp, package, tree_index)
                except NotRestorable:
                    continue
                for entry in entries:
                    owners.setdefault(str(entry["path"]), set()).add(
                        canonicalize_name(str(package["name"]))
                    )
            self._owners[index] = owners
        return self._owners[index]

    def _remove_distribution(self, step: RollbackStep) -> None:
        interp = self._interp(step)
        prefix = posixpath.normpath(str(interp["prefix"]))
        current = _live_interpreter(interp, self.live)
        name = canonicalize_name(step.name)
        dist = _first_by_name(current.get("packages", []) if current else []).get(name)
        if dist is None:
            return  # already gone (a resumed step)
        assert step.interpreter is not None
        owners = self._target_owners(step.interpreter)
        location = str(dist.get("location") or "")
        removed: list[Path] = []
        if not dist.get("files"):
            self.notes.append(f"{step.name} has no RECORD: only its metadata was removed")
        for record_path in dist.get("files", []):
            path = posixpath.normpath(posixpath.join(location, str(record_path)))
            if not is_within(path, prefix):
                self.notes.append(f"{step.name}: {path} is outside {prefix}; not removed")
                continue
            if owners.get(posixpath.relpath(path, prefix), {name}) - {name}:
                continue  # another distribution of the target owns it too
            target = Path(path)
            if target.is_symlink() or target.is_file():
                target.unlink()
                removed.append(target)
            if path.endswith(".py"):
                cache = target.parent / "__pycache__"
                for compiled in cache.glob(f"{target.stem}.*.pyc") if cache.is_dir() else ():
                    compiled.unlink()
                    removed.append(compiled)
        metadata_dir = posixpath.normpath(str(dist.get("metadata_dir") or ""))
        if (
            metadata_dir.startswith("/")
            and is_within(metadata_dir, prefix)
            and metadata_dir != prefix
        ):
            if _remove_path(Path(metadata_dir)):
                removed.append(Path(metadata_dir) / "RECORD")
        paths = interp.get("paths") or {}
        stop = {posixpath.normpath(str(p)) for p in paths.values() if p}
        stop |= {posixpath.join(prefix, top) for top in ("bin", "lib", "include", "share", "etc")}
        _prune_empty_dirs(removed, prefix, stop)
        # the live description now lacks it: a later step must not see it again
        if current is not None:
            current["packages"] = [
                p for p in current.get("packages", []) if canonicalize_name(str(p["name"])) != name
            ]
            self._replace_live_interpreter(current)

    def _replace_live_interpreter(self, updated: Mapping[str, Any]) -> None:
        interpreters = [
            updated if i.get("path") == updated.get("path") else i
            for i in self.live.get("interpreters", [])
        ]
        self.live = {**self.live, "interpreters": interpreters}

    def _install_distribution(self, step: RollbackStep) -> None:
        interp = self._interp(step)
        prefix = posixpath.normpath(str(interp["prefix"]))
        package = _first_by_name(interp.get("packages", []))[canonicalize_name(step.name)]
        try:
            entries, _ = distribution_entries(interp, package)
        except NotRestorable as e:
            raise RollbackError(f"{step.name} cannot be restored: {e}") from None
        # metadata last: a half-written distribution is invisible to importlib.metadata
        entries.sort(key=lambda e: ".dist-info/" in str(e["path"]))
        for entry in entries:
            self._write_entry(entry, Path(prefix, str(entry["path"])), prefix)

    def _restore_prefix(self, step: RollbackStep) -> None:
        interp = self._interp(step)
        prefix = posixpath.normpath(str(interp["prefix"]))
        Path(prefix).mkdir(parents=True, exist_ok=True)
        entries = list((interp.get("prefix_tree") or {}).get("files", []))
        order = {"dir": 0, "file": 1, "symlink": 2}
        for entry in sorted(entries, key=lambda e: order.get(str(e.get("kind")), 3)):
            self._write_entry(entry, Path(prefix, str(entry["path"])), prefix)

    # kernels and config

    def _kernel(self, step: RollbackStep) -> None:
        present = next((k for k in self.live.get("kernels", []) if k["name"] == step.name), None)
        if step.action == "remove":
            if posixpath.dirname(step.where) not in _normal_dirs(self.live.get("kernel_dirs", [])):
                raise RollbackError(f"kernel {step.name}: {step.where} is not a kernelspec dir")
            _remove_path(Path(step.where))
            return
        kernel = next(k for k in self.target.get("kernels", []) if k["name"] == step.name)
        where = _check_kernel_dir(kernel, _normal_dirs(self.live.get("kernel_dirs", [])))
        wanted = {str(e["path"]) for e in kernel.get("files", [])}
        if present is not None and posixpath.normpath(str(present["resource_dir"])) == where:
            for entry in sorted(present.get("files", []), key=lambda e: -len(str(e["path"]))):
                if str(entry["path"]) not in wanted:
                    _remove_path(Path(where, str(entry["path"])))
        files = sorted(kernel.get("files", []), key=lambda e: e.get("kind") != "dir")
        for entry in files:
            dest = Path(where, str(safe_relative_path(str(entry["path"]))))
            self._write_config_like(entry, dest, where, f"kernel {step.name}/{entry['path']}")

    def _config(self, step: RollbackStep) -> None:
        dest = Path(step.where, str(safe_relative_path(step.name)))
        if step.action == "remove":
            _check_inside(dest.parent, step.where)
            if dest.is_symlink() or dest.is_file():
                dest.unlink()  # its directory stays: config dirs are the user's layout
            return
        entry = next(
            e
            for c in self.target.get("jupyter", {}).get("config", [])
            if posixpath.normpath(str(c.get("dir"))) == step.where
            for e in c.get("files", [])
            if str(e["path"]) == step.name
        )
        self._write_config_like(entry, dest, step.where, f"config {step.where}/{step.name}")

    def apply(self, step: RollbackStep) -> None:
        """Carry out one step; safe to repeat after an interruption."""
        if step.area == "packages":
            if step.action == "restore-prefix":
                self._restore_prefix(step)
                return
            if step.action in ("remove", "replace"):
                self._remove_distribution(step)
            if step.action in ("install", "replace"):
                self._install_distribution(step)
        elif step.area == "kernels":
            self._kernel(step)
        else:
            self._config(step)


# -- the journal ---------------------------------------------------------------------------


def journal_dir() -> Path:
    """Where rollback journals are kept: ``<data dir>/rollbacks``."""
    from westtek_core.paths import data_dir

    return data_dir() / "rollbacks"


@dataclass
class Journal:
    """A rollback's durable record: its plan, each step's state, the safety snapshot.

    ``state`` is ``running`` (steps left; resumable), ``failed`` (an error stopped it;
    resumable), ``done`` or ``undone`` (a later undo put the safety snapshot back).
    """

    path: Path
    data: dict[str, Any]

    @property
    def id(self) -> str:
        """The rollback's id (the journal's file name)."""
        return str(self.data["id"])

    @property
    def steps(self) -> list[RollbackStep]:
        """The plan's steps, in order."""
        return [RollbackStep.from_json(s) for s in self.data["steps"]]

    @property
    def finished(self) -> bool:
        """True once every step is done (or the rollback was undone)."""
        return self.data.get("state") in ("done", "undone")

    def save(self) -> None:
        """Replace the journal file atomically."""
        self.data["updated"] = _now()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)

    def mark(self, index: int, state: str) -> None:
        """Record one step's state and save."""
        self.data["steps"][index]["state"] = state
        self.save()

    @classmethod
    def load(cls, path: Path) -> Journal:
        """Read a journal file."""
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise RollbackError(f"cannot read rollback journal {path}: {e}") from None
        if not isinstance(data, dict) or data.get("format") != JOURNAL_FORMAT:
            raise RollbackError(f"{path} is not a rollback journal this version reads")
        return cls(path, data)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def journals(repo: Repository) -> list[Journal]:
    """The rollback journals of ``repo``'s store, oldest first."""
    found = []
    directory = journal_dir()
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            journal = Journal.load(path)
        except RollbackError:
            continue
        if journal.data.get("store_id") == repo.id:
            found.append(journal)
    return sorted(found, key=lambda j: str(j.data.get("started")))


def unfinished_journal(repo: Repository) -> Journal | None:
    """The latest of this store's rollbacks that has steps left, if any."""
    pending = [j for j in journals(repo) if not j.finished]
    return pending[-1] if pending else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _refuse_if_busy(journal: Journal) -> None:
    """Refuse a journal another live process on this host is applying."""
    pid = journal.data.get("pid")
    same_host = journal.data.get("host") == socket.gethostname()
    if (
        journal.data.get("state") == "running"
        and isinstance(pid, int)
        and pid != os.getpid()
        and same_host
        and _pid_alive(pid)
    ):
        raise RollbackError(f"rollback {journal.id} is being applied by process {pid}")


def _claim(journal: Journal) -> None:
    """Make this process the one applying ``journal``."""
    _refuse_if_busy(journal)
    journal.data.update(pid=os.getpid(), host=socket.gethostname(), state="running")
    journal.data.pop("error", None)
    journal.save()


# -- the report and the orchestration ------------------------------------------------------


@dataclass
class RollbackReport:
    """What a rollback did: its steps, the safety snapshot, and the drift left afterwards.

    ``drift`` holds only the changes of the areas rolled back (the workspace is never
    touched); ``status`` is its status.
    """

    id: str | None
    kind: str
    target: str
    only: tuple[str, ...]
    safety_snapshot: str | None
    steps: list[dict[str, Any]]
    notes: list[str]
    drift: DriftReport
    resumed: bool = False
    journal: str | None = None

    @property
    def status(self) -> str:
        """The drift status of the rolled-back areas against the target."""
        return self.drift.status.value

    @property
    def steps_done(self) -> int:
        """How many steps are done."""
        return sum(1 for s in self.steps if s.get("state") == "done")

    def to_json(self) -> dict[str, Any]:
        """The ``rollback --json`` output."""
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "only": list(self.only),
            "safety_snapshot": self.safety_snapshot,
            "resumed": self.resumed,
            "steps_done": self.steps_done,
            "steps_total": len(self.steps),
            "steps": self.steps,
            "notes": self.notes,
            "status": self.status,
            "drift": self.drift.to_json(),
            "journal": self.journal,
        }


def _restricted(target: Mapping[str, Any], pythons: Sequence[str]) -> dict[str, Any]:
    """The target with only the interpreters being rolled back (what drift compares)."""
    chosen = [interp for _, interp in _target_interpreters(target, pythons)]
    return {**target, "interpreters": chosen}


def _final_drift(
    target: Mapping[str, Any], pythons: Sequence[str], root: Path, areas: Sequence[str]
) -> DriftReport:
    from westtek_core.drift import capture_live, detect_drift

    report = detect_drift(capture_live(pythons, root), _restricted(target, pythons), root)
    kinds = frozenset().union(*(AREA_DRIFT_KINDS[a] for a in areas))
    return DriftReport(report.baseline, [c for c in report.changes if c.kind in kinds])


def _apply(
    repo: Repository,
    journal: Journal,
    target: Mapping[str, Any],
    capture: Capture,
    progress: ProgressCallback | None,
) -> None:
    pythons = list(journal.data["pythons"])
    applier = _Applier(repo, target, live_state(capture, pythons))
    steps = journal.steps
    _claim(journal)
    try:
        for index, step in enumerate(steps):
            if journal.data["steps"][index].get("state") == "done":
                continue
            applier.apply(step)
            journal.mark(index, "done")
            if progress is not None:
                done = sum(1 for s in journal.data["steps"] if s.get("state") == "done")
                progress(RollbackProgress(done, len(steps), step))
    except BaseException as e:
        journal.data["state"] = "failed"
        journal.data["error"] = f"{type(e).__name__}: {e}"
        _add_notes(journal, applier.notes)
        raise
    journal.data["state"] = "done"
    _add_notes(journal, applier.notes)


def _add_notes(journal: Journal, notes: Iterable[str]) -> None:
    # a step redone on resume says the same again: keep each note once
    journal.data["notes"] = list(dict.fromkeys([*journal.data.get("notes", []), *notes]))
    journal.save()


def _finish(
    repo: Repository,
    journal: Journal,
    target: Mapping[str, Any],
    root: Path,
    *,
    resumed: bool,
    progress: ProgressCallback | None,
) -> RollbackReport:
    from westtek_core.drift import capture_live

    pythons = list(journal.data["pythons"])
    _apply(repo, journal, target, capture_live(pythons, root), progress)
    if journal.data.get("kind") == "undo" and journal.data.get("undoes"):
        undone = journal_dir() / f"{journal.data['undoes']}.json"
        if undone.exists():
            _mark_undone(Journal.load(undone), journal.id)
    areas = tuple(journal.data["only"])
    drift = _final_drift(target, pythons, root, areas)
    journal.data["status"] = drift.status.value
    journal.save()
    return RollbackReport(
        id=journal.id,
        kind=str(journal.data.get("kind", "rollback")),
        target=str(target["id"]),
        only=areas,
        safety_snapshot=journal.data.get("safety_snapshot"),
        steps=[dict(s) for s in journal.data["steps"]],
        notes=list(journal.data.get("notes", [])),
        drift=drift,
        resumed=resumed,
        journal=str(journal.path),
    )


def _new_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def _start(
    repo: Repository,
    target: Mapping[str, Any],
    pythons: Sequence[str],
    root: Path,
    areas: tuple[str, ...],
    progress: ProgressCallback | None,
    *,
    kind: str = "rollback",
    undoes: str | None = None,
    expected_plan: str | None = None,
) -> RollbackReport:
    from westtek_core.snapshot import create_snapshot

    capture, plan = _live_plan(target, pythons, root, areas)
    if expected_plan is not None and plan.fingerprint != expected_plan:
        raise RollbackError(
            "the environment changed since the rollback was previewed: "
            "review the new preview and confirm again"
        )
    if not plan.steps:
        drift = _final_drift(target, pythons, root, areas)
        return RollbackReport(None, kind, str(target["id"]), areas, None, [], plan.notes, drift)
    rollback_id = _new_id()
    safety = create_snapshot(
        repo,
        capture,
        note=f"safety snapshot before rollback {rollback_id} to {str(target['id'])[:12]}",
        labels={SAFETY_LABEL: "safety", f"{SAFETY_LABEL}.id": rollback_id},
        environment_id=str(target.get("environment_id") or "") or None,
    )
    journal = Journal(
        journal_dir() / f"{rollback_id}.json",
        {
            "format": JOURNAL_FORMAT,
            "id": rollback_id,
            "kind": kind,
            "undoes": undoes,
            "store_id": repo.id,
            "store": repo.backend.url,
            "target": str(target["id"]),
            "safety_snapshot": safety.id,
            "only": list(areas),
            "pythons": list(pythons),
            "root": str(Path(root).absolute()),
            "started": _now(),
            "state": "running",
            "notes": list(plan.notes),
            "unchanged": plan.unchanged,
            "steps": [{**s.to_json(), "state": "pending"} for s in plan.steps],
        },
    )
    journal.save()
    return _finish(repo, journal, target, root, resumed=False, progress=progress)


def _live_plan(
    target: Mapping[str, Any], pythons: Sequence[str], root: Path, areas: tuple[str, ...]
) -> tuple[Capture, RollbackPlan]:
    """Capture the live environment and plan the rollback from it."""
    from westtek_core.capture import capture_environment

    present = [p for p in pythons if Path(p).exists()]
    capture = capture_environment(present, root)
    return capture, plan_rollback(target, live_state(capture, pythons), areas)


def preview_rollback(
    repo: Repository,
    target_id: str,
    pythons: Sequence[str] | None,
    root: Path,
    only: Collection[str] | None = None,
) -> RollbackPlan:
    """What :func:`run_rollback` with the same arguments would do now; changes nothing.

    Pass the plan's ``fingerprint`` to ``run_rollback(expected_plan=...)`` so that what is
    applied is exactly what was previewed.
    """
    areas = _areas(only)
    target = _load_target(repo, target_id)
    chosen = [str(i.get("path")) for _, i in _target_interpreters(target, pythons)]
    return _live_plan(target, chosen, Path(root), areas)[1]


def _load_target(repo: Repository, snapshot_id: str) -> dict[str, Any]:
    from westtek_core.snapshot import load_snapshot

    return load_snapshot(repo, snapshot_id)


def run_rollback(
    repo: Repository,
    target_id: str,
    pythons: Sequence[str] | None,
    root: Path,
    only: Collection[str] | None = None,
    progress: ProgressCallback | None = None,
    expected_plan: str | None = None,
) -> RollbackReport:
    """Roll the live environment back to snapshot ``target_id``, in place.

    ``pythons`` are the target's interpreters to roll back (None: all of them); ``root``
    is the workspace (captured by the safety snapshot, never changed). When this store has
    an unfinished rollback to the same snapshot and areas, it is resumed; an unfinished
    rollback to anything else must be resumed or undone first. ``expected_plan`` (a
    preview's fingerprint) refuses to start when the plan is no longer the one previewed.
    """
    areas = _areas(only)
    target = _load_target(repo, target_id)
    pending = unfinished_journal(repo)
    if pending is not None:
        same = pending.data.get("target") == target["id"] and tuple(pending.data["only"]) == areas
        if same and pending.data.get("kind") == "rollback":
            return resume_rollback(repo, pending.id, progress=progress)
        raise RollbackError(
            f"rollback {pending.id} to {str(pending.data.get('target'))[:12]} is unfinished: "
            "finish it with `westtek rollback --resume` or undo it with `westtek rollback --undo`"
        )
    chosen = [str(i.get("path")) for _, i in _target_interpreters(target, pythons)]
    return _start(repo, target, chosen, Path(root), areas, progress, expected_plan=expected_plan)


def resume_rollback(
    repo: Repository, rollback_id: str | None = None, progress: ProgressCallback | None = None
) -> RollbackReport:
    """Carry on an unfinished rollback (the latest one of this store when no id is given)."""
    if rollback_id is None:
        journal = unfinished_journal(repo)
        if journal is None:
            raise RollbackError("no unfinished rollback of this store to resume")
    else:
        journal = Journal.load(journal_dir() / f"{rollback_id}.json")
        if journal.finished:
            raise RollbackError(f"rollback {rollback_id} is already {journal.data['state']}")
    target = _load_target(repo, str(journal.data["target"]))
    root = Path(str(journal.data["root"]))
    return _finish(repo, journal, target, root, resumed=True, progress=progress)


def undo_rollback(
    repo: Repository, rollback_id: str | None = None, progress: ProgressCallback | None = None
) -> RollbackReport:
    """Put back the safety snapshot of a rollback (the latest one of this store by default).

    Only the latest rollback is undone by default: undoing further back is a rollback to
    an older safety snapshot (``run_rollback`` with its id), chosen knowingly.

    The undo is itself a rollback with a journal (and its own safety snapshot), so an
    interrupted undo resumes like any other; once it is done the undone rollback is marked
    ``undone``.
    """
    pending = unfinished_journal(repo)
    if pending is not None and pending.data.get("kind") == "undo":
        return resume_rollback(repo, pending.id, progress=progress)
    candidates = [j for j in journals(repo) if j.data.get("kind") == "rollback"]
    if rollback_id is not None:
        candidates = [j for j in candidates if j.id == rollback_id]
    if not candidates:
        raise RollbackError("no rollback of this store to undo")
    original = candidates[-1]
    if original.data.get("state") == "undone":
        raise RollbackError(f"rollback {original.id} is undone already")
    _refuse_if_busy(original)
    target = _load_target(repo, str(original.data["safety_snapshot"]))
    areas = tuple(original.data["only"])
    pythons = list(original.data["pythons"])
    root = Path(str(original.data["root"]))
    report = _start(repo, target, pythons, root, areas, progress, kind="undo", undoes=original.id)
    if report.id is None:  # nothing to change: the environment is the safety snapshot already
        _mark_undone(original, "")
    return report


def _mark_undone(original: Journal, by: str) -> None:
    original.data["state"] = "undone"
    original.data["undone_by"] = by or None
    original.save()
