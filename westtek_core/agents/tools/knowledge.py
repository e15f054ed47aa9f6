"""The knowledge-transfer tools: the hand-over summary, the onboarding checklist, search.

What a successor receives is built from the other tools' results (details, notebooks,
snapshots, drift history) plus the experiment logs and requirement files; the search
reads only this lab's knowledge base, and its passages are marked untrusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from westtek_core.agents.tools.arguments import PassageKind, Text, ToolArguments
from westtek_core.agents.tools.common import first_cell, format_time, notebook_rows, short_id
from westtek_core.agents.tools.context import ToolContext
from westtek_core.agents.tools.drift import get_drift_history
from westtek_core.agents.tools.environment import (
    get_environment_details,
    get_environment_notebooks,
    get_snapshot_history,
)
from westtek_core.agents.tools.packages import requirement_files
from westtek_core.agents.tools.results import (
    JSON,
    Citation,
    Fact,
    ToolResult,
    cell_citation,
    snapshot_citation,
)
from westtek_core.kb.lab_client import LabMemoryUnavailable


class SearchArguments(ToolArguments):
    """SearchKnowledgeBase: what to look for, how many passages, which kinds."""

    query: Text
    k: int | None = Field(None, description="How many passages (5)")
    kinds: list[PassageKind] | None = None


def _experiments(ctx: ToolContext) -> list[str]:
    folder = ctx.root / "experiments"
    if not folder.is_dir():
        return []
    return sorted(
        p.relative_to(ctx.root).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in (".json", ".md", ".markdown", ".txt")
    )[:100]


def get_transfer_package(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """The knowledge-transfer summary: environment, notebooks, data, history, experiments."""
    ctx.check_environment(args)
    details = get_environment_details(ctx, {})
    notebooks = get_environment_notebooks(ctx, {})
    snapshots = get_snapshot_history(ctx, {})
    drift = get_drift_history(ctx, {})
    experiments = _experiments(ctx)
    pins = requirement_files(ctx.root)
    facts = details.facts + notebooks.facts + snapshots.facts[-5:] + drift.facts[:3]
    if experiments:
        facts.append(
            Fact(
                f"Experiment logs: {', '.join(experiments[:10])}"
                + (f" and {len(experiments) - 10} more" if len(experiments) > 10 else "")
                + ".",
                tuple(Citation(e, "line 1") for e in experiments[:5]),
            )
        )
    if pins:
        facts.append(
            Fact(
                f"Requirement files: {', '.join(pins)}.",
                tuple(Citation(p, "line 1") for p in pins[:5]),
            )
        )
    return ToolResult(
        {
            "environment": details.data,
            "notebooks": notebooks.data["notebooks"],
            "snapshots": snapshots.data["snapshots"],
            "drift": drift.data,
            "experiments": experiments,
            "requirement_files": pins,
        },
        facts,
    )


def get_onboarding_checklist(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """Guided set-up steps for the researcher who takes this environment over."""
    ctx.check_environment(args)
    baseline = ctx.baseline()
    view = ctx.view()
    rows = notebook_rows(ctx)
    steps: list[JSON] = []

    def step(text: str, *cites: Citation, command: str | None = None) -> None:
        steps.append(
            {
                "step": len(steps) + 1,
                "text": text,
                "command": command,
                "citations": [c.to_json() for c in cites],
            }
        )

    if baseline:
        step(
            f"Restore the baseline snapshot {short_id(baseline['id'])} "
            f"({format_time(baseline.get('timestamp'))}) into a fresh directory, offline.",
            snapshot_citation(baseline["id"]),
            command=f"westtek snapshot restore {short_id(baseline['id'])} --to ./restored",
        )
        step(
            "Check the environment against the baseline before running anything.",
            snapshot_citation(baseline["id"]),
            command="westtek drift",
        )
    else:
        step(
            "Take a first snapshot so the environment can be restored and watched.",
            command='westtek snapshot create --note "handover"',
        )
    for kernel in view.get("kernels", []):
        users = [r for r in rows if r["kernel"] == kernel["name"]]
        if users:
            step(
                f"Make sure kernel {kernel['name']} ({kernel['display_name']}) is installed: "
                f"{', '.join(r['path'] for r in users[:5])} run on it.",
                *(cell_citation(r["path"], r["import_cell"]) for r in users[:3]),
            )
    missing: list[tuple[str, str, int | None]] = []
    for row in rows:
        for read in row["reads"]:
            if not read["exists"]:
                missing.append((read["path"], row["path"], read["cell"]))
    if missing:
        step(
            "Obtain the data files these notebooks read but the workspace lacks: "
            + ", ".join(sorted({m[0] for m in missing})[:10])
            + ".",
            *(cell_citation(nb, cell) for _, nb, cell in missing[:5]),
        )
    for row in rows:
        if row["pip_installs"]:
            step(
                f"{row['path']} pip-installs {', '.join(row['pip_installs'][:5])} itself; "
                "check those versions against the snapshot before re-running it.",
                cell_citation(row["path"], first_cell(ctx.root / row["path"], "pip")),
            )
    experiments = _experiments(ctx)
    if experiments:
        step(
            "Read the experiment logs: " + ", ".join(experiments[:5]) + ".",
            *(Citation(e, "line 1") for e in experiments[:3]),
        )
    step("Ask the Knowledge Transfer agent about anything unclear; every answer cites its source.")
    facts = [
        Fact(
            f"Step {s['step']}: {s['text']}" + (f" (`{s['command']}`)" if s.get("command") else ""),
            tuple(Citation(c["source"], c["locator"]) for c in s["citations"]),
        )
        for s in steps
    ]
    return ToolResult({"environment_id": ctx.environment_id, "steps": steps}, facts)


def _live_here(ctx: ToolContext, origin: Mapping[str, Any]) -> bool:
    """Whether a lab-memory passage is a file of this very workspace, indexed here too."""
    path = str(origin.get("path") or "")
    return (
        ctx.kb is not None
        and origin.get("environment_id") == ctx.environment_id
        and bool(path)
        and (ctx.root / path).is_file()
    )


def search_knowledge_base(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """Passages that match the query, best first: the lab's memory and this workspace.

    The lab's memory (on the hub service) holds what every researcher of the lab preserved,
    cited to an environment's snapshot; this server's own index adds the live workspace's
    work not yet snapshotted. Either may be missing; the other still answers.
    """
    k = max(1, min(int(args.get("k") or 5), 20))
    kinds = set(args["kinds"]) if args.get("kinds") else None
    query = str(args["query"])
    scored: list[tuple[float, JSON, Citation]] = []
    notes: list[str] = []
    if ctx.kb is not None:
        for hit in ctx.kb.search(query, k=k, kinds=kinds):
            row = hit.to_json() if hasattr(hit, "to_json") else dict(hit)
            row.setdefault("kind", getattr(hit, "kind", ""))
            cite = Citation(str(row["source"]), str(row["locator"]))
            scored.append((float(row.get("score") or 0), row, cite))
    if ctx.lab_memory is not None:
        try:
            remembered = ctx.lab_memory.search(query, k)
        except LabMemoryUnavailable as e:
            notes.append(f"the lab's memory did not answer: {e}")
            remembered = []
        for row in remembered:
            origin = row["citation"]
            if kinds is not None and row.get("kind") not in kinds:
                continue
            if _live_here(ctx, origin):
                continue  # this workspace's own index holds the live version
            cite = Citation(
                str(row.get("source", "")),
                str(origin.get("locator", "")),
                environment_id=str(origin.get("environment_id", "")),
                snapshot_id=str(origin.get("snapshot_id", "")) or None,
            )
            scored.append((float(row.get("score") or 0), row, cite))
    if not ctx.can_search:
        notes.append("this lab has no knowledge-base index yet")
    scored.sort(key=lambda found: -found[0])
    results = [row for _, row, _ in scored[:k]]
    facts = [
        Fact(str(row.get("text", "")), (cite,), topic="passage") for _, row, cite in scored[:k]
    ]
    data: JSON = {"results": results}
    if notes:
        data["message"] = "; ".join(notes)
    return ToolResult(data, facts, untrusted=True)
