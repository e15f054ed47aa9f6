"""A package version's public API, read from its source with ``ast``.

Functions, classes, methods and properties, each under every public dotted path users
reach it through (re-exports followed to the defining module), with its signature and
whether it is deprecated.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from westtek_core.agents.api_diff.source import PackageSource

log = logging.getLogger(__name__)

_MAX_RESOLVE_DEPTH = 8
_DEFAULT_CHARS = 40


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
