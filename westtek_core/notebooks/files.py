"""Notebooks and workspaces: reading ``.ipynb`` files safely and analysing each one.

Each notebook's JSON is read directly (no validation, no kernel), its code cells analysed
(see ``analysis``), and its data paths expressed relative to the workspace. Nothing here raises
on bad input: an unreadable notebook comes back with ``error`` set.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import posixpath
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from westtek_core.notebooks.analysis import analyse_cells

log = logging.getLogger(__name__)

# A notebook larger than this is reported, not loaded: json.loads needs ~3x the file in memory.
MAX_NOTEBOOK_BYTES = 256 * 1024 * 1024

CHECKPOINT_DIR = ".ipynb_checkpoints"


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
