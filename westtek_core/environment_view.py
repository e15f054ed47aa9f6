"""What the Environment tab shows of a live capture: interpreters, packages, kernels, config.

Pure: from a capture, its live manifest and the notebooks' use (the grading context), with
each package's importing notebooks and each kernel's interpreter resolved.
"""

from __future__ import annotations

from typing import Any

from packaging.utils import canonicalize_name

from westtek_core.capture.model import Capture
from westtek_core.drift import GradingContext
from westtek_core.snapshot.manifest import first_by_name


def describe_environment(
    capture: Capture, live: dict[str, Any], context: GradingContext
) -> dict[str, Any]:
    """Interpreters (packages with the notebooks importing each), kernels, config files."""
    imported_by: dict[tuple[str | None, str], list[str]] = {}
    for path, use in sorted(context.notebooks.items()):
        for dist in use.distributions:
            imported_by.setdefault((use.interpreter, dist), []).append(path)
    interpreters = [
        {
            "label": interp["label"],
            "path": interp["path"],
            "prefix": interp.get("prefix"),
            "version": interp.get("version"),
            "packages": [
                {
                    "name": p["name"],
                    "version": p["version"],
                    "installer": p.get("installer"),
                    "imported_by": imported_by.get(
                        (interp["label"], canonicalize_name(p["name"])), []
                    ),
                }
                # what import finds: a shadowed copy (the suite's, under hers) is not
                for p in sorted(
                    first_by_name(interp["packages"]).values(),
                    key=lambda p: str(p["name"]).lower(),
                )
            ],
        }
        for interp in live["interpreters"]
    ]
    labels = {i["path"]: i["label"] for i in live["interpreters"]}
    labels |= {i["executable"]: i["label"] for i in live["interpreters"] if i["executable"]}
    kernels = [
        {
            "name": k.name,
            "display_name": str(k.spec.get("display_name", k.name)),
            "language": k.spec.get("language"),
            "argv": list(k.spec.get("argv", [])),
            "interpreter": labels.get((k.spec.get("argv") or [""])[0]),
        }
        for k in capture.kernels
    ]
    config_files = [
        {"dir": c.dir, "path": e.path, "size": e.size}
        for c in capture.config
        for e in c.tree.entries
        if e.kind == "file"
    ]
    return {
        "interpreters": interpreters,
        "kernels": kernels,
        "config_files": config_files,
        "labextensions": list(capture.labextensions),
    }
