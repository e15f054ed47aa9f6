"""The environment tools: its record, configuration, notebooks, snapshots and researcher.

Also the two recommendation tools (a snapshot, a rollback): they say what to run and
why, and change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from westtek_core.agents.tools.arguments import EnvironmentId, Text, ToolArguments
from westtek_core.agents.tools.common import MAX_LIST, format_time, notebook_rows, short_id
from westtek_core.agents.tools.context import ToolContext
from westtek_core.agents.tools.results import (
    JSON,
    Fact,
    ToolError,
    ToolResult,
    cell_citation,
    snapshot_citation,
)


class ResearcherProfileArguments(ToolArguments):
    """GetResearcherProfile: one researcher (default: the one who took the snapshots)."""

    researcher_id: str | None = None


class SnapshotRecommendationArguments(ToolArguments):
    """CreateSnapshotRecommendation: why a snapshot should be taken now."""

    environment_id: EnvironmentId = None
    reason: Text


class RollbackRecommendationArguments(ToolArguments):
    """CreateRollbackRecommendation: the snapshot to go back to (default: the baseline)."""

    environment_id: EnvironmentId = None
    target_snapshot_id: str | None = None


def get_environment_notebooks(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """The notebooks, what they import, which data they read and which files they write."""
    ctx.check_environment(args)
    rows = notebook_rows(ctx)
    facts: list[Fact] = []
    for row in rows:
        path = row["path"]
        if row["error"]:
            facts.append(
                Fact(
                    f"{path} could not be analysed: {row['error']}.",
                    (cell_citation(path, 0),),
                    path,
                )
            )
            continue
        cell = row["import_cell"]
        imports = ", ".join(row["imports"]) or "nothing"
        facts.append(
            Fact(
                f"{path} (kernel {row['kernel'] or 'unspecified'}) imports {imports}.",
                (cell_citation(path, cell),),
                path,
            )
        )
        for read in row["reads"]:
            missing = "" if read["exists"] else " (missing from the workspace now)"
            facts.append(
                Fact(
                    f"{path} reads {read['path']}{missing}.",
                    (cell_citation(path, read["cell"]),),
                    path,
                )
            )
        for write in row["writes"]:
            facts.append(
                Fact(
                    f"{path} writes {write['path']}.",
                    (cell_citation(path, write["cell"]),),
                    path,
                )
            )
    return ToolResult({"environment_id": ctx.environment_id, "notebooks": rows}, facts)


def get_environment_config(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """Interpreters, kernels, Jupyter config files and lab extensions (no file contents)."""
    ctx.check_environment(args)
    view = ctx.view()
    baseline = ctx.baseline()
    cite = (snapshot_citation(baseline["id"]),) if baseline else ()
    interpreters = [
        {
            "label": i["label"],
            "path": i["path"],
            "version": i.get("version"),
            "packages": len(i.get("packages", [])),
        }
        for i in view.get("interpreters", [])
    ]
    facts = [
        Fact(
            f"Interpreter {i['label']}: Python {str(i['version'] or '?').split()[0]} at "
            f"{i['path']} with {i['packages']} packages.",
            cite,
        )
        for i in interpreters
    ]
    facts += [
        Fact(
            f"Kernel {k['name']} ({k['display_name']}) runs {' '.join(k['argv'][:1])}"
            + (f" (interpreter {k['interpreter']})" if k.get("interpreter") else "")
            + ".",
            cite,
            str(k["name"]),
        )
        for k in view.get("kernels", [])
    ]
    facts += [
        Fact(
            f"Jupyter config file {c['dir']}/{c['path']} ({c['size']} bytes).", cite, str(c["path"])
        )
        for c in view.get("config_files", [])[:MAX_LIST]
    ]
    return ToolResult(
        {
            "environment_id": ctx.environment_id,
            "interpreters": interpreters,
            "kernels": view.get("kernels", []),
            "config_files": view.get("config_files", []),
            "labextensions": view.get("labextensions", []),
            "drift": view.get("drift"),
        },
        facts,
    )


def get_environment_details(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """The environment's record: drift status, baseline, snapshots, interpreters, packages."""
    ctx.check_environment(args)
    view = ctx.view()
    manifests = ctx.manifests()
    baseline = ctx.baseline()
    latest = manifests[-1] if manifests else None
    packages = sorted(
        {
            f"{p['name']}=={p['version']}"
            for i in view.get("interpreters", [])
            for p in i["packages"]
        }
    )
    data: JSON = {
        "environment_id": ctx.environment_id,
        "root": view.get("root"),
        "drift_status": view.get("drift"),
        "baseline": baseline["id"] if baseline else None,
        "configuration_hash": baseline.get("checksum") if baseline else None,
        "container_image": latest.get("container_image") if latest else None,
        "snapshot_count": len(manifests),
        "latest_snapshot": latest["id"] if latest else None,
        "notebook_count": len(ctx.notebooks()),
        "interpreters": [
            {"label": i["label"], "version": i.get("version"), "packages": len(i["packages"])}
            for i in view.get("interpreters", [])
        ],
        "kernels": [k["name"] for k in view.get("kernels", [])],
        "packages": packages,
    }
    cites = (snapshot_citation(baseline["id"]),) if baseline else ()
    facts = [
        Fact(
            f"Environment {ctx.environment_id}: drift {data['drift_status']}, "
            f"{len(manifests)} snapshot(s), {data['notebook_count']} notebook(s), "
            f"{len(packages)} installed package(s)"
            + (
                f", baseline {short_id(baseline['id'])} ({format_time(baseline.get('timestamp'))})"
                if baseline
                else ""
            )
            + ".",
            cites,
        )
    ]
    return ToolResult(data, facts)


def get_snapshot_history(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """The environment's snapshots, oldest first, with what changed in packages each time."""
    ctx.check_environment(args)
    manifests = ctx.manifests()
    baseline = ctx.baseline()
    rows: list[JSON] = []
    facts: list[Fact] = []
    previous: dict[str, str] = {}
    for manifest in manifests:
        packages = {
            str(p["name"]): str(p["version"])
            for i in manifest.get("interpreters", [])
            for p in i.get("packages", [])
        }
        changed = (
            sorted(
                f"{n} {previous.get(n, '-')} → {packages.get(n, '-')}"
                for n in set(previous) | set(packages)
                if previous.get(n) != packages.get(n)
            )
            if previous
            else []
        )
        previous = packages
        is_baseline = bool(baseline and baseline["id"] == manifest["id"])
        rows.append(
            {
                "id": manifest["id"],
                "timestamp": manifest.get("timestamp"),
                "created_by": manifest.get("created_by"),
                "notes": manifest.get("notes", ""),
                "labels": manifest.get("labels", {}),
                "packages": len(packages),
                "notebook_count": manifest.get("metadata", {}).get("notebook_count", 0),
                "baseline": is_baseline,
                "package_changes": changed[:MAX_LIST],
            }
        )
        note = f" — “{manifest['notes']}”" if manifest.get("notes") else ""
        delta = f"; packages changed: {', '.join(changed[:6])}" if changed else ""
        facts.append(
            Fact(
                f"Snapshot {short_id(manifest['id'])} taken "
                f"{format_time(manifest.get('timestamp'))} by "
                f"{manifest.get('created_by')}{' (the baseline)' if is_baseline else ''}"
                f"{note}{delta}.",
                (snapshot_citation(manifest["id"]),),
            )
        )
    if not manifests:
        facts.append(Fact(f"Environment {ctx.environment_id} has no snapshot yet."))
    return ToolResult({"environment_id": ctx.environment_id, "snapshots": rows}, facts)


def get_researcher_profile(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """Who built this environment: their snapshots, notes and notebooks, from the record."""
    manifests = ctx.manifests()
    wanted = args.get("researcher_id")
    creators = sorted({str(m.get("created_by")) for m in manifests if m.get("created_by")})
    researcher = str(wanted) if wanted else (creators[0] if len(creators) == 1 else None)
    theirs = [m for m in manifests if researcher is None or m.get("created_by") == researcher]
    if researcher and not theirs:
        raise ToolError(f"researcher {researcher!r} took no snapshot of {ctx.environment_id}")
    notebooks = [row["path"] for row in notebook_rows(ctx)]
    data: JSON = {
        "researcher_id": researcher,
        "researchers": creators,
        "environments": [ctx.environment_id],
        "snapshots": [
            {"id": m["id"], "timestamp": m.get("timestamp"), "notes": m.get("notes", "")}
            for m in theirs[-MAX_LIST:]
        ],
        "first_activity": theirs[0].get("timestamp") if theirs else None,
        "last_activity": theirs[-1].get("timestamp") if theirs else None,
        "notebooks": notebooks,
    }
    facts = []
    if theirs:
        who = researcher or ", ".join(creators)
        facts.append(
            Fact(
                f"{who} took {len(theirs)} snapshot(s) of {ctx.environment_id} between "
                f"{format_time(data['first_activity'])} and {format_time(data['last_activity'])}.",
                (snapshot_citation(theirs[0]["id"]), snapshot_citation(theirs[-1]["id"])),
            )
        )
        for manifest in theirs:
            if manifest.get("notes"):
                facts.append(
                    Fact(
                        f"{manifest.get('created_by')} noted on snapshot "
                        f"{short_id(manifest['id'])}: "
                        f"“{manifest['notes']}”.",
                        (snapshot_citation(manifest["id"]),),
                    )
                )
    return ToolResult(data, facts)


def create_snapshot_recommendation(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """Recommend taking a snapshot now, saying why and how (nothing is done)."""
    ctx.check_environment(args)
    reason = str(args["reason"]).strip()[:300]
    drift = ctx.drift()
    note = reason.replace('"', "'")
    command = f'westtek snapshot create --note "{note}"'
    base = drift.get("baseline")
    cites = (snapshot_citation(str(base)),) if base else ()
    return ToolResult(
        {
            "recommendation": "snapshot",
            "environment_id": ctx.environment_id,
            "reason": reason,
            "command": command,
            "current_status": drift.get("status"),
            "applied": False,
        },
        [
            Fact(
                f"Recommendation: take a snapshot now ({reason}); run `{command}` or use "
                "the Snapshots panel. Nothing has been changed.",
                cites,
            )
        ],
    )


def create_rollback_recommendation(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """Recommend rolling back to a snapshot (the baseline by default); nothing is done."""
    ctx.check_environment(args)
    target_id = args.get("target_snapshot_id")
    target = ctx.manifest(str(target_id)) if target_id else ctx.baseline()
    if target is None:
        raise ToolError("there is no snapshot to roll back to")
    drift = ctx.drift()
    undone = [
        c for c in drift.get("changes", []) if c.get("kind") in ("package", "kernel", "config")
    ]
    command = f"westtek rollback --to {short_id(target['id'])}"
    return ToolResult(
        {
            "recommendation": "rollback",
            "environment_id": ctx.environment_id,
            "target_snapshot_id": target["id"],
            "command": command,
            "would_undo": undone[:MAX_LIST],
            "applied": False,
            "safety": "westtek rollback takes a safety snapshot first; `westtek rollback --undo` "
            "puts it back",
        },
        [
            Fact(
                f"Recommendation: roll back to snapshot {short_id(target['id'])} "
                f"({format_time(target.get('timestamp'))}) with `{command}`, undoing {len(undone)} "
                "package/kernel/config change(s); a safety snapshot is taken first and "
                "`westtek rollback --undo` reverses it. Nothing has been changed.",
                (snapshot_citation(target["id"]),),
            )
        ],
    )
