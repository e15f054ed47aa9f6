"""The drift tools: the live drift and the events recorded, drift history, snapshot diffs.

``GetDriftEvents`` states the live drift first, environment changes (interpreters,
packages, kernels, config, extensions) before the workspace's notebooks and data, each
change with where it shows (the snapshot's line for it, the notebook cells it touches).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from packaging.utils import canonicalize_name
from pydantic import Field

from westtek_core.agents.api_diff import notebook_cells
from westtek_core.agents.tools.arguments import Days, EnvironmentId, Text, ToolArguments
from westtek_core.agents.tools.common import MAX_LIST, format_time, short_id
from westtek_core.agents.tools.context import ToolContext
from westtek_core.agents.tools.results import (
    JSON,
    Citation,
    Fact,
    ToolError,
    ToolResult,
    cell_citation,
    event_citation,
    snapshot_citation,
)
from westtek_core.drift.report import STALE_KERNEL


class DriftEventsArguments(ToolArguments):
    """GetDriftEvents: the live drift against a snapshot, and the events recorded."""

    environment_id: EnvironmentId = None
    time_range: Days = None
    event_id: int | None = Field(None, description="One event's id")
    since_snapshot_id: str | None = Field(
        None,
        description="Measure the drift against this snapshot (id, unique prefix, or 'latest' "
        "for the newest) instead of the baseline",
    )


class DriftHistoryArguments(ToolArguments):
    """GetDriftHistory: the events of the last ``time_range`` days (default: all)."""

    environment_id: EnvironmentId = None
    time_range: Days = None


class SnapshotComparisonArguments(ToolArguments):
    """GetSnapshotComparison: two snapshots, by id or unique prefix."""

    snapshot_id_before: Text
    snapshot_id_after: Text


def _change_sentence(change: Mapping[str, Any]) -> str:
    name, what = change.get("name"), change.get("change")
    before, after = change.get("before"), change.get("after")
    versions = f" {before} → {after}" if before and after else ""
    notebooks = change.get("affected_notebooks") or []
    used = f"; used by {', '.join(notebooks)}" if notebooks else ""
    return (
        f"{change.get('kind')} {name} {what}{versions} "
        f"({change.get('severity')}: {change.get('reason')}){used}."
    )


CHANGE_ORDER = ("interpreter", "package", "kernel", "config", "extension", "notebook", "data")
"""Kinds of drift change in the order an answer lists them: the environment's first."""

ENVIRONMENT_KINDS = frozenset(CHANGE_ORDER[:5])
"""Changes to the environment itself; the rest are the workspace's notebooks and data."""

MAX_WORKSPACE_CHANGES = 10  # workspace files listed one by one; the rest are counted

_SEVERITY_RANK = {"critical": 0, "minor": 1, "info": 2}

_KIND_LABEL = {
    "interpreter": "interpreter",
    "package": "package",
    "kernel": "kernel",
    "config": "Jupyter config",
    "extension": "lab extension",
    "notebook": "notebook",
    "data": "data file",
    STALE_KERNEL: "running kernel",
}


def change_rank(change: Mapping[str, Any]) -> tuple[int, int, str]:
    """Sort key of a drift change: environment kinds first, then by severity, then name."""
    kind = str(change.get("kind"))
    order = CHANGE_ORDER.index(kind) if kind in CHANGE_ORDER else len(CHANGE_ORDER)
    return order, _SEVERITY_RANK.get(str(change.get("severity")), 3), str(change.get("name"))


def _reason_tail(change: Mapping[str, Any]) -> str:
    """The grading reason without the part that repeats what changed."""
    reason = str(change.get("reason") or "")
    kind, name, what = change.get("kind"), change.get("name"), change.get("change")
    before, after = change.get("before"), change.get("after")
    label = _KIND_LABEL.get(str(kind), str(kind))
    for prefix in (
        f"{name} {what} from {before} to {after}",
        f"{name} {what}",
        f"{label} {name} {what}",
        f"{kind} {name} {what}",
    ):
        if reason.startswith(prefix):
            return reason[len(prefix) :].lstrip(":; ")
    return reason


def _live_change_sentence(change: Mapping[str, Any], snapshot: str) -> str:
    """One live change, saying what it was in the snapshot and what it is now."""
    kind, name, what = str(change.get("kind")), change.get("name"), change.get("change")
    before, after = change.get("before"), change.get("after")
    versioned = kind in ("interpreter", "package", "extension")
    state = ""
    if versioned and before and after:
        state = f" from {before} (snapshot {snapshot}) to {after} (installed now)"
    elif versioned and what == "added" and after:
        state = f": {after} installed now, not in snapshot {snapshot}"
    elif versioned and what == "removed" and before:
        state = f": {before} in snapshot {snapshot}, not installed now"
    elif kind in ("notebook", "data"):
        state = f" since snapshot {snapshot}"
    users = list(change.get("affected_notebooks") or [])
    tail = _reason_tail(change)
    if users and re.search(r"\d+ notebook\(s\)", tail):
        tail = re.sub(r"\d+ notebook\(s\)", ", ".join(users), tail)
    elif users and kind != "notebook":
        verb = "read by" if kind == "data" else "affects"
        tail = (tail + "; " if tail else "") + f"{verb} {', '.join(users)}"
    if tail.startswith("notebooks read it; "):
        tail = tail.removeprefix("notebooks read it; ")
    detail = f"{change.get('severity')}" + (f": {tail}" if tail else "")
    return f"{_KIND_LABEL.get(kind, kind)} {name} {what}{state} ({detail})."


def _import_cell(ctx: ToolContext, notebook: str) -> int | None:
    cells = notebook_cells(ctx.root / notebook)
    return next((i for i, (k, t) in enumerate(cells) if k == "code" and "import" in t), None)


def _reading_cell(ctx: ToolContext, notebook: str, data_file: str) -> int | None:
    needle = os.path.basename(data_file)
    cells = notebook_cells(ctx.root / notebook)
    return next((i for i, (k, t) in enumerate(cells) if k == "code" and needle in t), None)


def _install_row(ctx: ToolContext, package: str, after: Any) -> Citation | None:
    """The install-history line that recorded ``package`` reaching ``after``, if one did."""
    history = ctx.cached(
        "install-history", lambda: ctx.service.event_log.install_history(ctx.environment_id)
    )
    wanted = canonicalize_name(package)
    found = None
    for number, row in enumerate(history, start=1):
        if canonicalize_name(str(row["package"])) == wanted and row.get("after") == after:
            found = number
    return Citation("install-history", f"line {found}") if found else None


def _change_citations(
    ctx: ToolContext, change: Mapping[str, Any], snapshot_id: str
) -> tuple[Citation, ...]:
    """Where a live change shows: the snapshot's line for it, the cells it touches."""
    kind, name = str(change.get("kind")), str(change.get("name"))
    users = list(change.get("affected_notebooks") or [])[:3]
    cites: list[Citation] = []
    if kind in ("package", "interpreter", "kernel", "config"):
        cites.append(ctx.manifest_citation(snapshot_id, kind, name))
    if kind == "package":
        recorded = _install_row(ctx, name, change.get("after"))
        if recorded:
            cites.append(recorded)
    if kind in ("package", "interpreter", "kernel"):
        cites += [cell_citation(nb, _import_cell(ctx, nb)) for nb in users]
    elif kind == "notebook":
        cells = []
        if change.get("change") == "modified":
            cells = ctx.changed_cells(ctx.snapshot_manifest(snapshot_id), name)
        cites += [cell_citation(name, cell) for cell in cells[:3]] or [cell_citation(name, 0)]
    elif kind == "data":
        cites += [cell_citation(nb, _reading_cell(ctx, nb, name)) for nb in users]
    return tuple(cites) or (snapshot_citation(snapshot_id),)


def _current_drift_facts(
    ctx: ToolContext,
    drift: Mapping[str, Any],
    against: Mapping[str, Any] | None,
    latest: Mapping[str, Any] | None = None,
) -> list[Fact]:
    """The live changes, environment first, each with where it shows.

    ``latest`` is the newest snapshot when the question is about it (the whole history is
    not read to name it otherwise).
    """
    snapshot_id = str(drift.get("baseline") or "")
    if not snapshot_id or against is None:
        message = f" ({drift['message']})" if drift.get("message") else ""
        return [Fact(f"The environment is now {drift.get('status')}{message}.")]
    short = short_id(snapshot_id)
    baseline = ctx.baseline()
    is_baseline = (baseline or {}).get("id") == snapshot_id
    is_latest = (latest or {}).get("id") == snapshot_id
    which = {
        (True, True): "the latest snapshot",
        (True, False): "the baseline snapshot",
        (False, True): "the latest snapshot",
        (False, False): "snapshot",
    }[is_baseline, is_latest]
    role = "the baseline, " if is_baseline and is_latest else ""
    changes = sorted(drift.get("changes", []), key=change_rank)
    environment = [c for c in changes if c.get("kind") in ENVIRONMENT_KINDS]
    workspace = [c for c in changes if c.get("kind") not in ENVIRONMENT_KINDS]

    def counted(group: list[Any]) -> str:
        kinds: dict[str, int] = {}
        for change in group:
            kinds[str(change["kind"])] = kinds.get(str(change["kind"]), 0) + 1
        return ", ".join(f"{n} {_KIND_LABEL.get(k, k)}{'s' * (n > 1)}" for k, n in kinds.items())

    note = f", “{against['notes']}”" if against.get("notes") else ""
    head = (
        f"Against {which} {short} ({role}taken {format_time(against.get('timestamp'))}"
        f"{note}), the environment is now {drift.get('status')}: "
    )
    if not changes:
        head += "nothing has changed."
    else:
        head += (
            f"{len(environment)} change(s) to the environment ({counted(environment)})"
            if environment
            else "no change to the environment"
        )
        head += (
            f" and {len(workspace)} in the workspace ({counted(workspace)})." if workspace else "."
        )
    cites = [snapshot_citation(snapshot_id)]
    if baseline is not None and not is_baseline:  # the status people act on is the baseline's
        head += f" Against the baseline snapshot {short_id(baseline['id'])} it is "
        head += f"{ctx.drift().get('status')}."
        cites.append(snapshot_citation(str(baseline["id"])))
    facts = [Fact(head, tuple(cites))]
    for change in environment:
        facts.append(
            Fact(
                "Environment: " + _live_change_sentence(change, short),
                _change_citations(ctx, change, snapshot_id),
                topic=str(change.get("name")),
            )
        )
    for change in workspace[:MAX_WORKSPACE_CHANGES]:
        facts.append(
            Fact(
                "Workspace: " + _live_change_sentence(change, short),
                _change_citations(ctx, change, snapshot_id),
                topic=str(change.get("name")),
            )
        )
    if len(workspace) > MAX_WORKSPACE_CHANGES:
        rest = workspace[MAX_WORKSPACE_CHANGES:]
        facts.append(
            Fact(
                f"Workspace: {len(rest)} more file(s) changed ({counted(rest)}).",
                (snapshot_citation(snapshot_id),),
            )
        )
    return facts


def get_drift_events(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """The drift right now (environment changes first) and the drift events recorded.

    The drift is measured against the baseline, or against ``since_snapshot_id`` (a
    snapshot id or prefix, or ``latest``) when given; ``event_id`` gives one event alone.
    """
    ctx.check_environment(args)
    event_id = args.get("event_id")
    events = ctx.service.events(limit=10_000, days=float(args.get("time_range") or 0))
    if event_id is not None:
        events = [e for e in events if e["id"] == event_id]
        if not events:
            raise ToolError(f"no drift event {event_id} in environment {ctx.environment_id}")
    events = events[-MAX_LIST:]
    facts: list[Fact] = []
    for event in events:
        cite = (event_citation(int(event["id"])),)
        for change in event.get("changes", []):
            facts.append(
                Fact(
                    f"Drift event {event['id']} ({format_time(event['time'])}, {event['status']}): "
                    + _change_sentence(change),
                    cite,
                    topic=str(change.get("name", "")),
                )
            )
        for change in event.get("resolved", []):
            facts.append(
                Fact(
                    f"Drift event {event['id']} ({format_time(event['time'])}): resolved: "
                    f"{change.get('reason')}.",
                    cite,
                    topic=str(change.get("name", "")),
                )
            )
        assessment = event.get("assessment")
        if assessment:
            facts.append(
                Fact(
                    f"The Drift Analyzer assessed event {event['id']} as risk "
                    f"{assessment.get('risk', '?')}.",
                    cite,
                )
            )
    data: JSON = {"environment_id": ctx.environment_id, "events": events}
    if event_id is None:
        since = args.get("since_snapshot_id")
        against: JSON | None
        latest = ctx.latest_snapshot() if since == "latest" else None
        if since:
            against = latest if since == "latest" else ctx.manifest(str(since))
            drift = ctx.drift_since(against) if against is not None else ctx.drift()
        else:
            against, drift = ctx.baseline(), ctx.drift()
        changes = sorted(drift.get("changes", []), key=change_rank)
        data["current"] = {
            "status": drift.get("status"),
            "baseline": drift.get("baseline"),  # the snapshot compared with
            "compared_with_baseline": bool(
                against and drift.get("baseline") == (ctx.baseline() or {}).get("id")
            ),
            "changes": changes,
            "message": drift.get("message"),
        }
        facts = _current_drift_facts(ctx, drift, against, latest) + facts
    return ToolResult(data, facts)


def get_drift_history(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """Drift over time: events by status, the packages that drifted most, assessments."""
    ctx.check_environment(args)
    events = ctx.service.events(limit=100_000, days=float(args.get("time_range") or 0))
    by_status: dict[str, int] = {}
    by_name: dict[str, list[int]] = {}
    for event in events:
        by_status[event["status"]] = by_status.get(event["status"], 0) + 1
        for change in event.get("changes", []):
            by_name.setdefault(f"{change['kind']} {change['name']}", []).append(int(event["id"]))
    busiest = sorted(by_name.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:10]
    facts: list[Fact] = []
    if events:
        facts.append(
            Fact(
                f"{len(events)} drift event(s) from {format_time(events[0]['time'])} to "
                f"{format_time(events[-1]['time'])}: "
                + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()))
                + ".",
                (event_citation(int(events[0]["id"])), event_citation(int(events[-1]["id"]))),
            )
        )
    else:
        facts.append(Fact(f"No drift event recorded for environment {ctx.environment_id}."))
    for name, ids in busiest:
        facts.append(
            Fact(
                f"{name} drifted in {len(ids)} event(s).",
                tuple(event_citation(i) for i in ids[:3]),
                name.split(" ", 1)[1],
            )
        )
    critical = [e for e in events if e["status"] == "CRITICAL_DRIFT"]
    return ToolResult(
        {
            "environment_id": ctx.environment_id,
            "events": len(events),
            "by_status": by_status,
            "most_drifted": [{"name": n, "events": ids} for n, ids in busiest],
            "critical": [
                {"id": e["id"], "time": e["time"], "assessment": e.get("assessment")}
                for e in critical[-MAX_LIST:]
            ],
        },
        facts,
    )


def get_snapshot_comparison(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """Two snapshots of the environment compared, in the drift report's shape."""
    from westtek_core.drift import diff_manifests

    before = ctx.manifest(str(args["snapshot_id_before"]))
    after = ctx.manifest(str(args["snapshot_id_after"]))
    report = diff_manifests(before, after).to_json()
    cites = (snapshot_citation(before["id"]), snapshot_citation(after["id"]))
    facts = [
        Fact(
            f"From snapshot {short_id(before['id'])} ({format_time(before.get('timestamp'))}) to "
            f"{short_id(after['id'])} ({format_time(after.get('timestamp'))}): {report['status']}, "
            f"{len(report['changes'])} change(s).",
            cites,
        )
    ]
    for change in report["changes"][:MAX_LIST]:
        if change["severity"] != "info" or change["kind"] in ("package", "kernel"):
            facts.append(Fact(_change_sentence(change).capitalize(), cites, str(change["name"])))
    return ToolResult(
        {"before": before["id"], "after": after["id"], **report},
        facts,
    )
