"""The Drift Analyzer's assessment of a critical drift event reaches the hub's record of it.

End to end through the public interfaces: a server's environment service and agents (the
offline provider) with the server extension's wiring to the hub sink (``forward_reports``),
the hub service's API on SQLite and PostgreSQL, the registry, the panel's event list.
"""

from __future__ import annotations

import asyncio
import re
import sys
from typing import Any

import pytest

from tests.core.agents.conftest import notebook, write_lab_material
from tests.hub.conftest import answer
from tests.hub.test_events_ingest import drift_event
from tests.hub.test_panel import fetch
from westtek_core.agents.service import AgentService
from westtek_core.drift import Change, Severity
from westtek_core.drift.events import EventLog
from westtek_core.environment_service import EnvironmentService
from westtek_core.hub_reports import forward_reports
from westtek_core.kb import KnowledgeBase
from westtek_core.notify import Notifier
from westtek_core.wire import RiskLevel


@pytest.fixture
def server(service, tmp_path, monkeypatch):
    """alice's server in lab vault-13, its reports going to the hub service on 127.0.0.1."""
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "alice-token")
    monkeypatch.setenv("JUPYTERHUB_URL", f"http://127.0.0.1:{service.port}")
    monkeypatch.delenv("JUPYTERHUB_BASE_URL", raising=False)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "analysis.ipynb").write_text(notebook([("code", "import westtek_probe_pkg")]))
    write_lab_material(workspace)
    index = tmp_path / "kb" / "vault-13.sqlite"
    kb = KnowledgeBase(index)
    kb.ingest_workspace(workspace)
    kb.close()
    events = EventLog(tmp_path / "events.sqlite")
    environment = EnvironmentService(
        store=str(tmp_path / "store"),
        key_file=tmp_path / "store.key",
        root=workspace,
        pythons=[sys.executable],
        environment_id="alice",
        event_log=events,
    )
    notifier = Notifier(outbox_path=str(tmp_path / "outbox.sqlite3"))
    # as the server extension wires them: reports first, then the agents
    forward_reports(environment, notifier.publish, "vault-13")
    agents = AgentService(
        environment,
        index_path=str(index),
        lab_memory=False,
        conversations_path=str(tmp_path / "conversations.sqlite"),
    )
    agents.start()
    yield environment, agents, notifier
    agents.stop()
    notifier.stop()
    events.close()


async def test_a_critical_events_assessment_reaches_the_hubs_event_and_panel(server, api, service):
    environment, agents, notifier = server
    # Given a critical drift event on alice's server (as its watcher records and announces it),
    change = Change("package", "westtek_probe_pkg", "upgraded", "1.0.0", "2.0.0",
                    Severity.CRITICAL, "major upgrade", ("analysis.ipynb",))  # fmt: skip
    event = environment.event_log.append("alice", "b" * 64, "CRITICAL_DRIFT", [change])
    environment._broadcast({"type": "event", "event": event})
    # when the Drift Analyzer has assessed it and the outbox delivered what was queued,
    await asyncio.to_thread(agents.analyzer.wait, 120)
    assert await asyncio.to_thread(notifier.deliver_pending) == 2  # the event, its assessment
    local = environment.event_log.assessment(event["id"])
    assert local is not None and local["risk"] in {r.value for r in RiskLevel}
    # the hub's record of the event holds the assessment: risk, text, citations;
    (hub_event,) = answer(await api("GET", "events?environment_id=alice", "alice"))["events"]
    assessed = hub_event["risk_assessment"]
    assert hub_event["id"] == event["id"] and assessed["risk"] == local["risk"]
    assert assessed["answer"] == local["answer"] and assessed["answer"]
    assert assessed["citations"] == local["citations"] and assessed["citations"]
    # lab colleagues see it with the event,
    (seen,) = answer(await api("GET", "environments/alice/drift", "dana"))["events"]
    assert seen["risk_assessment"] == assessed
    # and the panel's event list shows its risk, text and citations.
    page = re.sub(r"\s+", " ", (await fetch(service, "succession?environment_id=alice", "dana"))
                  .body.decode())  # fmt: skip
    row = re.search(rf'<tr data-event="{event["id"]}">(.*?)</tr>', page)
    assert row is not None
    shown, first = row.group(1), assessed["citations"][0]
    assert f'data-risk="{local["risk"]}"' in shown and f"risk {local['risk']}" in shown
    assert f"<code>{first['source']}</code>" in shown


def assessment(event_id: Any = 7, env: str = "alice:env", **extra: Any) -> dict[str, Any]:
    return {
        "report": "assessment",
        "environment_id": env,
        "event_id": event_id,
        "assessment": {"risk": "HIGH", "answer": "Risk: HIGH. numpy 2 breaks analysis.ipynb",
                       "citations": [{"source": "analysis.ipynb", "locator": "cell 2"}],
                       "time": 1_790_000_100.0},
    } | extra  # fmt: skip


async def test_an_assessment_updates_only_its_servers_known_event(api):
    assert (await api("POST", "events", "alice", drift_event(7))).code == 201
    # the latest assessment of an event wins; the audit log records each
    assert (await api("POST", "events", "alice", assessment())).code == 200
    again = assessment()
    again["assessment"] = again["assessment"] | {"risk": "MEDIUM"}
    done = await api("POST", "events", "alice", again)
    assert (done.code, answer(done)) == (
        200,
        {"assessed": True, "environment_id": "alice:env", "event_id": 7},
    )
    (event,) = answer(await api("GET", "events", "alice"))["events"]
    assert event["risk_assessment"]["risk"] == "MEDIUM"
    log = answer(await api("GET", "audit", "overseer"))["entries"]
    assert [e["detail"]["risk"] for e in log if e["action"] == "event.assessment"] == [
        "HIGH",
        "MEDIUM",
    ]
    # an event the server never reported: nothing to update
    missing = await api("POST", "events", "alice", assessment(8))
    assert missing.code == 404 and "no drift event '8'" in answer(missing)["message"]
    # nobody assesses another researcher's event
    assert (await api("POST", "events", "bob", assessment())).code == 403
    (event,) = answer(await api("GET", "events", "alice"))["events"]
    assert event["risk_assessment"]["risk"] == "MEDIUM"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"assessment": {"risk": "DIRE", "answer": "x"}}, "'HIGH', 'MEDIUM', 'LOW' or 'UNKNOWN'"),
        ({"assessment": {"risk": "LOW"}}, "'assessment': Field required"),
        ({"event_id": None}, "'event_id'"),
        (
            {"assessment": {"risk": "LOW", "answer": "x", "citations": [{"source": 1}]}},
            "'assessment.0'",
        ),
    ],  # fmt: skip
)
async def test_a_malformed_assessment_is_refused_with_a_reason(api, change, problem):
    assert (await api("POST", "events", "alice", drift_event(7))).code == 201
    response = await api("POST", "events", "alice", assessment() | change)
    assert response.code == 400 and problem in answer(response)["message"]
