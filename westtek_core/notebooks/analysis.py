"""What code imports and reads: an ``ast`` walk of cells or scripts, cleaned of IPython syntax.

Imported modules (``import``, ``from … import``, ``importlib.import_module("…")``,
``__import__("…")``), anywhere in a cell, including inside functions and ``try``; data files
read through literal paths (``pd.read_csv("data/x.csv")``, ``open("…")``, ``np.load``,
``Path("…").read_text()``, ``xr.open_dataset``, ``h5py.File`` …); requirements installed
from the code (``%pip install``, ``!pip install``). A cell that does not parse even after
cleanup is counted in ``unparsable_cells``.
"""

from __future__ import annotations

import ast
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from westtek_core.notebooks.ipython import clean_ipython, pip_requirements


@dataclass(frozen=True)
class CodeAnalysis:
    """What a sequence of code cells imports, reads and installs (before any path mapping)."""

    imports: tuple[str, ...] = ()
    """Full dotted module names, sorted and deduplicated."""
    data_files: tuple[str, ...] = ()
    """Literal paths exactly as written in the code (URLs excluded), sorted and deduplicated."""
    pip_installs: tuple[str, ...] = ()
    """Requirement strings in the order the cells install them (repeats kept: it is history)."""
    unparsable_cells: int = 0
    """Cells skipped because they do not parse as Python even after IPython cleanup."""


# Readers recognised by their (distinctive) name on any object or as a bare name.
_READER_NAMES = frozenset(
    {
        "read_csv", "read_parquet", "read_excel", "read_json", "read_table", "read_feather",
        "read_pickle", "read_hdf", "read_fwf", "read_orc", "read_sas", "read_spss",
        "read_stata", "scan_csv", "scan_parquet", "scan_ndjson", "scan_ipc", "read_ipc",
        "read_ndjson", "read_avro",
    }
)  # fmt: skip
# Readers recognised by their qualified name once import aliases are resolved.
_READER_FUNCTIONS = frozenset(
    {
        "open", "io.open", "builtins.open", "codecs.open", "gzip.open", "bz2.open",
        "lzma.open", "numpy.load", "numpy.loadtxt", "numpy.genfromtxt", "numpy.fromfile",
        "xarray.open_dataset", "xarray.open_dataarray", "h5py.File",
    }
)  # fmt: skip
_PATH_TYPES = frozenset({"pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath"})
_PATH_READ_METHODS = frozenset({"read_text", "read_bytes", "open"})
_PATH_KEYWORDS = frozenset(
    {"filepath_or_buffer", "fname", "file", "path", "path_or_buf", "io", "filename_or_obj"}
)
_IMPORT_FUNCTIONS = frozenset({"importlib.import_module", "import_module", "__import__"})
# Conventional aliases, so ``np.load`` is recognised when the import ran in another session.
_DEFAULT_ALIASES: dict[str, str] = {
    "np": "numpy",
    "pd": "pandas",
    "xr": "xarray",
    "pl": "polars",
    "Path": "pathlib.Path",
}
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_MAX_PATH_DEPTH = 16


def is_module_name(name: str) -> bool:
    """Whether ``name`` is a dotted Python module name (``a.b.c``)."""
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def _qualified_name(node: ast.expr, aliases: Mapping[str, str]) -> str | None:
    """``np.load`` → ``numpy.load`` through the notebook's import aliases; None if not a name."""
    attributes: list[str] = []
    while isinstance(node, ast.Attribute):
        attributes.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    base = aliases.get(node.id, node.id)
    return ".".join([base, *reversed(attributes)])


def _literal_path(node: ast.expr, aliases: Mapping[str, str], depth: int = 0) -> str | None:
    """The path a literal expression spells: ``"a"``, ``f"a"``, ``Path("a") / "b"``, ``join``."""
    if depth > _MAX_PATH_DEPTH:
        return None
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        parts = [v.value for v in node.values if isinstance(v, ast.Constant)]
        if len(parts) != len(node.values) or not all(isinstance(p, str) for p in parts):
            return None
        return "".join(str(p) for p in parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        left = _literal_path(node.left, aliases, depth + 1)
        right = _literal_path(node.right, aliases, depth + 1)
        # Only a Path on the left makes "/" a join; "a" / "b" on two strings is a TypeError.
        if left is None or right is None or not _is_path_expr(node.left, aliases):
            return None
        return posixpath.join(left, right)
    if isinstance(node, ast.Call) and not node.keywords and node.args:
        name = _qualified_name(node.func, aliases)
        if name in _PATH_TYPES or name in ("os.path.join", "posixpath.join"):
            pieces = [_literal_path(arg, aliases, depth + 1) for arg in node.args]
            if any(p is None for p in pieces):
                return None
            return posixpath.join(*(p for p in pieces if p is not None))
    return None


def _is_path_expr(node: ast.expr, aliases: Mapping[str, str]) -> bool:
    while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        node = node.left
    return isinstance(node, ast.Call) and _qualified_name(node.func, aliases) in _PATH_TYPES


def _path_argument(call: ast.Call, aliases: Mapping[str, str]) -> str | None:
    """The literal path a reader call is given: first positional argument or a path keyword."""
    if call.args:
        return _literal_path(call.args[0], aliases)
    for keyword in call.keywords:
        if keyword.arg in _PATH_KEYWORDS:
            return _literal_path(keyword.value, aliases)
    return None


def _first_string(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


@dataclass
class _Collector:
    """Accumulates imports, import aliases, calls and pip installs over a notebook's cells."""

    imports: set[str] = field(default_factory=set)
    aliases: dict[str, str] = field(default_factory=lambda: dict(_DEFAULT_ALIASES))
    calls: list[ast.Call] = field(default_factory=list)
    pips: list[str] = field(default_factory=list)
    unparsable: int = 0

    def add_cell(self, source: str) -> None:
        """Parse one cell (cleaning IPython syntax when needed) and collect what it holds."""
        tree = _parse(source)
        if tree is None:
            python, pips = clean_ipython(source)
            self.pips.extend(pips)
            if python is None:
                return
            tree = _parse(python)
            if tree is None:
                self.unparsable += 1
                return
        exported_pips: list[tuple[int, int, list[str]]] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.imports.add(alias.name)
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        top = alias.name.partition(".")[0]
                        self.aliases[top] = top
            elif isinstance(node, ast.ImportFrom):
                if node.level or not node.module or node.module == "__future__":
                    continue
                self.imports.add(node.module)
                for alias in node.names:
                    if alias.name != "*":
                        self.imports.add(f"{node.module}.{alias.name}")
                        self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Call):
                exported = self._ipython_pip(node)
                if exported is None:
                    self.calls.append(node)
                elif exported:
                    exported_pips.append((node.lineno, node.col_offset, exported))
        for _, _, requirements in sorted(exported_pips):  # ast.walk is breadth-first
            self.pips.extend(requirements)

    def result(self) -> CodeAnalysis:
        """Resolve the collected calls (aliases are known now) into the analysis."""
        data_files: set[str] = set()
        for call in self.calls:
            name = _qualified_name(call.func, self.aliases)
            if name in _IMPORT_FUNCTIONS or (name or "").endswith(".import_module"):
                module = _first_string(call)
                if module and is_module_name(module):
                    self.imports.add(module)
                continue
            path = self._read_path(call, name)
            if path and not _URL_RE.match(path):
                data_files.add(path)
        self.calls = []
        return CodeAnalysis(
            imports=tuple(sorted(self.imports)),
            data_files=tuple(sorted(data_files)),
            pip_installs=tuple(self.pips),
            unparsable_cells=self.unparsable,
        )

    @staticmethod
    def _ipython_pip(call: ast.Call) -> list[str] | None:
        """What ``get_ipython().run_line_magic("pip", "install …")``/``.system(…)`` installs.

        None when the call is not a ``get_ipython()`` method call (as exported to ``.py``).
        """
        func = call.func
        if not (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "get_ipython"
        ):
            return None
        strings = [
            a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
        ]
        if func.attr == "run_line_magic" and len(strings) == 2 and strings[0] == "pip":
            return pip_requirements("pip " + strings[1])
        if func.attr == "system" and strings:
            return pip_requirements(strings[0])
        return []

    def _read_path(self, call: ast.Call, name: str | None) -> str | None:
        func = call.func
        if isinstance(func, ast.Attribute):
            leaf: str | None = func.attr
        else:  # a bare name, possibly imported: ``from pandas import read_csv``
            leaf = name.rpartition(".")[2] if name else None
        if leaf in _READER_NAMES or name in _READER_FUNCTIONS:
            return _path_argument(call, self.aliases)
        if (
            isinstance(func, ast.Attribute)
            and func.attr in _PATH_READ_METHODS
            and _is_path_expr(func.value, self.aliases)
        ):
            return _literal_path(func.value, self.aliases)
        return None


def _parse(source: str) -> ast.Module | None:
    """``ast.parse`` that reports every way a cell can fail to parse as None."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        # ValueError: null bytes; RecursionError/MemoryError: pathologically nested code.
        return None


def analyse_cells(cells: Iterable[str]) -> CodeAnalysis:
    """Analyse the code cells of one notebook (or any Python/IPython sources), in order.

    Cells are analysed together because an alias imported in one cell (``import numpy as
    np``) decides what a call in a later one (``np.load("x.npy")``) reads. Data paths are
    returned as written; :func:`analyse_notebook` maps them onto the workspace.
    """
    collector = _Collector()
    for source in cells:
        try:
            collector.add_cell(source)
        except RecursionError:  # a tree too deep to walk
            collector.unparsable += 1
    return collector.result()


def analyse_source(source: str) -> CodeAnalysis:
    """Analyse one cell or script: :func:`analyse_cells` of a single source."""
    return analyse_cells([source])
