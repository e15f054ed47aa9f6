"""The rollback plan: what turns the live environment back into a snapshot, as a value.

Everything here is pure (no I/O): a target manifest and a description of the live
environment (``run.live_state``'s shape) go in, a :class:`RollbackPlan` comes out, with its
steps in order (removals first), what stays as it is, and what cannot be done safely.
Every path a snapshot names must stay inside its interpreter prefix, a Jupyter kernels
directory or a Jupyter config directory; a manifest that says otherwise raises
:class:`RollbackError` before anything changes. A plan's :attr:`~RollbackPlan.fingerprint`
ties a confirmed preview to the rollback that is applied.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from westtek_core.areas import AREAS
from westtek_core.capture import is_lab_layout
from westtek_core.paths import is_within
from westtek_core.snapshot.manifest import ManifestError, first_by_name, safe_relative_path

# Which kinds of drift-report change each area puts right.
AREA_DRIFT_KINDS: dict[str, frozenset[str]] = {
    "packages": frozenset({"interpreter", "package"}),
    "kernels": frozenset({"kernel"}),
    "config": frozenset({"config"}),
}
# The distribution that is running this rollback: never removed from under itself.
SELF_DISTRIBUTION = "westtek"


class RollbackError(Exception):
    """A rollback that cannot start or go on; ``str()`` is one clear line for the CLI."""


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


def chosen_areas(only: Collection[str] | None) -> tuple[str, ...]:
    """The areas a rollback limited to ``only`` covers, in plan order (all when empty)."""
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


def prefix_tree_index(interp: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """A snapshot interpreter's prefix-tree entries by prefix-relative path."""
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
    index = prefix_tree_index(interp) if index is None else index
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


def target_interpreters(
    target: Mapping[str, Any], wanted: Sequence[str] | None
) -> list[tuple[int, Mapping[str, Any]]]:
    """The target's interpreters (with their index) named by ``wanted``; all when None."""
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


def live_interpreter(interp: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any] | None:
    """The live description's interpreter at the path of the snapshot's ``interp`` (a copy)."""
    for candidate in live.get("interpreters", []):
        if candidate.get("path") in (interp.get("path"), interp.get("executable")):
            return dict(candidate)
    return None


def _plan_packages(target: Mapping[str, Any], live: Mapping[str, Any], plan: RollbackPlan) -> None:
    removals: list[RollbackStep] = []
    writes: list[RollbackStep] = []
    for index, interp in target_interpreters(target, live.get("pythons")):
        python = str(interp.get("path"))
        prefix = posixpath.normpath(str(interp.get("prefix") or ""))
        current = live_interpreter(interp, live)
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
        tree_index = prefix_tree_index(interp)
        wanted = first_by_name(interp.get("packages", []))
        present = first_by_name(current.get("packages", []))
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


def normal_dirs(dirs: Iterable[str]) -> set[str]:
    """The absolute directories of ``dirs``, normalised (relative ones are ignored)."""
    return {posixpath.normpath(d) for d in dirs if str(d).startswith("/")}


def checked_kernel_dir(kernel: Mapping[str, Any], kernel_dirs: set[str]) -> str:
    """A snapshot kernelspec's directory, refused unless it is one of ``kernel_dirs``'s."""
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
    kernel_dirs = normal_dirs(live.get("kernel_dirs", []))
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
        where = checked_kernel_dir(new, kernel_dirs)
        action = "install" if old is None else "replace"
        if old is not None and posixpath.normpath(str(old.get("resource_dir"))) != where:
            action = "install"  # another dir of the search path shadows it now; write ours
        plan.steps.append(RollbackStep("kernels", action, name, where))


def _plan_config(target: Mapping[str, Any], live: Mapping[str, Any], plan: RollbackPlan) -> None:
    allowed = normal_dirs(live.get("config_dirs", []))
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

    ``live`` is ``run.live_state``'s shape: the live interpreters (path, prefix, packages
    with location and RECORD paths), kernels and config files (stat entries), the kernels
    and config directories where writing is allowed, ``pythons`` (which of the target's
    interpreters to roll back; all when absent) and ``self_prefix``. Unsafe paths in the
    target raise :class:`RollbackError`; what cannot be done safely is left as it is and
    named in ``notes``.
    """
    areas = chosen_areas(only)
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
