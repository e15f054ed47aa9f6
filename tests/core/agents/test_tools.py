"""The agents' tools on a real environment: a venv, real snapshots, notebooks and logs."""

from __future__ import annotations

import pytest

from tests.core.agents.conftest import ENVIRONMENT, snapshot
from tests.core.conftest import pip_install
from westtek_core.agents.tools import (
    TOOLS,
    Citation,
    ToolContext,
    ToolError,
    call_tool,
)


def fresh(lab) -> ToolContext:
    """A new context (the cache of one request is not carried into the next)."""
    return ToolContext(lab["service"])


def test_every_tool_has_a_strict_json_schema_and_only_recommendations_write():
    assert len(TOOLS) == 15
    for tool in TOOLS.values():
        assert tool.parameters["type"] == "object"
        assert tool.parameters["additionalProperties"] is False
        assert set(tool.parameters["required"]) <= set(tool.parameters["properties"])
    assert {t.name for t in TOOLS.values() if t.writes} == {
        "CreateSnapshotRecommendation",
        "CreateRollbackRecommendation",
    }


def test_arguments_are_checked_and_other_environments_refused(light_ctx):
    ctx = light_ctx
    with pytest.raises(ToolError, match="unknown argument"):
        call_tool(ctx, "SearchKnowledgeBase", {"query": "x", "index": "/labs/b.sqlite"})
    with pytest.raises(ToolError, match="missing required"):
        call_tool(ctx, "GetPackageInstallHistory", {})
    with pytest.raises(ToolError, match="must be of type integer"):
        call_tool(ctx, "GetDriftEvents", {"event_id": "3"})
    with pytest.raises(ToolError, match="not accessible"):
        call_tool(ctx, "GetEnvironmentDetails", {"environment_id": "bob@lab-b"})
    with pytest.raises(ToolError, match="no tool"):
        call_tool(ctx, "DeleteEverything", {})


def test_the_schema_a_model_is_shown_is_the_tools_argument_model():
    # Given the pydantic model each tool declares its arguments with
    for tool in TOOLS.values():
        fields = tool.arguments.model_fields
        # Then the advertised schema names exactly its fields, required as the model says
        assert set(tool.parameters["properties"]) == set(fields)
        assert set(tool.parameters["required"]) == {n for n, f in fields.items() if f.is_required()}
    search = TOOLS["SearchKnowledgeBase"].parameters["properties"]
    assert search["k"] == {"type": "integer", "description": "How many passages (5)"}
    assert search["kinds"]["items"]["enum"] == [
        "notebook",
        "manifest",
        "summary",
        "install-history",
        "experiment",
    ]


def test_bad_arguments_get_one_line_a_model_can_act_on(light_ctx):
    ctx = light_ctx
    with pytest.raises(ToolError, match=r"^SearchKnowledgeBase: kinds must be one of notebook, "):
        call_tool(ctx, "SearchKnowledgeBase", {"query": "x", "kinds": ["secrets"]})
    with pytest.raises(ToolError, match=r"^SearchKnowledgeBase: kinds must be of type array$"):
        call_tool(ctx, "SearchKnowledgeBase", {"query": "x", "kinds": "notebook"})
    with pytest.raises(ToolError, match=r"^GetDriftHistory: time_range must be of type number$"):
        call_tool(ctx, "GetDriftHistory", {"time_range": True})
    with pytest.raises(ToolError, match=r"^SearchKnowledgeBase: missing required argument query$"):
        call_tool(ctx, "SearchKnowledgeBase", {"query": ""})
    with pytest.raises(ToolError, match=r"^GetEnvironmentDetails: arguments must be a JSON object"):
        call_tool(ctx, "GetEnvironmentDetails", ["alice@vault-13"])
    # a null argument is one not given
    result = call_tool(ctx, "SearchKnowledgeBase", {"query": "figure 3", "k": None})
    assert result.data["results"] == []


def test_notebooks_transfer_package_and_onboarding_checklist(lab):
    result = call_tool(lab["ctx"], "GetEnvironmentNotebooks", {})
    rows = {r["path"]: r for r in result.data["notebooks"]}
    assert set(rows) == {"analysis.ipynb", "figures.ipynb"}
    analysis = rows["analysis.ipynb"]
    assert analysis["kernel"] == "research"
    assert {"westtek_probe_pkg", "wtyaml"} <= set(analysis["imports"])
    assert {"westtek-probe-pkg", "westtek-yaml-dist"} <= {
        d.lower().replace("_", "-") for d in analysis["distributions"]
    }
    assert analysis["reads"] == [{"path": "data/measurements.csv", "cell": 0, "exists": True}]
    figures = rows["figures.ipynb"]
    assert figures["writes"] == [{"path": "figures/figure3.png", "cell": 5}]
    texts = [f.text for f in result.facts]
    assert "figures.ipynb writes figures/figure3.png." in texts
    assert Citation("figures.ipynb", "cell 5") in result.citations

    # and the successor's summary and checklist are built from the same material
    (lab["workspace"] / "data" / "measurements.csv").unlink()
    transfer = call_tool(fresh(lab), "GetTransferPackage", {})
    assert transfer.data["experiments"] == ["experiments/run-42.md"]
    assert transfer.data["requirement_files"] == ["requirements.txt"]
    assert {n["path"] for n in transfer.data["notebooks"]} == {"analysis.ipynb", "figures.ipynb"}
    checklist = call_tool(fresh(lab), "GetOnboardingChecklist", {})
    steps = [s["text"] for s in checklist.data["steps"]]
    assert steps[0].startswith(f"Restore the baseline snapshot {lab['baseline'][:12]}")
    assert checklist.data["steps"][0]["command"] == (
        f"westtek snapshot restore {lab['baseline'][:12]} --to ./restored"
    )
    assert any("data/measurements.csv" in s and "lacks" in s for s in steps)
    assert any("kernel research" in s for s in steps)


def test_details_history_and_profile_come_from_the_snapshots(lab):
    second = snapshot(lab, "after the calibration run")
    details = call_tool(fresh(lab), "GetEnvironmentDetails", {})
    assert details.data["snapshot_count"] == 2
    assert details.data["baseline"] == lab["baseline"]
    assert "westtek-api-pkg==1.0.0" in details.data["packages"]
    history = call_tool(fresh(lab), "GetSnapshotHistory", {})
    assert [s["id"] for s in history.data["snapshots"]] == [lab["baseline"], second]
    assert history.data["snapshots"][0]["baseline"] is True
    assert any("after the calibration run" in f.text for f in history.facts)
    profile = call_tool(fresh(lab), "GetResearcherProfile", {})
    assert profile.data["researcher_id"] == "alice"
    assert any("baseline before the paper runs" in f.text for f in profile.facts)
    # a snapshot's citation resolves to the knowledge base's manifest document
    assert Citation(f"snapshot:{second}", "line 1") in history.citations


def test_install_history_joins_live_events_snapshots_pins_and_pip_cells(lab, wheelhouse):
    pip_install(lab["python"], wheelhouse, "westtek_probe_pkg==1.1.0")
    later = snapshot(lab, "tried probe 1.1")
    lab["events"].append(
        ENVIRONMENT,
        lab["baseline"],
        "MINOR_DRIFT",
        [_change("westtek_probe_pkg", "1.0.0", "1.1.0")],
        pip_installs={"analysis.ipynb": ["westtek_probe_pkg"]},
    )
    result = call_tool(
        fresh(lab), "GetPackageInstallHistory", {"package_name": "westtek_probe_pkg"}
    )
    data = result.data
    assert data["installed"] == "1.1.0"
    assert [s["version"] for s in data["snapshots"]] == ["1.0.0", "1.1.0"]
    assert data["snapshots"][1]["snapshot"] == later
    assert data["install_history"][0]["notebook"] == "analysis.ipynb"
    pin = data["pins"][0]
    assert pin["file"] == "requirements.txt" and pin["line"] == 2
    assert "2.0 renamed VERSION handling" in pin["comment"]
    assert data["pip_cells"] == [
        {"notebook": "analysis.ipynb", "cell": 0, "requirement": "westtek_probe_pkg"}
    ]
    cites = result.citations
    assert Citation("requirements.txt", "line 2") in cites
    assert Citation("install-history", "line 1") in cites
    assert Citation("analysis.ipynb", "cell 0") in cites
    # the package's line in the snapshot's manifest document, not just the snapshot
    package_lines = [c for c in cites if c.source == f"snapshot:{later}"]
    assert package_lines and package_lines[0].locator != "line 1"


def _change(name, before, after, severity="minor"):
    from westtek_core.drift import Change, Severity

    return Change(
        "package",
        name,
        "upgraded",
        before,
        after,
        Severity(severity),
        "upgraded",
        ("analysis.ipynb",),
    )


def test_drift_events_and_history_cite_events(lab, wheelhouse):
    pip_install(lab["python"], wheelhouse, "westtek_probe_pkg==2.0.0")
    event = lab["events"].append(
        ENVIRONMENT,
        lab["baseline"],
        "CRITICAL_DRIFT",
        [_change("westtek_probe_pkg", "1.0.0", "2.0.0", "critical")],
    )
    lab["events"].append("someone-else", "x", "CRITICAL_DRIFT", [_change("other", "1", "2")])
    result = call_tool(fresh(lab), "GetDriftEvents", {})
    assert [e["id"] for e in result.data["events"]] == [event["id"]]
    assert result.data["current"]["status"] == "CRITICAL_DRIFT"
    assert Citation("drift-events", f"event {event['id']}") in result.citations
    one = call_tool(fresh(lab), "GetDriftEvents", {"event_id": event["id"]})
    assert "current" not in one.data
    with pytest.raises(ToolError, match="no drift event"):
        call_tool(fresh(lab), "GetDriftEvents", {"event_id": event["id"] + 1})
    history = call_tool(fresh(lab), "GetDriftHistory", {})
    assert history.data["by_status"] == {"CRITICAL_DRIFT": 1}
    assert history.data["most_drifted"][0]["name"] == "package westtek_probe_pkg"


def test_comparison_config_and_recommendations_change_nothing(lab, wheelhouse):
    pip_install(lab["python"], wheelhouse, "westtek_probe_pkg==2.0.0")
    after = snapshot(lab, "probe 2")
    ctx = fresh(lab)
    compared = call_tool(
        ctx,
        "GetSnapshotComparison",
        {"snapshot_id_before": lab["baseline"][:10], "snapshot_id_after": after[:10]},
    )
    assert compared.data["status"] == "CRITICAL_DRIFT"
    assert any(c["name"] == "westtek_probe_pkg" for c in compared.data["changes"])
    config = call_tool(ctx, "GetEnvironmentConfig", {})
    assert "research" in [k["name"] for k in config.data["kernels"]]
    assert any(c["path"] == "jupyter_server_config.py" for c in config.data["config_files"])
    assert "super-secret-token" not in str(config.data)
    before = sorted(lab["repo"].list_manifests())
    rollback = call_tool(ctx, "CreateRollbackRecommendation", {})
    assert rollback.data["target_snapshot_id"] == lab["baseline"]
    assert rollback.data["command"] == f"westtek rollback --to {lab['baseline'][:12]}"
    assert rollback.data["applied"] is False
    snap = call_tool(ctx, "CreateSnapshotRecommendation", {"reason": "before the next run"})
    assert snap.data["command"].startswith("westtek snapshot create --note")
    assert sorted(lab["repo"].list_manifests()) == before  # nothing was written
    with pytest.raises(ToolError, match="no single snapshot"):
        call_tool(ctx, "CreateRollbackRecommendation", {"target_snapshot_id": "deadbeef"})


def test_search_without_an_index_says_so(light_ctx):
    result = call_tool(light_ctx, "SearchKnowledgeBase", {"query": "figure 3"})
    assert result.data["results"] == [] and "no knowledge-base index" in result.data["message"]
