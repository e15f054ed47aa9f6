"""What changed in a package's public API between two versions, and which notebook calls it.

The Drift Analyzer's changelog works offline: instead of fetching release notes, it reads
the two versions' *source* (from snapshots in the store, or from the live environment) and
compares their public APIs with ``ast``: functions, classes, methods and properties that
were removed, moved, deprecated, or whose signature changed (parameters removed, renamed,
made keyword-only, new required ones, defaults changed). It then walks the workspace's
notebooks, resolving ``import pkg as p`` / ``from pkg.mod import f`` / ``x = pkg.C()``
aliases cell by cell, to name the changed items each notebook actually uses, at which cell.

Nothing is imported or executed: a package that no longer imports, or one for another
platform, is analysed the same way.
"""

from __future__ import annotations

import ast
import json
import logging
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from westtek_core.notebook_imports import CHECKPOINT_DIR, clean_ipython, module_of_record_path

log = logging.getLogger(__name__)

# A package's source beyond this is not read: the largest scientific packages stay below.
MAX_SOURCE_FILES = 4000
MAX_SOURCE_BYTES = 2 * 1024 * 1024
_MAX_RESOLVE_DEPTH = 8
_DEFAULT_CHARS = 40


# ---------------------------------------------------------------------------------------------
# A package version's source
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One parameter of a signature."""

    name: str
    kind: str  # positional-only | positional | var-positional | keyword-only | var-keyword
    default: str | None = None  # the default's source; None when the parameter is required


@dataclass(frozen=True)
class ApiItem:
    """A public function, class, method or property of one version."""

    name: str
    """The public dotted path, e.g. ``pkg.stats.ttest``."""
    kind: str  # function | class | method | property
    params: tuple[Param, ...] | None
    """None when the signature is unknown (a class without its own ``__init__``)."""
    definition: str
    """Where it is defined, ``module:qualname``: the same object under several paths."""
    path: str
    line: int
    deprecated: bool = False

    @property
    def signature(self) -> str:
        """The signature as Python would print it (``(x, /, y=0, *, axis=None)``)."""
        if self.params is None:
            return "(…)"
        return format_params(self.params)

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "signature": self.signature,
            "defined_in": self.path,
            "line": self.line,
            "deprecated": self.deprecated,
        }


def format_params(params: Sequence[Param]) -> str:
    """Render parameters as a signature."""
    out: list[str] = []
    star_done = False
    previous = ""
    for param in params:
        if previous == "positional-only" and param.kind != "positional-only":
            out.append("/")
        if param.kind == "keyword-only" and not star_done:
            out.append("*")
            star_done = True
        prefix = {"var-positional": "*", "var-keyword": "**"}.get(param.kind, "")
        if param.kind == "var-positional":
            star_done = True
        text = prefix + param.name
        if param.default is not None:
            text += "=" + param.default
        out.append(text)
        previous = param.kind
    if previous == "positional-only":
        out.append("/")
    return "(" + ", ".join(out) + ")"


def _default_text(node: ast.expr) -> str:
    text = ast.unparse(node)
    return text if len(text) <= _DEFAULT_CHARS else text[: _DEFAULT_CHARS - 1] + "…"


def _params(args: ast.arguments, drop_first: bool) -> tuple[Param, ...]:
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults += list(args.defaults)
    params: list[Param] = []
    for index, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        kind = "positional-only" if index < len(args.posonlyargs) else "positional"
        params.append(Param(arg.arg, kind, _default_text(default) if default else None))
    if args.vararg:
        params.append(Param(args.vararg.arg, "var-positional"))
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        params.append(
            Param(arg.arg, "keyword-only", _default_text(kw_default) if kw_default else None)
        )
    if args.kwarg:
        params.append(Param(args.kwarg.arg, "var-keyword"))
    if drop_first and params and params[0].kind in ("positional-only", "positional"):
        params = params[1:]
    return tuple(params)


def _decorator_names(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> list[str]:
    names = []
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        names.append(ast.unparse(target))
    return names


_DEPRECATION_WARNINGS = ("DeprecationWarning", "FutureWarning", "PendingDeprecationWarning")


def _is_deprecated(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> bool:
    if any("deprecat" in name.lower() for name in _decorator_names(node)):
        return True
    docstring = ast.get_docstring(node) or ""
    if ".. deprecated::" in docstring or re.search(r"^\s*Deprecated\b", docstring, re.M | re.I):
        return True
    body = node.body[:4] if not isinstance(node, ast.ClassDef) else []
    for statement in body:
        for call in ast.walk(statement):
            if isinstance(call, ast.Call) and ast.unparse(call.func).endswith("warn"):
                if any(w in ast.unparse(call) for w in _DEPRECATION_WARNINGS):
                    return True
    return False


def _dataclass_params(node: ast.ClassDef) -> tuple[Param, ...]:
    params = []
    for statement in node.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            if "ClassVar" in ast.unparse(statement.annotation):
                continue
            default = _default_text(statement.value) if statement.value is not None else None
            params.append(Param(statement.target.id, "positional", default))
    return tuple(params)


@dataclass
class _ModuleInfo:
    """What one module defines and imports, before re-exports are resolved."""

    name: str
    path: str
    defs: dict[str, list[ApiItem]] = field(default_factory=dict)  # name → the def and members
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)  # name → (module, name)
    star_imports: list[str] = field(default_factory=list)
    all_names: list[str] | None = None


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    parts = module.split(".")
    keep = len(parts) - (level - 1 if is_package else level)
    base = parts[: max(keep, 0)]
    return ".".join([*base, *([target] if target else [])])


def _literal_names(node: ast.expr) -> list[str] | None:
    if isinstance(node, (ast.List, ast.Tuple)):
        names = [e.value for e in node.elts if isinstance(e, ast.Constant)]
        return [n for n in names if isinstance(n, str)]
    return None


def _class_items(
    node: ast.ClassDef, public_name: str, definition: str, path: str
) -> tuple[ApiItem, list[ApiItem]]:
    init: tuple[Param, ...] | None = None
    members: list[ApiItem] = []
    for statement in node.body:
        if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        decorators = _decorator_names(statement)
        if statement.name == "__init__":
            init = _params(statement.args, drop_first=True)
            continue
        if statement.name.startswith("_"):
            continue
        is_property = any(d == "property" or d.endswith(".setter") for d in decorators)
        if any(d.endswith((".setter", ".deleter")) for d in decorators):
            continue
        members.append(
            ApiItem(
                name=f"{public_name}.{statement.name}",
                kind="property" if is_property else "method",
                params=None
                if is_property
                else _params(statement.args, drop_first="staticmethod" not in decorators),
                definition=f"{definition}.{statement.name}",
                path=path,
                line=statement.lineno,
                deprecated=_is_deprecated(statement),
            )
        )
    if init is None and any("dataclass" in d for d in _decorator_names(node)):
        init = _dataclass_params(node)
    item = ApiItem(
        name=public_name,
        kind="class",
        params=init,
        definition=definition,
        path=path,
        line=node.lineno,
        deprecated=_is_deprecated(node),
    )
    return item, members


def _analyse_module(module: str, source: str, path: str, is_package: bool) -> _ModuleInfo:
    info = _ModuleInfo(module, path)
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        log.debug("cannot parse %s", path)
        return info
    top = module.split(".")[0]
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            info.defs[node.name] = [
                ApiItem(
                    name=f"{module}.{node.name}",
                    kind="function",
                    params=_params(node.args, drop_first=False),
                    definition=f"{module}:{node.name}",
                    path=path,
                    line=node.lineno,
                    deprecated=_is_deprecated(node),
                )
            ]
        elif isinstance(node, ast.ClassDef):
            item, members = _class_items(
                node, f"{module}.{node.name}", f"{module}:{node.name}", path
            )
            info.defs[node.name] = [item, *members]
        elif isinstance(node, ast.ImportFrom):
            source_module = (
                _resolve_relative(module, is_package, node.level, node.module)
                if node.level
                else node.module or ""
            )
            if source_module.split(".")[0] != top:
                continue  # only re-exports from inside the package are its API
            for alias in node.names:
                if alias.name == "*":
                    info.star_imports.append(source_module)
                else:
                    info.imports[alias.asname or alias.name] = (source_module, alias.name)
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                names = _literal_names(node.value)
                if names is not None:
                    info.all_names = (
                        (info.all_names or []) + names if isinstance(node, ast.AugAssign) else names
                    )
    return info


def _is_public_module(module: str) -> bool:
    return not any(part.startswith("_") for part in module.split("."))


class _Resolver:
    """Follows re-exports (``from ._core import f``) to the defining module."""

    def __init__(self, infos: Mapping[str, _ModuleInfo]) -> None:
        self.infos = infos

    def lookup(self, module: str, name: str, depth: int = 0) -> list[ApiItem] | None:
        info = self.infos.get(module)
        if info is None or depth > _MAX_RESOLVE_DEPTH:
            return None
        if name in info.defs:
            return info.defs[name]
        if name in info.imports:
            source_module, source_name = info.imports[name]
            return self.lookup(source_module, source_name, depth + 1)
        for star in info.star_imports:
            found = self.lookup(star, name, depth + 1)
            if found is not None and not name.startswith("_"):
                return found
        return None

    def exported(self, module: str, depth: int = 0) -> list[str]:
        info = self.infos[module]
        if info.all_names is not None:
            return list(info.all_names)
        names = [n for n in [*info.defs, *info.imports] if not n.startswith("_")]
        for star in info.star_imports:
            if star in self.infos and depth < _MAX_RESOLVE_DEPTH:
                names += self.exported(star, depth + 1)
        return sorted(set(names))


def _rename(item: ApiItem, old_prefix: str, new_prefix: str) -> ApiItem:
    return ApiItem(
        name=new_prefix + item.name[len(old_prefix) :],
        kind=item.kind,
        params=item.params,
        definition=item.definition,
        path=item.path,
        line=item.line,
        deprecated=item.deprecated,
    )


def public_api(source: PackageSource) -> dict[str, ApiItem]:
    """Every public item of a package version, by the dotted path users reach it through.

    A module is public when no part of its name starts with ``_``; its public names are
    its ``__all__`` when it has one, else its public defs and the names it imports from
    inside the package (re-exports). The same object reached through two public paths
    appears under both (``pkg.f`` and ``pkg.core.f``), with one ``definition``.
    """
    infos = {
        module: _analyse_module(
            module, text, source.paths.get(module, ""), module in source.packages
        )
        for module, text in source.modules.items()
    }
    resolver = _Resolver(infos)
    api: dict[str, ApiItem] = {}
    for module in sorted(infos):
        if not _is_public_module(module):
            continue
        for name in resolver.exported(module):
            items = resolver.lookup(module, name)
            if not items:
                continue
            head = items[0]
            public = f"{module}.{name}"
            prefix = head.name
            for item in items:
                api[public + item.name[len(prefix) :]] = _rename(item, prefix, public)
    return api


def all_paths(source: PackageSource) -> dict[str, str]:
    """Every path (public or private) at which the package defines something → definition."""
    paths: dict[str, str] = {}
    for module, text in source.modules.items():
        info = _analyse_module(
            module, text, source.paths.get(module, ""), module in source.packages
        )
        for items in info.defs.values():
            for item in items:
                paths[item.name] = item.definition
    for name, item in public_api(source).items():
        paths[name] = item.definition
    return paths


# ---------------------------------------------------------------------------------------------
# The API diff
# ---------------------------------------------------------------------------------------------


@dataclass
class ApiChange:
    """One change of the public API from the old version to the new."""

    name: str
    kind: str
    change: str  # removed | signature_changed | deprecated | kind_changed | added
    before: str | None
    after: str | None
    details: list[str] = field(default_factory=list)
    breaking: bool = False
    also: list[str] = field(default_factory=list)
    """Other public paths to the same object, with the same change."""
    definition: str = ""

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "change": self.change,
            "before": self.before,
            "after": self.after,
            "details": self.details,
            "breaking": self.breaking,
            "also": self.also,
        }


def compare_params(old: Sequence[Param], new: Sequence[Param]) -> tuple[list[str], bool]:
    """What changed between two signatures, and whether existing calls can break."""
    details: list[str] = []
    breaking = False
    old_by, new_by = {p.name: p for p in old}, {p.name: p for p in new}
    accepts_any_keyword = any(p.kind == "var-keyword" for p in new)
    accepts_any_positional = any(p.kind == "var-positional" for p in new)
    for param in old:
        if param.name in new_by or param.kind in ("var-positional", "var-keyword"):
            continue
        details.append(f"parameter `{param.name}` removed")
        if not (accepts_any_keyword and param.kind != "positional-only"):
            breaking = True
    for param in new:
        if param.name in old_by or param.kind in ("var-positional", "var-keyword"):
            continue
        if param.default is None:
            details.append(f"new required parameter `{param.name}`")
            breaking = True
        else:
            details.append(f"new optional parameter `{param.name}={param.default}`")
    for old_var in ("var-positional", "var-keyword"):
        had = any(p.kind == old_var for p in old)
        has = any(p.kind == old_var for p in new)
        if had and not has:
            details.append(
                f"no longer accepts {'*args' if old_var == 'var-positional' else '**kwargs'}"
            )
            breaking = True
    old_positional = [p.name for p in old if p.kind in ("positional-only", "positional")]
    new_positional = [p.name for p in new if p.kind in ("positional-only", "positional")]
    common = [n for n in old_positional if n in new_positional]
    if [n for n in new_positional if n in common] != common and not accepts_any_positional:
        details.append(
            "positional order changed: ("
            + ", ".join(old_positional)
            + ") → ("
            + ", ".join(new_positional)
            + ")"
        )
        breaking = True
    for name in (p.name for p in old):
        before, after = old_by[name], new_by.get(name)
        if after is None or before.kind in ("var-positional", "var-keyword"):
            continue
        if before.kind != after.kind:
            details.append(f"`{name}` is now {after.kind} (was {before.kind})")
            if (
                before.kind == "positional" and after.kind in ("keyword-only", "positional-only")
            ) or (before.kind == "keyword-only" and after.kind == "positional-only"):
                breaking = True
        if before.default is not None and after.default is None:
            details.append(f"`{name}` is now required (default was {before.default})")
            breaking = True
        elif before.default is not None and after.default != before.default:
            details.append(f"default of `{name}` changed: {before.default} → {after.default}")
    return details, breaking


def diff_api(old: Mapping[str, ApiItem], new: Mapping[str, ApiItem]) -> list[ApiChange]:
    """Every change from ``old`` to ``new``: removals and breaking changes first.

    A change to one object reachable through several public paths is reported once, under
    its shortest path, the others in ``also``.
    """
    by_definition: dict[tuple[str, str], ApiChange] = {}
    changes: list[ApiChange] = []
    new_by_leaf: dict[tuple[str, str], list[ApiItem]] = {}
    for item in new.values():
        new_by_leaf.setdefault((item.name.rsplit(".", 1)[-1], item.kind), []).append(item)

    def record(key: tuple[str, str], change: ApiChange) -> None:
        existing = by_definition.get(key)
        if existing is None:
            by_definition[key] = change
            changes.append(change)
        elif change.name not in existing.also and change.name != existing.name:
            if len(change.name) < len(existing.name):
                existing.also.append(existing.name)
                existing.name = change.name
            else:
                existing.also.append(change.name)

    moved_to: set[str] = set()
    for name in sorted(old, key=lambda n: (n.count("."), n)):
        before, after = old[name], new.get(name)
        if after is None:
            moved = [
                i.name
                for i in new_by_leaf.get((name.rsplit(".", 1)[-1], before.kind), [])
                if i.params == before.params
            ]
            details = [f"now at `{min(moved, key=len)}`"] if moved else []
            moved_to.update(moved)
            record(
                (before.definition, "removed:" + name),
                ApiChange(
                    name,
                    before.kind,
                    "removed",
                    before.signature,
                    None,
                    details,
                    True,
                    definition=before.definition,
                ),
            )
            continue
        if before.kind != after.kind:
            record(
                (before.definition, "kind"),
                ApiChange(
                    name,
                    after.kind,
                    "kind_changed",
                    before.kind,
                    after.kind,
                    [f"was a {before.kind}, now a {after.kind}"],
                    True,
                    definition=before.definition,
                ),
            )
            continue
        if before.params is not None and after.params is not None and before.params != after.params:
            details, breaking = compare_params(before.params, after.params)
            if details:
                record(
                    (before.definition, "signature"),
                    ApiChange(
                        name,
                        after.kind,
                        "signature_changed",
                        before.signature,
                        after.signature,
                        details,
                        breaking,
                        definition=before.definition,
                    ),
                )
        if after.deprecated and not before.deprecated:
            record(
                (before.definition, "deprecated"),
                ApiChange(
                    name,
                    after.kind,
                    "deprecated",
                    before.signature,
                    after.signature,
                    ["deprecated in the new version"],
                    False,
                    definition=before.definition,
                ),
            )
    added = [n for n in new if n not in old and n not in moved_to]
    added_definitions: set[str] = set()
    for name in sorted(added, key=lambda n: (n.count("."), n)):
        item = new[name]
        if item.definition in added_definitions:
            continue
        added_definitions.add(item.definition)
        changes.append(
            ApiChange(name, item.kind, "added", None, item.signature, definition=item.definition)
        )
    order = {"removed": 0, "kind_changed": 1, "signature_changed": 2, "deprecated": 3, "added": 4}
    changes.sort(key=lambda c: (not c.breaking, order[c.change], c.name))
    return changes


# ---------------------------------------------------------------------------------------------
# What notebooks use
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiUse:
    """A notebook's use of a package's name: an import or an attribute, called or not."""

    notebook: str
    cell: int
    """Position of the cell among all the notebook's cells, from 0 (the knowledge base's
    ``cell N`` locators count the same way)."""
    line: int
    name: str
    called: bool


class _UseFinder(ast.NodeVisitor):
    """Resolves names to the package's dotted paths, through aliases kept across cells."""

    def __init__(self, modules: set[str]) -> None:
        self.modules = modules
        self.aliases: dict[str, str] = {}
        self.instances: dict[str, str] = {}
        self.found: list[tuple[str, int, bool]] = []
        self._called: set[int] = set()

    def _ours(self, dotted: str) -> bool:
        return dotted.split(".")[0] in self.modules

    def resolve(self, node: ast.expr) -> str | None:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        base = self.aliases.get(node.id) or self.instances.get(node.id)
        if base is None:
            return None
        return ".".join([base, *reversed(parts)])

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not self._ours(alias.name):
                continue
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.aliases[top] = top
            self.found.append((alias.name, node.lineno, False))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module or not self._ours(node.module):
            return
        for alias in node.names:
            if alias.name == "*":
                continue
            full = f"{node.module}.{alias.name}"
            self.aliases[alias.asname or alias.name] = full
            self.instances.pop(alias.asname or alias.name, None)
            self.found.append((full, node.lineno, False))

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        made = self.resolve(node.value.func) if isinstance(node.value, ast.Call) else None
        for target in node.targets:
            if isinstance(target, ast.Name):
                self.aliases.pop(target.id, None)
                self.instances.pop(target.id, None)
                if made is not None:
                    self.instances[target.id] = made
            else:
                self.visit(target)

    def visit_Call(self, node: ast.Call) -> None:
        self._called.add(id(node.func))
        self.generic_visit(node)

    def _record(self, node: ast.expr) -> bool:
        dotted = self.resolve(node)
        if dotted is None:
            return False
        self.found.append((dotted, getattr(node, "lineno", 0), id(node) in self._called))
        return True

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load) and self._record(node):
            return  # the whole chain is one use; nothing inside it is another
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load) and node.id in self.aliases:
            self._record(node)


def _notebook_cells(path: Path) -> list[tuple[str, str]]:
    from westtek_core.notebook_imports import MAX_NOTEBOOK_BYTES, read_regular_file

    try:  # a regular file only: a FIFO named .ipynb would block the agent forever
        notebook = json.loads(read_regular_file(path, MAX_NOTEBOOK_BYTES).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    out: list[tuple[str, str]] = []
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        out.append((str(cell.get("cell_type", "")), text))
    return out


def notebook_paths(root: Path) -> Iterator[Path]:
    """Every notebook under ``root``, checkpoints left out, in path order."""
    for path in sorted(root.rglob("*.ipynb")):
        if CHECKPOINT_DIR not in path.parts:
            yield path


def find_api_uses(root: Path, modules: set[str]) -> list[ApiUse]:
    """Every use, in the workspace's notebooks, of names under the ``modules`` top levels."""
    uses: list[ApiUse] = []
    for path in notebook_paths(root):
        relative = path.relative_to(root).as_posix()
        finder = _UseFinder(modules)
        for index, (cell_type, text) in enumerate(_notebook_cells(path)):
            if cell_type != "code" or not any(m in text for m in modules) and not finder.aliases:
                continue
            python, _ = clean_ipython(text)
            if python is None:
                continue
            try:
                tree = ast.parse(python)
            except (SyntaxError, ValueError):
                continue
            finder.found = []
            finder.visit(tree)
            uses.extend(
                ApiUse(relative, index, line, name, called) for name, line, called in finder.found
            )
    return uses


def affected_uses(
    change: ApiChange, uses: Iterable[ApiUse], old_paths: Mapping[str, str]
) -> list[ApiUse]:
    """The uses a change breaks or alters.

    A removed path breaks the uses of exactly that path (or beneath it); a changed
    signature affects every path to the same object, including private ones.
    """
    names = {change.name, *change.also}
    hits = []
    for use in uses:
        exact = any(use.name == n or use.name.startswith(n + ".") for n in names)
        same_object = change.change != "removed" and old_paths.get(use.name) == change.definition
        if exact or same_object:
            hits.append(use)
    return hits


# ---------------------------------------------------------------------------------------------
# Metadata and release notes
# ---------------------------------------------------------------------------------------------


def metadata_fields(text: str) -> dict[str, Any]:
    """The METADATA headers that matter to a user: requirements, Python, summary."""
    if not text:
        return {}
    headers = HeaderParser().parsestr(text)
    return {
        "summary": headers.get("Summary"),
        "requires_python": headers.get("Requires-Python"),
        "requires_dist": sorted(headers.get_all("Requires-Dist") or []),
    }


def diff_metadata(old: str, new: str) -> list[str]:
    """What changed in the declared requirements and supported Pythons."""
    before, after = metadata_fields(old), metadata_fields(new)
    if not before or not after:
        return []
    out = []
    if before["requires_python"] != after["requires_python"]:
        out.append(
            f"Requires-Python: {before['requires_python'] or 'any'} → "
            f"{after['requires_python'] or 'any'}"
        )
    old_reqs, new_reqs = set(before["requires_dist"]), set(after["requires_dist"])
    out += [f"requirement removed: {r}" for r in sorted(old_reqs - new_reqs)]
    out += [f"requirement added: {r}" for r in sorted(new_reqs - old_reqs)]
    return out


_HEADING_VERSION = re.compile(r"^\W*(?:v(?:ersion)?\s*)?(\d+(?:\.\d+)+\w*)", re.I)


def release_notes_between(text: str, old: str, new: str, max_lines: int = 60) -> list[str]:
    """The lines of a changelog from the ``new`` version's heading down to ``old``'s."""
    lines = text.splitlines()
    start = end = None
    for index, line in enumerate(lines):
        match = _HEADING_VERSION.match(line.strip())
        if not match:
            continue
        version = match.group(1)
        if start is None and version == new:
            start = index
        elif start is not None and version == old:
            end = index
            break
    if start is None:
        return []
    return [line for line in lines[start : end if end is not None else None] if line.strip()][
        :max_lines
    ]
