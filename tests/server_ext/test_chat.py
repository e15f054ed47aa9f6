"""The agents through a real Jupyter server: streamed chat, conversations, knowledge search."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

from tests.core.agents.conftest import notebook, write_lab_material
from westtek_core.kb import KnowledgeBase
from westtek_server_ext import models


@pytest.fixture
def westtek_traits(westtek_traits, tmp_path):
    """A workspace with the lab's notebooks and logs, and its knowledge base ingested."""
    workspace = tmp_path / "workspace"
    (workspace / "data").mkdir()
    (workspace / "data" / "measurements.csv").write_text("t,x\n0,0\n")
    (workspace / "analysis.ipynb").write_text(
        notebook([("code", "rows = open('data/measurements.csv').read()")])
    )
    write_lab_material(workspace)
    index = tmp_path / "kb" / "lab-a.sqlite"
    kb = KnowledgeBase(index)
    kb.ingest_workspace(workspace)
    kb.close()
    return westtek_traits | {"kb_index": str(index)}


async def chat(jp_fetch, body: dict, pieces: list[bytes] | None = None) -> list[dict]:
    """POST chat; every line of the stream must be a valid ChatChunk."""
    response = await jp_fetch(
        "westtek",
        "api",
        "chat",
        method="POST",
        body=json.dumps(body),
        **({"streaming_callback": pieces.append} if pieces is not None else {}),
    )
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    raw = b"".join(pieces) if pieces is not None else response.body
    chunks = [json.loads(line) for line in raw.decode().splitlines()]
    for chunk in chunks:
        models.ChatChunk.model_validate(chunk)
    return chunks


async def test_chat_streams_tool_progress_the_answer_and_its_citations(jp_fetch):
    pieces: list[bytes] = []
    chunks = await chat(
        jp_fetch,
        {"agent": "transfer", "question": "Which notebook produces figure 3?"},
        pieces,
    )
    assert len(pieces) > 1  # written as the agent worked, not at the end
    assert chunks[0]["type"] == "start" and chunks[0]["agent"] == "transfer"
    assert {"tool", "delta"} <= {c["type"] for c in chunks}
    done = chunks[-1]
    assert done["type"] == "done"
    assert "".join(c["text"] for c in chunks if c["type"] == "delta") == done["answer"]
    assert "figures.ipynb writes figures/figure3.png" in done["answer"]
    assert {"source": "figures.ipynb", "locator": "cell 5"} in done["citations"]
    assert done["conversation_id"] == chunks[0]["conversation_id"]


async def test_conversations_are_kept_per_environment_and_continued(jp_fetch):
    first = await chat(jp_fetch, {"agent": "transfer", "question": "Who built this environment?"})
    conversation = first[0]["conversation_id"]
    again = await chat(
        jp_fetch,
        {"agent": "transfer", "question": "Why is westtek_probe_pkg pinned?",
         "conversation_id": conversation},
    )  # fmt: skip
    assert again[0]["conversation_id"] == conversation
    listed = json.loads((await jp_fetch("westtek", "api", "chat")).body)
    models.ConversationList.model_validate(listed)
    assert [c["id"] for c in listed["conversations"]] == [conversation]
    assert listed["conversations"][0]["title"] == "Who built this environment?"
    whole = json.loads((await jp_fetch("westtek", "api", "chat", conversation)).body)
    models.Conversation.model_validate(whole)
    assert [m["role"] for m in whole["messages"]] == ["user", "assistant"] * 2
    assert whole["messages"][3]["citations"] == again[-1]["citations"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"agent": "oracle", "question": "why?"}, 400, "agent"),
        ({"agent": "drift", "question": ""}, 400, "question"),
        ({"agent": "drift", "question": "   "}, 400, "question"),
        ({"question": "why?", "conversation_id": "0" * 32}, 404, "no conversation"),
    ],
)
async def test_bad_chat_requests_are_plain_errors(jp_fetch, body, status, message):
    with pytest.raises(HTTPClientError) as raised:
        await jp_fetch("westtek", "api", "chat", method="POST", body=json.dumps(body))
    assert raised.value.code == status
    assert message in json.loads(raised.value.response.body)["message"]


async def test_knowledge_search_answers_the_best_passages(jp_fetch):
    response = await jp_fetch("westtek", "api", "kb", "search", params={"q": "figure 3", "k": "3"})
    found = json.loads(response.body)
    models.KBSearchResults.model_validate(found)
    assert 0 < len(found["results"]) <= 3
    assert found["results"][0]["source"] in ("figures.ipynb", "experiments/run-42.md")
    for params in ({"q": ""}, {"q": "x", "k": "0"}, {"q": "x", "k": "many"}):
        with pytest.raises(HTTPClientError) as raised:
            await jp_fetch("westtek", "api", "kb", "search", params=params)
        assert raised.value.code == 400


async def test_a_critical_event_gets_its_risk_assessment_stored(jp_fetch, jp_serverapp):
    from westtek_core.drift import Change, Severity

    agents = jp_serverapp.web_app.settings["westtek_agents"]
    service = agents.service
    change = Change("package", "westtek_probe_pkg", "upgraded", "1.0.0", "2.0.0",
                    Severity.CRITICAL, "major upgrade", ("analysis.ipynb",))  # fmt: skip
    event = service.event_log.append(service.environment_id, "b" * 64, "CRITICAL_DRIFT", [change])
    service._broadcast({"type": "event", "event": event})  # as the watcher does
    agents.analyzer.wait(120)
    listed = json.loads((await jp_fetch("westtek", "api", "drift", "events")).body)
    models.EventList.model_validate(listed)
    assessment = listed["events"][-1]["assessment"]
    assert assessment["agent"] == "drift" and assessment["risk"] in ("MEDIUM", "HIGH", "LOW")
    assert "GetDriftEvents" in assessment["tools_called"]
