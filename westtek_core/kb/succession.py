"""What a successor needs from a preserved snapshot: its notebooks and the steps to take over.

The lab's memory reads each snapshot's notebooks (``LabMemory.add_snapshot``); from the same
reading this module keeps, per snapshot, what each notebook imports, which kernel it runs
on and which data it reads (and whether the snapshot holds that data), and turns those facts
into an onboarding checklist: which data to obtain, which kernels to install, which
notebooks to run in what order. Nothing here is fixed text about a generic lab.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from westtek_core.snapshot.manifest import AREA_WORKSPACE, iter_files

_NUMBER = re.compile(r"(\d+)")


def run_order(paths: Iterable[str]) -> list[str]:
    """Notebooks in the order a person runs them: natural order (``2_fit`` before ``10_plot``)."""

    def key(path: str) -> list[Any]:
        return [int(part) if part.isdigit() else part.lower() for part in _NUMBER.split(path)]

    return sorted(paths, key=key)


def notebook_facts(
    manifest: Mapping[str, Any], analyses: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """Per notebook of a snapshot: kernel, top-level imports, data read and whether it is held.

    ``analyses`` are ``NotebookAnalysis`` dicts (path, kernel, imports, data_files) of the
    snapshot's notebooks. The kernels are the snapshot's own kernelspecs.
    """
    held = {
        item.path
        for item in iter_files(manifest)
        if item.area == AREA_WORKSPACE and item.entry.get("kind", "file") == "file"
    }
    notebooks: list[dict[str, Any]] = []
    for analysis in analyses:
        imports = sorted({str(m).split(".")[0] for m in analysis.get("imports") or ()})
        reads = [
            {"path": str(path), "in_snapshot": str(path) in held}
            for path in analysis.get("data_files") or ()
        ]
        notebooks.append(
            {
                "path": str(analysis["path"]),
                "kernel": analysis.get("kernel"),
                "imports": imports,
                "reads": [r["path"] for r in reads],
                "missing_data": [r["path"] for r in reads if not r["in_snapshot"]],
            }
        )
    order = run_order(str(nb["path"]) for nb in notebooks)
    notebooks.sort(key=lambda nb: order.index(str(nb["path"])))
    kernels = [
        {"name": str(k.get("name")), "display_name": (k.get("spec") or {}).get("display_name")}
        for k in manifest.get("kernels", [])
    ]
    return {"notebooks": notebooks, "kernels": kernels}


def onboarding_checklist(
    environment_id: str, snapshot_id: str, facts: Mapping[str, Any], *, taken_over: bool = False
) -> list[str]:
    """The steps for the environment's successor, from a snapshot's notebook facts.

    ``taken_over``: the successor already brought the snapshot into their workspace (the
    start page of a take-over), so the first step, taking it over, is left out.
    """
    notebooks = list(facts.get("notebooks") or [])
    kernels = {k["name"]: k for k in facts.get("kernels") or []}
    short = snapshot_id[:12]
    steps = (
        []
        if taken_over
        else [
            f"Take over snapshot {short} of {environment_id} (Take over, on its transfer "
            "package): its notebooks and data come into a folder of your workspace, its packages "
            "and kernels as a kernel of their own (or restore it whole with "
            f"`westtek snapshot restore {short} --to ./{environment_id}`)."
        ]
    )
    by_kernel: dict[str, list[str]] = {}
    for nb in notebooks:
        by_kernel.setdefault(nb.get("kernel") or "the default kernel", []).append(nb["path"])
    for kernel, paths in sorted(by_kernel.items()):
        where = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        if kernel in kernels:
            shown = kernels[kernel].get("display_name") or kernel
            held = "installed with this folder" if taken_over else "in the snapshot"
            steps.append(f"Use kernel {kernel} ({shown}), {held}, for {where}.")
        else:
            steps.append(f"Install kernel {kernel}: {where} run on it, and the snapshot lacks it.")
    missing: dict[str, list[str]] = {}
    for nb in notebooks:
        for path in nb.get("missing_data") or []:
            missing.setdefault(path, []).append(nb["path"])
    for path, readers in sorted(missing.items()):
        steps.append(
            f"Obtain {path}: {', '.join(readers[:3])} read it, and the snapshot does not hold it."
        )
    if notebooks:
        steps.append(
            "Run the notebooks in this order and compare their outputs with the snapshot's: "
            + ", ".join(nb["path"] for nb in notebooks)
            + "."
        )
    steps.append(
        "Ask the Knowledge Transfer agent why each notebook and pinned package is as it is; "
        "every answer cites the snapshot it comes from."
    )
    steps.append("Take a snapshot under your name once the environment reproduces.")
    return steps
