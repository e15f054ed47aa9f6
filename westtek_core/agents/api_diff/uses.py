"""Which notebook cells use a package's names, and which of those uses a change touches.

Each notebook is walked cell by cell, resolving ``import pkg as p`` / ``from pkg.mod
import f`` / ``x = pkg.C()`` aliases across cells, so a use is named by the package's
dotted path and located at its cell.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from westtek_core.agents.api_diff.diff import ApiChange
from westtek_core.notebooks import (
    CHECKPOINT_DIR,
    MAX_NOTEBOOK_BYTES,
    clean_ipython,
    read_regular_file,
)


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


def notebook_cells(path: Path) -> list[tuple[str, str]]:
    """A notebook's (cell_type, source) cells, numbered as the knowledge base numbers them.

    Empty when the file cannot be read as a notebook.
    """
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
        for index, (cell_type, text) in enumerate(notebook_cells(path)):
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
