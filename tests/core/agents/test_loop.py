"""The offline agents on a realistic lab: cited answers, honest refusals, auto-analysis."""

from __future__ import annotations

import time

from tests.core.agents.conftest import ENVIRONMENT
from tests.core.conftest import pip_install
from westtek_core.agents import NOTHING_FOUND, AgentLoop, DriftAutoAnalyzer, ToolContext


def ask(lab, question, agent="transfer", **kwargs):
    loop = AgentLoop(provider="offline")
    return loop.ask(ToolContext(lab["service"], lab["kb"]), question, agent, **kwargs)


def sources(answer):
    return {(c.source, c.locator) for c in answer.citations}


def test_a_successors_questions_get_cited_answers_and_unsupported_ones_none(kb_lab):
    # "Why is X pinned?": the pin's comment and the experiment log, cited
    answer = ask(kb_lab, "Why is westtek_probe_pkg pinned to 1.0.0?")
    assert "2.0 renamed VERSION handling" in answer.answer
    assert "changed the calibration" in answer.answer
    assert ("requirements.txt", "line 2") in sources(answer)
    assert any(s == "experiments/run-42.md" for s, _ in sources(answer))
    assert "GetPackageInstallHistory" in answer.tools_called
    for number in range(1, len(answer.citations) + 1):  # every marker resolves
        assert f"[{number}]" in answer.answer

    # "Which notebook produces figure 3, and what does it read?"
    started = time.monotonic()
    answer = ask(kb_lab, "Which notebook produces figure 3, and what data does it read?")
    elapsed = time.monotonic() - started
    assert "figures.ipynb writes figures/figure3.png" in answer.answer
    assert "data/measurements.csv" in answer.answer
    assert ("figures.ipynb", "cell 5") in sources(answer)
    assert "analysis.ipynb" not in answer.answer  # not the notebook asked about
    assert elapsed < 5  # ~0.2 s on an idle machine

    # a question the material cannot answer gets no guess
    answer = ask(kb_lab, "What is the melting point of the reactor shielding alloy?")
    assert answer.answer == NOTHING_FOUND
    assert answer.citations == []

    # streamed: tool progress, then the text, then done
    chunks = list(
        AgentLoop(provider="offline").stream(
            ToolContext(kb_lab["service"], kb_lab["kb"]), "Who built this environment?"
        )
    )
    kinds = [c["type"] for c in chunks]
    assert kinds[0] == "tool" and kinds[-1] == "done"
    assert "".join(c["text"] for c in chunks if c["type"] == "delta") == chunks[-1]["answer"]
    assert "alice" in chunks[-1]["answer"]


def test_the_drift_analyzer_assesses_a_breaking_upgrade_from_the_api_diff(kb_lab):
    pip_install(kb_lab["python"], kb_lab["api_wheels"], "westtek-api-pkg==2.0.0")
    answer = ask(kb_lab, "Is this critical drift dangerous for the running experiment?", "drift")
    assert answer.answer.startswith("Risk: HIGH.")
    assert "GetDriftEvents" in answer.tools_called
    assert "GetPackageChangelog" in answer.tools_called
    assert "new required parameter `y`" in answer.answer
    assert ("figures.ipynb", "cell 3") in sources(answer)
    assert not {"CreateRollbackRecommendation", "CreateSnapshotRecommendation"} & set(
        answer.tools_called
    )  # not asked for a recommendation
    rollback = ask(kb_lab, "Should I roll back?", "drift")
    assert "CreateRollbackRecommendation" in rollback.tools_called
    assert f"westtek rollback --to {kb_lab['baseline'][:12]}" in rollback.answer


def test_a_critical_event_is_assessed_automatically_and_stored_with_it(kb_lab):
    pip_install(kb_lab["python"], kb_lab["api_wheels"], "westtek-api-pkg==2.0.0")
    drift = kb_lab["service"].drift_state(fresh=True)
    from westtek_core.drift import Change, Severity

    changes = [
        Change(
            **{
                **c,
                "severity": Severity(c["severity"]),
                "affected_notebooks": tuple(c["affected_notebooks"]),
            }
        )
        for c in drift["changes"]
    ]
    event = kb_lab["events"].append(ENVIRONMENT, kb_lab["baseline"], drift["status"], changes)
    analyzer = DriftAutoAnalyzer(
        AgentLoop(provider="offline"), lambda: ToolContext(kb_lab["service"], kb_lab["kb"])
    )
    analyzer({"type": "state", "drift": drift})  # not an event: ignored
    analyzer({"type": "event", "event": event})
    analyzer.wait(60)
    analyzer.stop()
    stored = kb_lab["events"].assessment(event["id"])
    assert stored["risk"] == "HIGH"
    # a trusted trigger, asked which to do: the one the breaking change calls for
    assert "CreateRollbackRecommendation" in stored["tools_called"]
    assert "CreateSnapshotRecommendation" not in stored["tools_called"]
    assert kb_lab["service"].events()[-1]["assessment"]["risk"] == "HIGH"


def test_asked_to_choose_without_breaking_drift_the_analyzer_recommends_a_snapshot(kb_lab):
    question = "Should I take a snapshot or roll back?"
    answer = ask(kb_lab, question, "drift")
    assert "CreateSnapshotRecommendation" in answer.tools_called
    assert "CreateRollbackRecommendation" not in answer.tools_called
    assert question not in answer.answer  # its reason is the drift, not the question again
