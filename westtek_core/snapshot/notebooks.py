"""Re-run restored notebooks in their restored kernels and compare outputs with the stored ones."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

# Object addresses and timings differ on every run without meaning anything.
_VOLATILE = re.compile(r"0x[0-9a-f]{6,}|\d+(\.\d+)? ?(ms|µs|us|ns|s) ± .*")


def _output_text(output: Mapping[str, Any]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return f"[{output.get('name')}] {output.get('text', '')}"
    if kind == "error":
        return f"[error] {output.get('ename')}: {output.get('evalue')}"
    data = output.get("data", {})
    if "text/plain" in data:
        return f"[{kind}] {data['text/plain']}"
    return f"[{kind}] {', '.join(sorted(data))}"


def cell_outputs(cell: Mapping[str, Any]) -> str:
    """A code cell's outputs as comparable text (text/plain, streams, error names)."""
    text = "\n".join(_output_text(o) for o in cell.get("outputs", []))
    return _VOLATILE.sub("…", text)


def compare_outputs(stored: Any, rerun: Any) -> list[dict[str, Any]]:
    """Every code cell whose outputs differ between two runs of a notebook."""
    differences = []
    for index, (before, after) in enumerate(zip(stored.cells, rerun.cells, strict=True)):
        if before.cell_type != "code":
            continue
        old, new = cell_outputs(before), cell_outputs(after)
        if old != new:
            differences.append({"cell": index, "before": old, "after": new})
    return differences


def rerun_notebook(path: Path, kernels_dir: Path, timeout: float = 600) -> dict[str, Any]:
    """Execute one notebook in the restored kernel its metadata names; report differences."""
    stored = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    kernel = stored.metadata.get("kernelspec", {}).get("name", "")
    result: dict[str, Any] = {"notebook": path.name, "kernel": kernel, "differences": []}
    specs = KernelSpecManager(kernel_dirs=[str(kernels_dir)], ensure_native_kernel=False)
    if kernel not in specs.find_kernel_specs():
        result["ok"] = False
        result["error"] = f"kernel {kernel!r} is not part of the snapshot"
        return result
    rerun = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    manager = KernelManager(kernel_name=kernel, kernel_spec_manager=specs)
    client = NotebookClient(
        rerun,
        km=manager,
        timeout=timeout,
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    except (CellExecutionError, RuntimeError, OSError, TimeoutError) as e:
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
    result["differences"] = compare_outputs(stored, rerun)
    result["ok"] = "error" not in result and not result["differences"]
    return result


def rerun_notebooks(workspace: Path, kernels_dir: Path) -> list[dict[str, Any]]:
    """Re-run every notebook of a restored workspace (checkpoints aside)."""
    return [
        rerun_notebook(path, kernels_dir)
        for path in sorted(workspace.rglob("*.ipynb"))
        if ".ipynb_checkpoints" not in path.parts
    ]
