"""What a workspace's notebooks import, read and pip-install, and who provides those imports.

Environment drift is graded against what the notebooks actually use. This module reads each
notebook's JSON directly (no validation, no kernel), turns every code cell's IPython syntax
into plain Python with a small line cleaner, and walks the ``ast`` for

* imported modules (``import``, ``from … import``, ``importlib.import_module("…")``,
  ``__import__("…")``), anywhere in the cell, including inside functions and ``try``;
* data files read through literal paths (``pd.read_csv("data/x.csv")``, ``open("…")``,
  ``np.load``, ``Path("…").read_text()``, ``xr.open_dataset``, ``h5py.File`` …);
* requirements installed from the notebook (``%pip install``, ``!pip install``).

:class:`ImportMap` then answers which distributions of a captured interpreter provide an
imported module, from the distributions' own RECORD file lists (plus ``top_level`` for
editable installs), not from a hand-kept name table.

IPython's own ``TransformerManager`` is deliberately not used: it costs about 100 µs per cell
(2.1 s for 20,000 cells, before parsing), is only installed where a kernel is, and would make
the result depend on the IPython version. Cells that already parse as Python (most of them)
skip the cleaner entirely.

Nothing here raises on bad input: an unreadable notebook comes back with ``error`` set, a
cell that does not parse even after cleanup is counted in ``unparsable_cells``.
"""

from __future__ import annotations

import ast
import errno
import json
import logging
import os
import posixpath
import re
import shlex
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# A notebook larger than this is reported, not loaded: json.loads needs ~3x the file in memory.
MAX_NOTEBOOK_BYTES = 256 * 1024 * 1024

CHECKPOINT_DIR = ".ipynb_checkpoints"

# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class NotebookAnalysis:
    """What one notebook imports, reads and installs, with paths relative to the workspace."""

    path: str
    """The notebook, relative to the workspace root, POSIX separators."""
    kernel: str | None
    """``metadata.kernelspec.name``, when the notebook names one."""
    imports: tuple[str, ...]
    """Full dotted module names imported, sorted and deduplicated."""
    data_files: tuple[str, ...]
    """Literal data paths read, relative to the workspace root (absolute ones kept as is)."""
    pip_installs: tuple[str, ...]
    """Requirement strings from ``%pip install`` / ``!pip install``, in notebook order."""
    error: str | None = None
    """Why the notebook could not be analysed; the tuples are then empty."""
    unparsable_cells: int = 0
    """Code cells skipped because they do not parse even after IPython cleanup."""


# ---------------------------------------------------------------------------------------------
# IPython syntax → Python
# ---------------------------------------------------------------------------------------------

# Cell magics whose body is Python run in the kernel itself; every other cell magic is dropped.
_PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})
# Cell magics whose body is shell: scanned for ``pip install`` only.
_SHELL_CELL_MAGICS = frozenset({"bash", "sh", "script", "system", "!"})
# Line magics that run the Python statement after their options, with the options taking a value.
_STATEMENT_MAGICS: dict[str, frozenset[str]] = {
    "time": frozenset(),
    "timeit": frozenset({"-n", "-r", "-p"}),
    "prun": frozenset({"-l", "-s", "-T", "-D"}),
}
_SHELL_LINE_MAGICS = frozenset({"system", "sx", "sc"})

_MAGIC_RE = re.compile(r"%{1,2}([\w!]*)\s*(.*)", re.DOTALL)
_ASSIGN_ESCAPE_RE = re.compile(
    r"[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*\s*=\s*([!%])(.*)", re.DOTALL
)
_CODE_SPECIAL_RE = re.compile(r"""[#\[\](){}]|'''|\"\"\"|['"]""")
_STRING_REST: dict[str, re.Pattern[str]] = {
    "'": re.compile(r"(?:[^'\\\n]|\\.)*'", re.DOTALL),
    '"': re.compile(r'(?:[^"\\\n]|\\.)*"', re.DOTALL),
    "'''": re.compile(r"(?:[^'\\]|\\.|'(?!''))*'''", re.DOTALL),
    '"""': re.compile(r'(?:[^"\\]|\\.|"(?!""))*"""', re.DOTALL),
}
_OPENERS = frozenset("([{")
_CLOSERS = frozenset(")]}")

# pip install options that take a value as the next argument (``--opt=value`` needs no entry).
_PIP_VALUED_OPTIONS = frozenset(
    {
        "-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url",
        "--extra-index-url", "-f", "--find-links", "-t", "--target", "--prefix", "--root",
        "--upgrade-strategy", "--platform", "--python-version", "--implementation", "--abi",
        "--trusted-host", "--cache-dir", "--src", "--global-option", "--install-option",
        "-C", "--config-settings", "--progress-bar", "--log", "--proxy", "--retries",
        "--timeout", "--exists-action", "--cert", "--client-cert", "--report",
        "--only-binary", "--no-binary", "--python", "--keyring-provider",
        "--root-user-action", "--use-feature", "--use-deprecated", "--group",
    }
)  # fmt: skip
_PIP_RE = re.compile(r"pip(?:\d+(?:\.\d+)*)?")
_SHELL_SEPARATORS = frozenset({"&&", "||", ";", "|", "&"})
_REDIRECT_RE = re.compile(r"(?:\d*|&)(?:>>?|<)(.*)")


def _split_shell(command: str) -> list[str]:
    """Split a shell command like a POSIX shell would split words; never raises."""
    try:
        return shlex.split(command, comments=False, posix=True)
    except ValueError:  # unbalanced quotes
        return command.split()


def pip_requirements(command: str) -> list[str]:
    """Requirement strings a shell command installs with pip (``pip install …``, ``-m pip``).

    Options are skipped except ``-e <target>`` (an editable requirement); ``-r file`` is not a
    requirement and is skipped too. Words with shell or IPython interpolation (``$x``,
    ``{x}``) are not literal requirements and are left out; so is everything after a comment.
    """
    requirements: list[str] = []
    segment: list[str] = []
    skip_next = False
    for word in [*_split_shell(command), ";"]:
        if skip_next:
            skip_next = False
            continue
        if word.startswith("#"):
            break
        redirect = _REDIRECT_RE.fullmatch(word)
        if redirect is not None:  # "> log" skips its target too; ">log", "2>&1" are one word
            skip_next = not redirect.group(1)
            continue
        tail = word.endswith(";") and word != ";"
        word = word.rstrip(";") if tail else word
        if word in _SHELL_SEPARATORS:
            requirements.extend(_install_arguments(segment))
            segment = []
            continue
        segment.append(word)
        if tail:
            requirements.extend(_install_arguments(segment))
            segment = []
    requirements.extend(_install_arguments(segment))
    return requirements


def _install_arguments(words: list[str]) -> list[str]:
    """The requirements of one simple command when it is a ``pip install``."""
    for index, word in enumerate(words):
        if _PIP_RE.fullmatch(posixpath.basename(word)):
            rest = words[index + 1 :]
            break
    else:
        return []
    while rest and rest[0].startswith("-"):  # global options: -q, --disable-pip-version-check
        rest = rest[1:]
    if not rest or rest[0] != "install":
        return []
    found: list[str] = []
    args = iter(rest[1:])
    for arg in args:
        if arg.startswith("-"):
            if arg in _PIP_VALUED_OPTIONS:
                value = next(args, "")
                if arg in ("-e", "--editable") and value:
                    found.append(value)
            elif arg.startswith("--editable="):
                found.append(arg.partition("=")[2])
            continue
        if arg and "$" not in arg and "{" not in arg:
            found.append(arg)
    return found


def _magic_statement(name: str, args: str) -> str:
    """The Python statement a statement-running line magic executes, options stripped."""
    valued = _STATEMENT_MAGICS[name]
    rest = args.strip()
    while rest.startswith("-"):
        option, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        if option in valued:  # "-n 10": the value is the next word ("-n10" is one word)
            _, _, rest = rest.partition(" ")
            rest = rest.lstrip()
    return rest


def _line_magic(name: str, args: str, pips: list[str]) -> str:
    """Python replacing one line magic: its statement, or ``pass``; records pip installs."""
    if name == "pip":
        pips.extend(pip_requirements("pip " + args))
    elif name in _SHELL_LINE_MAGICS:
        pips.extend(pip_requirements(args))
    elif name in _STATEMENT_MAGICS:
        return _magic_statement(name, args) or "pass"
    return "pass"


def _escape(text: str, pips: list[str]) -> str | None:
    """Python replacing a logical line that starts with IPython syntax; None when it is Python.

    ``text`` is the line without indentation, backslash continuations joined.
    """
    first = text[:1]
    if first == "%":
        match = _MAGIC_RE.match(text)
        if text.startswith("%%") or match is None:  # a cell magic below the first line
            return "pass"
        return _line_magic(match.group(1), match.group(2), pips)
    if first == "!":
        pips.extend(pip_requirements(text.lstrip("!")))
        return "pass"
    if first and first in "?/,;":  # help (?obj), autocall escapes (/f x, ,f a b, ;f a b)
        return "pass"
    assign = _ASSIGN_ESCAPE_RE.match(text)
    if assign is None:
        return None
    if assign.group(1) == "!":
        pips.extend(pip_requirements(assign.group(2).lstrip("!")))
        return "pass"
    return _escape("%" + assign.group(2), pips)


def _scan(line: str, quote: str | None, depth: int) -> tuple[str | None, int, str]:
    r"""Advance the lexical state over one physical line.

    Returns the open string quote (or None), the bracket depth and the last significant
    character outside strings and comments (``\\`` means the line continues).
    """
    pos, end, last = 0, len(line), ""
    while pos < end:
        if quote is not None:
            closed = _STRING_REST[quote].match(line, pos)
            if closed is None:
                if len(quote) == 1 and not line.rstrip().endswith("\\"):
                    quote = None  # unterminated one-line string: a syntax error, carry on
                return quote, depth, last
            pos, last, quote = closed.end(), quote[0], None
            continue
        special = _CODE_SPECIAL_RE.search(line, pos)
        stop = special.start() if special else end
        segment = line[pos:stop].rstrip()
        if segment:
            last = segment[-1]
        if special is None:
            break
        token = special.group()
        if token == "#":
            break
        if token in _OPENERS:
            depth += 1
        elif token in _CLOSERS:
            depth = max(0, depth - 1)
        else:
            quote = token
        last, pos = token[0], special.end()
    return quote, depth, last


def _clean_lines(lines: list[str], pips: list[str]) -> list[str]:
    """Replace IPython-only logical lines by Python, keeping line numbers and indentation."""
    out: list[str] = []
    quote: str | None = None
    depth = 0
    continued = False
    index = 0
    while index < len(lines):
        line = lines[index]
        if quote is None and depth == 0 and not continued:
            stripped = line.lstrip()
            indent = line[: len(line) - len(stripped)]
            if stripped[:1] in ("%", "!", "?", "/", ",", ";") or "=" in stripped:
                last_index = index
                text = stripped.rstrip()
                while text.endswith("\\") and last_index + 1 < len(lines) and text[:1] in "%!":
                    last_index += 1
                    text = text[:-1] + " " + lines[last_index].strip()
                replacement = _escape(text, pips)
                if replacement is not None:
                    out.append(indent + replacement)
                    out.extend("" for _ in range(last_index - index))
                    index = last_index + 1
                    continue
            quote, depth, last = _scan(line, None, 0)
            if quote is None and depth == 0 and last == "?":  # obj? / obj?? help
                out.append(indent + "pass")
                index += 1
                continue
        else:
            quote, depth, last = _scan(line, quote, depth)
        continued = quote is None and last == "\\"
        out.append(line)
        index += 1
    return out


def clean_ipython(source: str) -> tuple[str | None, list[str]]:
    """Turn one code cell's IPython syntax into Python; None when the cell is not Python.

    Returns the Python source (same line numbers) and the requirements the cell pip-installs.
    ``%%time``/``%%timeit``/``%%capture``/``%%prun``/``%%debug`` keep their body; other cell
    magics drop the cell (shell ones are still scanned for ``pip install``). ``%time``,
    ``%timeit`` and ``%prun`` keep their statement; other line magics, ``!shell``,
    ``x = !cmd``, ``x = %magic`` and ``obj?``/``?obj`` help become ``pass``.
    """
    pips: list[str] = []
    lines = source.split("\n")
    removed: list[str] = []  # what replaces the cell magic lines, so line numbers hold
    while True:  # cell magics stack: "%%capture" runs its body, which may be "%%time …"
        first = 0
        while first < len(lines) and not lines[first].strip():
            first += 1
        if first == len(lines) or not lines[first].startswith("%%"):
            break
        match = _MAGIC_RE.match(lines[first].strip())
        name, args = (match.group(1), match.group(2)) if match else ("", "")
        body = lines[first + 1 :]
        if name in _SHELL_CELL_MAGICS:
            for line in body:
                pips.extend(pip_requirements(line))
            return None, pips
        if name not in _PYTHON_CELL_MAGICS:
            return None, pips
        removed += [""] * first
        removed.append(_magic_statement("timeit", args) if name == "timeit" else "")
        lines = body
    return "\n".join([*removed, *_clean_lines(lines, pips)]), pips


# ---------------------------------------------------------------------------------------------
# What the code imports and reads
# ---------------------------------------------------------------------------------------------

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


def _is_module_name(name: str) -> bool:
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
                if module and _is_module_name(module):
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


# ---------------------------------------------------------------------------------------------
# Notebooks and workspaces
# ---------------------------------------------------------------------------------------------


class _Unreadable(Exception):
    """A notebook file that cannot be analysed; the message says why."""


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``.

    Opened without blocking and checked on the open descriptor, so a ``.ipynb`` that is a
    FIFO (which would block forever) or a link to ``/dev/zero`` (which never ends) is
    refused with :class:`OSError` instead of hanging the caller.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if st.st_size > max_bytes:
            raise OSError(errno.EFBIG, f"{st.st_size} bytes, over the {max_bytes}-byte limit")
        with open(fd, "rb", closefd=False) as stream:
            data = stream.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # it grew while we read
        raise OSError(errno.EFBIG, f"over the {max_bytes}-byte limit")
    return data


def _load_json(path: Path, max_bytes: int) -> dict[str, Any]:
    try:
        raw = read_regular_file(path, max_bytes)
    except OSError as e:
        if e.errno == errno.EFBIG:
            raise _Unreadable(f"notebook is {e.strerror}") from None
        raise _Unreadable(f"cannot read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _Unreadable(f"not UTF-8: invalid byte at offset {e.start}") from None
    del raw
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise _Unreadable(f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise _Unreadable("invalid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise _Unreadable(f"not a notebook: top-level JSON is {type(data).__name__}")
    return data


def _cell_sources(notebook: Mapping[str, Any]) -> Iterator[str]:
    """Code cell sources of an nbformat v4 (``cells``) or v3 (``worksheets``) notebook."""
    cells = notebook.get("cells")
    key = "source"
    if cells is None and isinstance(notebook.get("worksheets"), list):
        cells = [
            cell
            for sheet in notebook["worksheets"]
            if isinstance(sheet, dict) and isinstance(sheet.get("cells"), list)
            for cell in sheet["cells"]
        ]
        key = "input"
    if not isinstance(cells, list):
        raise _Unreadable("not a notebook: no cell list")
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get(key)
        if isinstance(source, list):
            yield "".join(part for part in source if isinstance(part, str))
        elif isinstance(source, str):
            yield source


def _kernel_and_language(notebook: Mapping[str, Any]) -> tuple[str | None, str | None]:
    metadata = notebook.get("metadata")
    if not isinstance(metadata, dict):
        return None, None
    spec = metadata.get("kernelspec")
    spec = spec if isinstance(spec, dict) else {}
    info = metadata.get("language_info")
    info = info if isinstance(info, dict) else {}
    kernel = spec.get("name")
    language = spec.get("language") or info.get("name")
    return (
        kernel if isinstance(kernel, str) else None,
        language if isinstance(language, str) else None,
    )


def _workspace_path(literal: str, notebook_dir: str) -> str:
    """A path as the kernel (cwd = the notebook's directory) sees it, relative to the root."""
    if literal.startswith(("/", "~", "\\")) or re.match(r"[A-Za-z]:[\\/]", literal):
        return literal
    return posixpath.normpath(posixpath.join(notebook_dir, literal))


def _relative_posix(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return Path(os.path.relpath(path, root)).as_posix()


def analyse_notebook(
    path: Path, root: Path, *, max_bytes: int = MAX_NOTEBOOK_BYTES
) -> NotebookAnalysis:
    """Analyse one ``.ipynb`` file of the workspace at ``root``; never raises.

    Only the JSON is read (no nbformat validation). A notebook declaring a non-Python
    language, unreadable, not UTF-8, not JSON or not a notebook comes back with ``error``
    set and empty tuples. Data paths are resolved against the notebook's directory (the
    kernel's working directory) and expressed relative to ``root``.
    """
    relative = _relative_posix(path, root)
    kernel: str | None = None
    try:
        notebook = _load_json(path, max_bytes)
        kernel, language = _kernel_and_language(notebook)
        if language and not language.lower().startswith(("python", "ipython")):
            raise _Unreadable(f"not a Python notebook (language {language!r})")
        code = analyse_cells(_cell_sources(notebook))
    except _Unreadable as e:
        return NotebookAnalysis(relative, kernel, (), (), (), error=str(e))
    except Exception as e:  # noqa: BLE001 - one odd notebook must not sink a workspace grade
        log.warning("Could not analyse notebook %s", relative, exc_info=True)
        return NotebookAnalysis(relative, kernel, (), (), (), error=f"{type(e).__name__}: {e}")
    notebook_dir = posixpath.dirname(relative)
    data_files = {_workspace_path(literal, notebook_dir) for literal in code.data_files}
    return NotebookAnalysis(
        path=relative,
        kernel=kernel,
        imports=code.imports,
        data_files=tuple(sorted(data_files)),
        pip_installs=code.pip_installs,
        unparsable_cells=code.unparsable_cells,
    )


def find_notebooks(root: Path) -> list[str]:
    """Every ``*.ipynb`` under ``root`` (relative POSIX paths, sorted), checkpoints excluded.

    Symlinked directories are not followed. Callers that honour ``.westtekignore`` pass the
    captured file list to :func:`analyse_workspace` instead.
    """
    found: list[str] = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != CHECKPOINT_DIR]
        base = _relative_posix(Path(directory), root)
        for filename in filenames:
            if filename.endswith(".ipynb"):
                found.append(filename if base == "." else f"{base}/{filename}")
    return sorted(found)


def analyse_workspace(root: Path, *, files: Iterable[str] | None = None) -> list[NotebookAnalysis]:
    """Analyse every notebook of the workspace, or the given root-relative POSIX paths.

    Results are in path order when walking and in the given order for ``files``; a given
    path that does not exist is reported with ``error`` set.
    """
    paths = find_notebooks(root) if files is None else list(files)
    return [analyse_notebook(root / relative, root) for relative in paths]


# ---------------------------------------------------------------------------------------------
# Import names → distributions
# ---------------------------------------------------------------------------------------------

_EXTENSION_RE = re.compile(r"([A-Za-z_]\w*)(?:\.[\w-]+)*\.(?:so|pyd)")
_META_DIR_SUFFIXES = (".dist-info", ".data", ".egg-info")


def module_of_record_path(path: str) -> str | None:
    """The dotted module a RECORD path provides, or None (data, scripts, metadata, caches).

    ``a/b/c.py``, ``a/b/c.cpython-311-x86_64-linux-gnu.so`` → ``a.b.c``;
    ``a/b/__init__.py`` → ``a.b``; ``a.py`` → ``a``.
    """
    parts = path.replace("\\", "/").split("/")
    if parts[0] in ("", ".", "..") or ".." in parts or "__pycache__" in parts:
        return None
    if parts[0].endswith(_META_DIR_SUFFIXES):
        return None
    filename, packages = parts[-1], parts[:-1]
    if not all(p.isidentifier() for p in packages):
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
        return ".".join(packages) or None
    if not packages and stem.startswith("__editable__"):
        return None  # setuptools' editable finder, not a module of the project
    return ".".join([*packages, stem])


def _ancestors(module: str) -> Iterator[str]:
    parts = module.split(".")
    for size in range(1, len(parts)):
        yield ".".join(parts[:size])


def _record_paths(files: Any) -> Iterator[str]:
    """RECORD paths given as strings or as the capture probe's ``{"path": …}`` entries."""
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

    modules: Mapping[str, frozenset[str]]
    namespaces: Mapping[str, frozenset[str]]

    @classmethod
    def from_packages(cls, packages: Sequence[Mapping[str, Any]]) -> ImportMap:
        """Build the map from captured distribution records.

        Each record has ``name``, and optionally ``files`` (RECORD paths relative to
        site-packages, as strings or ``{"path": …}``) and ``top_level`` (import names, dotted
        for namespace portions). Files decide; ``top_level`` adds the names the files do not
        show, which is how editable installs (RECORD holding only a ``.pth``) are mapped.
        """
        modules: dict[str, set[str]] = {}
        namespaces: dict[str, set[str]] = {}
        for package in packages:
            name = package.get("name")
            if not isinstance(name, str) or not name:
                continue
            owned: set[str] = set()
            shared: set[str] = set()
            for path in _record_paths(package.get("files")):
                module = module_of_record_path(path)
                if module is not None:
                    owned.add(module)
                    shared.update(_ancestors(module))
            top_level = package.get("top_level")
            for entry in top_level if isinstance(top_level, (list, tuple)) else ():
                if isinstance(entry, str) and _is_module_name(entry):
                    if entry not in owned and entry not in shared:
                        owned.add(entry)
                        shared.update(_ancestors(entry))
            for module in owned:
                modules.setdefault(module, set()).add(name)
            for module in shared - owned:
                namespaces.setdefault(module, set()).add(name)
        return cls(
            modules={k: frozenset(v) for k, v in modules.items()},
            namespaces={k: frozenset(v) for k, v in namespaces.items()},
        )

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
