"""What the tools' groups share: list limits, short ids and times, versions, notebook rows."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from westtek_core.agents.api_diff import notebook_cells
from westtek_core.agents.tools.context import ToolContext
from westtek_core.agents.tools.results import JSON

MAX_LIST = 25  # items of one kind a tool returns; the rest are counted


def format_time(timestamp: Any) -> str:
    """A snapshot's or event's time as an answer states it (``2026-11-02 14:05 UTC``)."""
    if isinstance(timestamp, (int, float)):
        return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return str(timestamp or "?")[:16].replace("T", " ")


def short_id(snapshot_id: Any) -> str:
    """A snapshot id shortened to the 12 characters the CLI accepts and shows."""
    return str(snapshot_id or "")[:12]


def package_version(manifest: Mapping[str, Any], name: str) -> str | None:
    """The version of package ``name`` in a snapshot's manifest (None: not in it)."""
    wanted = canonicalize_name(name)
    for interp in manifest.get("interpreters", []):
        for package in interp.get("packages", []):
            if canonicalize_name(str(package.get("name", ""))) == wanted:
                return str(package.get("version"))
    return None


def first_cell(path: Path, needle: str) -> int | None:
    """The first cell of a notebook whose source contains ``needle``."""
    for index, (_, text) in enumerate(notebook_cells(path)):
        if needle in text:
            return index
    return None


_WRITE_RE = re.compile(
    r"""(?:savefig|to_csv|to_parquet|to_excel|to_netcdf|to_hdf|to_json|np\.save|imsave|"""
    r"""write_text|write_bytes|dump)\(\s*(?:[frb]?)['"]([^'"]+)['"]"""
)


def notebook_rows(ctx: ToolContext) -> list[JSON]:
    """One row per workspace notebook: kernel, imports, distributions, reads, writes, cells.

    Computed once per context (several tools read it).
    """

    def build() -> list[JSON]:
        importers: dict[str, set[str]] = {}
        for interp in ctx.view().get("interpreters", []):
            for package in interp.get("packages", []):
                for notebook in package.get("imported_by", []):
                    importers.setdefault(notebook, set()).add(str(package["name"]))
        rows: list[JSON] = []
        for analysis in ctx.notebooks():
            path = ctx.root / analysis.path
            cells = notebook_cells(path)
            writes: list[JSON] = []
            reads: list[JSON] = []
            for index, (kind, text) in enumerate(cells):
                if kind != "code":
                    continue
                writes += [{"path": p, "cell": index} for p in _WRITE_RE.findall(text)]
            for data_file in analysis.data_files:
                needle = os.path.basename(data_file)
                cell = next(
                    (i for i, (k, t) in enumerate(cells) if k == "code" and needle in t),
                    None,
                )
                reads.append(
                    {"path": data_file, "cell": cell, "exists": (ctx.root / data_file).exists()}
                )
            first_import = next(
                (i for i, (k, t) in enumerate(cells) if k == "code" and "import" in t),
                None,
            )
            rows.append(
                {
                    "path": analysis.path,
                    "kernel": analysis.kernel,
                    "imports": sorted({m.split(".")[0] for m in analysis.imports}),
                    "distributions": sorted(importers.get(analysis.path, set())),
                    "reads": reads,
                    "writes": writes,
                    "pip_installs": list(analysis.pip_installs),
                    "cells": len(cells),
                    "import_cell": first_import,
                    "error": analysis.error,
                }
            )
        return rows

    result: list[JSON] = ctx.cached("notebook-rows", build)
    return result
