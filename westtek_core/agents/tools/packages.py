"""The package tools: a package's changelog between two versions, and its install history.

``GetPackageChangelog`` compares the two versions' public APIs offline (``api_diff``) and
names the notebook cells the changes touch; ``GetPackageInstallHistory`` joins the
installs seen live, the versions per snapshot, the pins in requirement files and the
``%pip install`` cells.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from westtek_core.agents.api_diff import (
    PackageSource,
    affected_uses,
    all_paths,
    diff_api,
    diff_metadata,
    find_api_uses,
    public_api,
    release_notes_between,
    source_from_directory,
    source_from_snapshot,
)
from westtek_core.agents.tools.arguments import EnvironmentId, Text, ToolArguments
from westtek_core.agents.tools.common import (
    MAX_LIST,
    first_cell,
    format_time,
    notebook_rows,
    package_version,
    short_id,
)
from westtek_core.agents.tools.context import ToolContext
from westtek_core.agents.tools.results import (
    JSON,
    Citation,
    Fact,
    ToolError,
    ToolResult,
    cell_citation,
    snapshot_citation,
)
from westtek_core.drift.report import version_direction
from westtek_core.notebooks import read_regular_file


class PackageChangelogArguments(ToolArguments):
    """GetPackageChangelog: a package and two versions (default: its current drift)."""

    package_name: Text
    old_version: str | None = None
    new_version: str | None = None


class PackageInstallHistoryArguments(ToolArguments):
    """GetPackageInstallHistory: one package's timeline in this environment."""

    environment_id: EnvironmentId = None
    package_name: Text


def _origin(origin: str) -> str:
    if origin.startswith("snapshot:"):
        return f"snapshot {short_id(origin.removeprefix('snapshot:'))}"
    return "the live environment" if origin == "live" else origin


def _live_version(ctx: ToolContext, name: str) -> str | None:
    wanted = canonicalize_name(name)
    for interp in ctx.view().get("interpreters", []):
        for package in interp.get("packages", []):
            if canonicalize_name(str(package["name"])) == wanted:
                return str(package["version"])
    return None


def _find_sources(ctx: ToolContext, package: str, version: str) -> PackageSource | None:
    """A version's source: from the newest snapshot holding it, else from the live install."""
    repo = ctx.repo()
    for manifest in reversed(ctx.manifests()):
        if repo is not None and package_version(manifest, package) == version:
            found = source_from_snapshot(repo, manifest, package, version)
            if found is not None and found.modules:
                return found
    # the version installed right now (a drift not snapshotted yet): probe for its RECORD
    if _live_version(ctx, package) == version:
        from westtek_core.capture import ProbeError, probe_interpreter

        for python in _interpreter_paths(ctx):
            try:
                info = probe_interpreter(python)
            except ProbeError:
                continue
            site = (info.get("paths") or {}).get("purelib")
            for dist in info.get("distributions", []):
                same = canonicalize_name(str(dist["name"])) == canonicalize_name(package)
                if same and str(dist["version"]) == version and site:
                    files = list(dist.get("files", []))
                    return source_from_directory(Path(site), str(dist["name"]), version, files)
    return None


def _interpreter_paths(ctx: ToolContext) -> list[str]:
    return [str(i["path"]) for i in ctx.view().get("interpreters", []) if i.get("path")]


def _versions_from_drift(ctx: ToolContext, package: str) -> tuple[str | None, str | None]:
    wanted = canonicalize_name(package)
    for change in ctx.drift().get("changes", []):
        if change.get("kind") == "package" and canonicalize_name(str(change["name"])) == wanted:
            return change.get("before"), change.get("after")
    baseline = ctx.baseline()
    before = package_version(baseline, package) if baseline else None
    return before, _live_version(ctx, package)


def get_package_changelog(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """Offline changelog: the public API diff of two versions, and the notebooks it touches."""
    package = str(args["package_name"])
    old, new = args.get("old_version"), args.get("new_version")
    if not old or not new:
        drift_old, drift_new = _versions_from_drift(ctx, package)
        old, new = old or drift_old, new or drift_new
    if not old or not new:
        live = _live_version(ctx, package)
        if not args.get("old_version") and not args.get("new_version"):
            if live and live == drift_old:
                raise ToolError(
                    f"{package} is installed at {live} now, as in the baseline: it has not "
                    "changed, so there is no upgrade to compare (give two versions to compare)"
                )
            if not live and not drift_old:
                raise ToolError(
                    f"{package} is not installed in this environment and was not in the "
                    "baseline: there is no upgrade of it to compare"
                )
        raise ToolError(
            f"name the two versions of {package} to compare (no drift of it to take them from)"
        )
    if old == new:
        raise ToolError(f"{package} {old}: the two versions are the same")
    before, after = _find_sources(ctx, package, str(old)), _find_sources(ctx, package, str(new))
    missing = [v for v, s in ((old, before), (new, after)) if s is None]
    if before is None or after is None:
        return ToolResult(
            {
                "package": package,
                "old_version": old,
                "new_version": new,
                "missing": missing,
                "api_changes": [],
            },
            [
                Fact(
                    f"The source of {package} {' and '.join(map(str, missing))} is in no "
                    "snapshot of this environment nor installed now, so its API cannot be "
                    "compared offline.",
                    topic=package,
                )
            ],
        )
    old_api, new_api = public_api(before), public_api(after)
    changes = diff_api(old_api, new_api)
    uses = find_api_uses(ctx.root, before.top_level | after.top_level)
    old_paths = all_paths(before)
    origin_cites = tuple(
        ctx.package_citation(s.origin.removeprefix("snapshot:"), package)
        for s in (before, after)
        if s.origin.startswith("snapshot:")
    )
    facts: list[Fact] = []
    reported: list[JSON] = []
    used_count = 0
    by_notebook: dict[str, dict[str, set[int]]] = {}  # notebook → changed name → cells
    for change in changes:
        hits = affected_uses(change, uses, old_paths)
        if change.change != "added":
            for use in hits:
                cells = by_notebook.setdefault(use.notebook, {}).setdefault(change.name, set())
                cells.add(use.cell)
        row = change.to_json()
        row["used_by"] = [
            {"notebook": u.notebook, "cell": u.cell, "name": u.name, "called": u.called}
            for u in hits
        ]
        if hits:
            used_count += 1
        if change.change != "added" and (hits or len(reported) < 40):
            reported.append(row)
        if change.change == "added" or (not hits and not change.breaking):
            continue
        where = sorted({(u.notebook, u.cell) for u in hits})
        cites = tuple(cell_citation(nb, cell) for nb, cell in where) + origin_cites
        users = "; ".join(f"{nb} cell {cell}" for nb, cell in where)
        describe = {
            "removed": f"`{change.name}{change.before or ''}` was removed",
            "signature_changed": (
                f"`{change.name}` changed signature {change.before} → {change.after}"
            ),
            "kind_changed": f"`{change.name}` is no longer a {change.before}",
            "deprecated": f"`{change.name}` is deprecated",
        }[change.change]
        detail = f" ({'; '.join(change.details)})" if change.details else ""
        facts.append(
            Fact(
                f"{package} {old} → {new}: {describe}{detail}"
                + (f"; used in {users}" if users else "; no notebook uses it")
                + ".",
                cites,
                topic=package,
            )
        )
    metadata = diff_metadata(before.metadata, after.metadata)
    notes: list[str] = []
    for text in after.release_notes.values():
        notes = release_notes_between(text, str(old), str(new))
        if notes:
            break
    added = [c.name for c in changes if c.change == "added"]
    breaking = [c for c in changes if c.breaking]
    facts.insert(
        0,
        Fact(
            f"{package} {old} → {new}: {len(breaking)} breaking public API change(s), "
            f"{len(added)} addition(s); {used_count} change(s) touch what the notebooks use "
            f"(compared from {_origin(before.origin)} and {_origin(after.origin)}).",
            origin_cites,
            topic=package,
        ),
    )
    for position, (notebook, names) in enumerate(sorted(by_notebook.items()), start=1):
        listed = "; ".join(
            f"`{name}` (cell{'s' if len(cells) > 1 else ''} "
            f"{', '.join(str(c) for c in sorted(cells))})"
            for name, cells in sorted(names.items(), key=lambda kv: (min(kv[1]), kv[0]))
        )
        every_cell = sorted({c for cells in names.values() for c in cells})
        facts.insert(
            position,
            Fact(
                f"{notebook} uses {len(names)} API(s) of {package} that changed from {old} to "
                f"{new}: {listed}.",
                tuple(cell_citation(notebook, c) for c in every_cell[:6]),
                topic=package,
            ),
        )
    if metadata:
        facts.append(
            Fact(
                f"{package} {new} metadata: " + "; ".join(metadata) + ".",
                origin_cites,
                topic=package,
            )
        )
    return ToolResult(
        {
            "package": package,
            "old_version": old,
            "new_version": new,
            "compared": [before.origin, after.origin],
            "api_changes": reported,
            "added": added[:MAX_LIST],
            "added_count": len(added),
            "metadata_changes": metadata,
            "release_notes": notes,
        },
        facts,
    )


def _package_timeline(ctx: ToolContext, package: str) -> list[JSON]:
    timeline: list[JSON] = []
    previous: str | None = None
    for manifest in ctx.manifests():
        version = package_version(manifest, package)
        if version != previous:
            timeline.append(
                {
                    "snapshot": manifest["id"],
                    "timestamp": manifest.get("timestamp"),
                    "version": version,
                    "notes": manifest.get("notes", ""),
                }
            )
        previous = version
    return timeline


_REQUIREMENT_FILE = re.compile(
    r"^(?:.*requirements.*\.(?:txt|in)|constraints.*\.txt|environment.*\.ya?ml|pyproject\.toml|"
    r"setup\.cfg|Pipfile)$",
    re.I,
)
_SKIP_DIRS = {
    ".git",
    "node_modules",
    ".venv",
    "venv",
    "site-packages",
    "__pycache__",
    ".ipynb_checkpoints",
}


_MAX_REQUIREMENTS_BYTES = 16 << 20


def requirement_files(root: Path, max_files: int = 50, max_depth: int = 4) -> list[str]:
    """Requirement and environment files in the workspace (relative POSIX paths)."""
    found: list[str] = []
    base_depth = len(root.parts)
    for directory, dirnames, filenames in os.walk(root):
        depth = len(Path(directory).parts) - base_depth
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        if depth >= max_depth:
            dirnames[:] = []
        for filename in sorted(filenames):
            if _REQUIREMENT_FILE.match(filename):
                found.append((Path(directory) / filename).relative_to(root).as_posix())
                if len(found) >= max_files:
                    return found
    return found


def _mentions(text: str, package: str) -> bool:
    pattern = re.escape(package).replace(r"\-", "[-_.]").replace("_", "[-_.]")
    return re.search(rf"(?<![\w.-]){pattern}(?![\w-])", text, re.I) is not None


def get_package_install_history(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """A package's timeline: installs seen live, versions per snapshot, pins and %pip cells."""
    ctx.check_environment(args)
    package = str(args["package_name"])
    wanted = canonicalize_name(package)
    # numbered over the environment's history, as the knowledge base's lines are
    history = ctx.service.event_log.install_history(ctx.environment_id)
    rows = [
        {"line": n, **row}
        for n, row in enumerate(history, start=1)
        if canonicalize_name(str(row["package"])) == wanted
    ]
    facts: list[Fact] = []
    for row in rows:
        source = f" by {row['notebook']}" if row.get("notebook") else ""
        facts.append(
            Fact(
                f"{format_time(row['time'])}: {row['package']} {row['change']} "
                f"{row.get('before') or '-'} → {row.get('after') or '-'}{source}.",
                (Citation("install-history", f"line {row['line']}"),),
                package,
            )
        )
    timeline = _package_timeline(ctx, package)
    for step in timeline:
        version = step["version"] or "not installed"
        note = f" (snapshot note: “{step['notes']}”)" if step.get("notes") else ""
        facts.append(
            Fact(
                f"Snapshot {short_id(step['snapshot'])} ({format_time(step['timestamp'])}): "
                f"{package} "
                f"{version}{note}.",
                (ctx.package_citation(step["snapshot"], package),),
                package,
            )
        )
    pins: list[JSON] = []
    for relative in requirement_files(ctx.root):
        try:  # a regular file only: a FIFO named requirements.txt would block forever
            data = read_regular_file(ctx.root / relative, _MAX_REQUIREMENTS_BYTES)
        except OSError:
            continue
        lines = data.decode("utf-8", errors="replace").splitlines()[:5000]
        for number, line in enumerate(lines, start=1):
            if _mentions(line, package):
                comment = ""
                if "#" in line:
                    comment = line.split("#", 1)[1].strip()
                elif number > 1 and lines[number - 2].lstrip().startswith("#"):
                    comment = lines[number - 2].lstrip("# ").strip()
                pins.append(
                    {"file": relative, "line": number, "text": line.strip(), "comment": comment}
                )
                why = f" — comment: “{comment}”" if comment else ""
                facts.append(
                    Fact(
                        f"{relative} line {number} declares "
                        f"`{line.split('#', 1)[0].strip()}`{why}.",
                        (Citation(relative, f"line {number}"),),
                        package,
                    )
                )
    pip_cells: list[JSON] = []
    for row in notebook_rows(ctx):
        for requirement in row["pip_installs"]:
            if _mentions(requirement, package):
                cell = first_cell(ctx.root / row["path"], requirement.split("==")[0])
                pip_cells.append(
                    {"notebook": row["path"], "cell": cell, "requirement": requirement}
                )
                facts.append(
                    Fact(
                        f"{row['path']} installs `{requirement}` with %pip.",
                        (cell_citation(row["path"], cell),),
                        package,
                    )
                )
    live = _live_version(ctx, package)
    importers = sorted(
        {
            nb
            for i in ctx.view().get("interpreters", [])
            for p in i["packages"]
            if canonicalize_name(str(p["name"])) == wanted
            for nb in p.get("imported_by", [])
        }
    )
    import_cells = {r["path"]: r["import_cell"] for r in notebook_rows(ctx)}
    baseline = ctx.baseline()
    before = package_version(baseline, package) if baseline else None
    known = bool(live or before or rows or pins or pip_cells or any(s["version"] for s in timeline))
    status = _package_status(package, live, before, baseline, known)
    if status or importers:
        used = f"; imported by {', '.join(importers)}" if importers else ""
        cites = tuple(cell_citation(nb, import_cells.get(nb)) for nb in importers[:3])
        if baseline and (live or before):
            cites = (ctx.package_citation(str(baseline["id"]), package), *cites)
        elif baseline:  # the snapshot's record, where the package is not
            cites = (snapshot_citation(str(baseline["id"])), *cites)
        facts.insert(0, Fact(f"{status}{used}.", cites, package))
    return ToolResult(
        {
            "package": package,
            "installed": live,
            "baseline_version": before,
            "changed_since_baseline": bool(baseline) and before != live,
            "known": known,
            "imported_by": importers,
            "install_history": rows[-MAX_LIST:],
            "snapshots": timeline,
            "pins": pins,
            "pip_cells": pip_cells,
        },
        facts,
        untrusted=bool(pins),
    )


def _package_status(
    package: str,
    live: str | None,
    before: str | None,
    baseline: Mapping[str, Any] | None,
    known: bool,
) -> str:
    """One sentence: the package's version in the baseline and now (no final stop)."""
    if baseline is None:
        return f"{package} is {'installed at ' + live if live else 'not installed'} now"
    short = short_id(baseline["id"])
    if before == live and live:
        return (
            f"{package} is installed at {live} now, as in baseline snapshot {short}: it has "
            "not changed"
        )
    if before and live:
        direction = version_direction(before, live)
        return f"{package} {direction}: {before} in baseline snapshot {short}, {live} installed now"
    if live:
        return f"{package} was added: not in baseline snapshot {short}, {live} installed now"
    if before:
        return f"{package} was removed: {before} in baseline snapshot {short}, not installed now"
    if not known:
        return (
            f"{package} is not installed in this environment and has not changed since baseline "
            f"snapshot {short}: no snapshot, requirement file or notebook names it"
        )
    return f"{package} is not installed now, nor in baseline snapshot {short}"
