"""What the knowledge base reads, as documents of located sections.

A section is the smallest thing a citation points at: a notebook cell (``cell N``), a line
of a manifest, summary, log or the install history (``line N``). Notebooks go through
nbconvert's Markdown exporter with their outputs summarised and images dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbconvert import MarkdownExporter

# nbformat and nbconvert are untyped: their calls are confined to this module. They are
# imported where a notebook is read (2 s of a cold process: nbformat's JSON schema
# validators), so `westtek kb search` and the store's users never pay for them.
# mypy: disable-error-code="no-untyped-call"

OUTPUT_SUMMARY_CHARS = 300
_CELL_MARK = "<!-- westtek-cell {} -->"
_CELL_MARK_RE = re.compile(r"<!-- westtek-cell (\d+) -->")
# images written into Markdown cells as data: URIs (or <img src="data:…">): dropped like outputs
_INLINE_IMAGE = re.compile(r"!\[([^\]]*)\]\(data:[^)]*\)|<img[^>]*src=[\"']data:[^>]*>", re.I)


@dataclass(frozen=True)
class Section:
    """A located piece of a document."""

    locator: str
    text: str


@dataclass(frozen=True)
class Document:
    """One source's sections; ``fingerprint`` changes when the source does."""

    source: str
    kind: str
    fingerprint: str
    sections: tuple[Section, ...]


def fingerprint_bytes(data: bytes) -> str:
    """A content fingerprint."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _summarise_output(output: Mapping[str, Any]) -> str | None:
    kind = output.get("output_type")
    if kind == "stream":
        text = str(output.get("text", ""))
    elif kind == "error":
        text = f"{output.get('ename')}: {output.get('evalue')}"
    else:
        data = output.get("data", {})
        text = str(data.get("text/markdown") or data.get("text/plain") or "")
        if not text:
            return None  # an image or widget only: dropped
    text = text.strip()
    if len(text) > OUTPUT_SUMMARY_CHARS:
        text = text[:OUTPUT_SUMMARY_CHARS] + " …"
    return text or None


def _mark_cells_and_summarise_outputs(nb: Any) -> None:
    """Put a marker before each cell; replace its outputs with one short text summary.

    Done before nbconvert sees the notebook, so images never reach its deep copy.
    """
    import nbformat

    cells = []
    for index, cell in enumerate(nb.cells):
        # plain nodes: nbformat's constructors validate each one, which dominates the time
        cells.append(
            nbformat.NotebookNode(
                id=f"westtek-{index}",
                cell_type="markdown",
                metadata={},
                source=_CELL_MARK.format(index),
            )
        )
        if cell.cell_type == "code":
            summaries = [s for s in map(_summarise_output, cell.get("outputs", [])) if s]
            cell.outputs = (
                [
                    nbformat.NotebookNode(
                        output_type="stream", name="stdout", text="\n".join(summaries)
                    )
                ]
                if summaries
                else []
            )
        cell.pop("attachments", None)
        cells.append(cell)
    nb.cells = cells


_exporter: MarkdownExporter | None = None


def _markdown_exporter() -> MarkdownExporter:
    global _exporter
    if _exporter is None:
        from nbconvert import MarkdownExporter

        # no preprocessors (image extraction, highlighting…): outputs are summarised already
        _exporter = MarkdownExporter(exclude_raw=True, default_preprocessors=[])
    return _exporter


def _with_cell_ids(raw: dict[str, Any]) -> dict[str, Any]:
    """Give v4.5+ cells that lack one an id (as nbformat's normaliser would, with a warning)."""
    if int(raw.get("nbformat_minor", 0)) >= 5:
        for index, cell in enumerate(raw.get("cells") or []):
            if isinstance(cell, dict) and "id" not in cell:
                cell["id"] = f"cell-{index}"
    return raw


def read_source(path: Path) -> bytes:
    """A source file's bytes: a regular file within the notebook size limit, else OSError."""
    from westtek_core.notebooks import MAX_NOTEBOOK_BYTES, read_regular_file

    return read_regular_file(path, MAX_NOTEBOOK_BYTES)


def notebook_document(path: Path, source: str) -> Document:
    """A notebook as Markdown, one section per cell (raises ValueError if unreadable)."""
    import nbformat
    from nbformat.v4.rwbase import rejoin_lines

    data = read_source(path)
    try:
        raw = json.loads(data.decode("utf-8"))
        # a v4 notebook is read as it is; validating every cell would cost more than converting
        notebook = (
            rejoin_lines(nbformat.from_dict(_with_cell_ids(raw)))
            if isinstance(raw, dict) and raw.get("nbformat") == 4
            else nbformat.reads(data.decode("utf-8"), as_version=4)
        )
        _mark_cells_and_summarise_outputs(notebook)
        body, _ = _markdown_exporter().from_notebook_node(notebook)
        body = _INLINE_IMAGE.sub(lambda m: f"[image: {m.group(1) or 'inline'}]", body)
    except Exception as e:  # nbformat and nbconvert raise many kinds for bad notebooks
        raise ValueError(f"cannot convert {source}: {type(e).__name__}: {e}") from e
    kernel = notebook.metadata.get("kernelspec", {}).get("name")
    parts = _CELL_MARK_RE.split(body)
    # the name also as words: FTS keeps "univariate_volatility" one token
    words = re.sub(r"[_\-/.]+", " ", source.removesuffix(".ipynb"))
    title = f"Notebook {source} ({words})" + (f", kernel {kernel}" if kernel else "")
    sections = [
        Section(f"cell {number}", text.strip())
        for number, text in zip(parts[1::2], parts[2::2], strict=True)
        if text.strip()
    ]
    # the title travels with the first cell, so the notebook's name is searchable
    first = sections[0] if sections else Section("cell 0", "")
    sections[:1] = [Section(first.locator, f"{title}\n\n{first.text}".strip())]
    return Document(source, "notebook", fingerprint_bytes(data), tuple(sections))


def lines_document(source: str, kind: str, lines: Iterable[str], fingerprint: str) -> Document:
    """A document of numbered lines (``line N``, from 1)."""
    sections = tuple(
        Section(f"line {n}", line) for n, line in enumerate(lines, start=1) if line.strip()
    )
    return Document(source, kind, fingerprint, sections)


def _flatten(value: Any, prefix: str = "") -> Iterable[str]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flatten(
                item, f"{prefix}{key}." if not isinstance(item, str) else f"{prefix}{key}"
            )
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{prefix}{index}.")
    else:
        yield f"{prefix.rstrip('.')}: {value}"


def experiment_document(path: Path, source: str) -> Document:
    """An experiment log: Markdown lines, or a JSON document flattened to ``key: value``."""
    data = read_source(path)
    text = data.decode("utf-8", errors="replace")
    if path.suffix == ".json":
        try:
            lines = list(_flatten(json.loads(text)))
        except ValueError as e:
            raise ValueError(f"cannot read {source}: not JSON ({e})") from e
    else:
        lines = text.splitlines()
    return lines_document(source, "experiment", lines, fingerprint_bytes(data))


def manifest_document(manifest: Mapping[str, Any]) -> Document:
    """A snapshot's package manifest, a line per fact."""
    sid = str(manifest["id"])
    lines = [
        f"Snapshot {sid[:12]} of environment {manifest.get('environment_id')} taken "
        f"{manifest.get('timestamp')} by {manifest.get('created_by')}",
        f"Snapshot {sid[:12]} note: {manifest.get('notes') or '(none)'}",
        *(f"Snapshot {sid[:12]} label {k}={v}" for k, v in (manifest.get("labels") or {}).items()),
    ]
    for interp in manifest.get("interpreters", []):
        lines.append(
            f"Interpreter {interp.get('label')}: Python {interp.get('version')} "
            f"at {interp.get('path')}"
        )
        for package in interp.get("packages", []):
            how = package.get("installer") or "unknown installer"
            asked = ", requested" if package.get("requested") else ""
            lines.append(
                f"Package {package['name']}=={package['version']} in {interp.get('label')} "
                f"(installed by {how}{asked}) in snapshot {sid[:12]}"
            )
    for kernel in manifest.get("kernels", []):
        spec = kernel.get("spec", {})
        lines.append(
            f"Kernel {kernel['name']} ({spec.get('display_name')}) "
            f"runs {' '.join(spec.get('argv', [])[:1])}"
        )
    for name in manifest.get("metadata", {}).get("configuration_files", []):
        lines.append(f"Jupyter configuration file {name}")
    return lines_document(f"snapshot:{sid}", "manifest", lines, sid)


def summary_document(
    manifest: Mapping[str, Any], notebooks: Iterable[Mapping[str, Any]] = ()
) -> Document:
    """A generated summary of a snapshot: what is installed, kernels, notebooks and their use.

    ``notebooks`` are analyses (path, kernel, imports, data_files) of the snapshot's workspace.
    """
    sid = str(manifest["id"])
    packages = {
        p["name"].lower().replace("_", "-"): p["version"]
        for i in manifest.get("interpreters", [])
        for p in i.get("packages", [])
    }
    interpreters = ", ".join(
        f"Python {i.get('version')} ({len(i.get('packages', []))} packages)"
        for i in manifest.get("interpreters", [])
    )
    kernels = ", ".join(k["name"] for k in manifest.get("kernels", [])) or "none"
    lines = [
        f"Summary of snapshot {sid[:12]} of environment {manifest.get('environment_id')} "
        f"({manifest.get('timestamp')}, by {manifest.get('created_by')}, note: "
        f"{manifest.get('notes') or 'none'}): {interpreters}; kernels {kernels}; "
        f"{manifest.get('metadata', {}).get('notebook_count', 0)} notebooks.",
    ]
    for nb in notebooks:
        imports = sorted({str(m).split(".")[0] for m in nb.get("imports", [])})
        versions = [f"{m} {packages[m]}" if m in packages else m for m in imports]
        reads = ", ".join(nb.get("data_files", [])) or "no data files"
        lines.append(
            f"Notebook {nb['path']} (kernel {nb.get('kernel') or 'default'}) imports "
            f"{', '.join(versions) or 'nothing'} and reads {reads}."
        )
    return Document(
        f"snapshot:{sid}",
        "summary",
        sid,
        tuple(Section(f"line {n}", line) for n, line in enumerate(lines, start=1)),
    )


def install_history_document(
    rows: Iterable[Mapping[str, Any]], source: str = "install-history"
) -> Document:
    """The install history, a line per package change."""
    lines = []
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(float(row["time"])))
        change = f"{row['package']} {row['change']}"
        if row.get("before") or row.get("after"):
            change += f" from {row.get('before') or 'nothing'} to {row.get('after') or 'nothing'}"
        origin = f" by %pip install in {row['notebook']}" if row.get("notebook") else ""
        lines.append(f"{when} UTC in {row.get('environment_id')}: {change}{origin}")
    return lines_document(
        source, "install-history", lines, fingerprint_bytes("\n".join(lines).encode())
    )
