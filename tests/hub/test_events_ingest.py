"""The hub service's drift-event ingest: tokens checked with a (fake) hub API on 127.0.0.1,
events stored in the registry (SQLite and PostgreSQL), visible by lab."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.hub.conftest import answer
from westtek_core.notify import Notifier
from westtek_hub.service import WestTekHubService


def drift_event(event_id: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "time": 1_790_000_000.5,
        "environment_id": "alice:env",
        "baseline": "snap-0123",
        "status": "CRITICAL_DRIFT",
        "changes": [
            {
                "kind": "package",
                "name": "numpy",
                "change": "upgraded",
                "before": "1.26.4",
                "after": "2.0.0",
                "severity": "critical",
                "affected_notebooks": ["analysis.ipynb"],
                "reason": "numpy 1.26.4 → 2.0.0 breaks analysis.ipynb",
            }
        ],
        "resolved": [],
    } | extra


@pytest.fixture
def call(api):
    async def _call(method: str, token: str | None = None, body: Any = None, query: str = ""):
        return await api(method, "events" + query, body=body, token=token)

    return _call


async def test_a_users_forwarded_event_is_stored_once(call):
    # When alice's server forwards an event, it is stored (201);
    first = await call("POST", "alice-token", drift_event(7))
    assert first.code == 201
    assert json.loads(first.body) == {"stored": True, "environment_id": "alice:env", "id": 7}
    # forwarding it again (a retry after a lost answer) stores nothing new (200).
    again = await call("POST", "alice-token", drift_event(7))
    assert (again.code, json.loads(again.body)["stored"]) == (200, False)
    listed = json.loads((await call("GET", "alice-token")).body)["events"]
    assert len(listed) == 1
    assert listed[0]["reported_by"] == "alice"
    assert listed[0]["changes"] == drift_event(7)["changes"]
    assert {k: listed[0][k] for k in drift_event(7)} == drift_event(7)


async def test_labs_see_their_members_events_and_admins_everyones(call):
    await call("POST", "alice-token", drift_event(1))
    await call("POST", "bob-token", drift_event(1, environment_id="bob:env"))
    await call("POST", "carol-token", drift_event(1, environment_id="carol:env"))
    # reporting for another researcher's environment is refused (and audited)
    assert (await call("POST", "bob-token", drift_event(2))).code == 403

    async def listed(token: str, query: str = "") -> list[tuple[str, str]]:
        body = json.loads((await call("GET", token, query=query)).body)
        return sorted((e["reported_by"], e["environment_id"]) for e in body["events"])

    vault_13 = [("alice", "alice:env"), ("bob", "bob:env")]
    assert await listed("alice-token") == vault_13
    assert await listed("bob-token") == vault_13
    assert await listed("carol-token") == [("carol", "carol:env")]
    assert await listed("overseer-token") == sorted([*vault_13, ("carol", "carol:env")])
    assert await listed("overseer-token", "?environment_id=alice:env") == [("alice", "alice:env")]
    forbidden = await call("GET", "carol-token", query="?environment_id=alice:env")
    assert forbidden.code == 404 and answer(forbidden)["message"] == "no environment 'alice:env'"


@pytest.mark.parametrize(
    "token", [None, "not-a-token", "culler-token"], ids=["no-token", "unknown", "service"]
)
async def test_only_a_users_hub_token_is_accepted(call, token):
    for method, body in (("POST", drift_event()), ("GET", None)):
        response = await call(method, token, body)
        assert response.code == 403
        assert response.headers["Content-Type"] == "application/json"
        assert "API token of a user" in json.loads(response.body)["message"]
    assert json.loads((await call("GET", "overseer-token")).body)["events"] == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not JSON"),
        ([1, 2], "JSON object"),
        (drift_event(environment_id=3), "'environment_id'"),
        (drift_event(status="FINE"), "'status'"),
        (drift_event(time="yesterday"), "'time'"),
        (drift_event(changes={}), "'changes'"),
    ],
)
async def test_a_malformed_event_is_refused_with_a_reason(call, body, problem):
    response = await call("POST", "alice-token", body)
    assert response.code == 400
    assert problem in json.loads(response.body)["message"]


async def test_hub_sink_forwards_through_an_outage_of_the_service(
    service, call, tmp_path, monkeypatch
):
    # Given a server under JupyterHub whose hub service is down,
    service.stop()
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "alice-token")
    monkeypatch.setenv("JUPYTERHUB_URL", f"http://127.0.0.1:{service.port}")
    monkeypatch.delenv("JUPYTERHUB_BASE_URL", raising=False)
    notifier = Notifier(outbox_path=str(tmp_path / "outbox.sqlite3"))
    try:
        assert notifier.publish(drift_event(1)) == ["hub"]
        assert notifier.publish(drift_event(2)) == ["hub"]
        # delivery fails and the events stay queued;
        assert await asyncio.to_thread(notifier.deliver_pending) == 0
        assert len(notifier.outbox.entries(state="pending")) == 2
        # once the service is back, they are delivered, in order, and stored by the hub.
        service.start()
        later = notifier.dispatcher.initial_delay + 1.0
        delivered = await asyncio.to_thread(
            notifier.deliver_pending, notifier.outbox.entries()[0].next_attempt + later
        )
        assert delivered == 2
    finally:
        notifier.stop()
    events = json.loads((await call("GET", "alice-token")).body)["events"]
    assert [(e["reported_by"], e["id"]) for e in events] == [("alice", 1), ("alice", 2)]


def test_the_registry_defaults_to_sqlite_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("WESTTEK_HUB_DB_URL", raising=False)
    service = WestTekHubService()
    assert service.data_dir == str(tmp_path / "xdg" / "westtek" / "hub")
    assert service.db_url == f"sqlite:///{tmp_path / 'xdg' / 'westtek' / 'hub' / 'registry.sqlite'}"


async def test_a_servers_snapshot_report_reaches_the_registry(service, api, tmp_path, monkeypatch):
    from westtek_core.hub_reports import snapshot_report

    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "alice-token")
    monkeypatch.setenv("JUPYTERHUB_URL", f"http://127.0.0.1:{service.port}")
    monkeypatch.delenv("JUPYTERHUB_BASE_URL", raising=False)
    manifest = {
        "id": "ab" * 32, "environment_id": "alice:env", "created_by": "alice",
        "timestamp": "2026-11-20T10:00:00.000+00:00", "size_bytes": 42, "checksum": "c0",
        "metadata": {"installed_packages": ["numpy==2.0.0"], "notebook_count": 1},
        "interpreters": [{"packages": [{"name": "numpy", "files": ["numpy/__init__.py"]}]}],
    }  # fmt: skip
    notifier = Notifier(outbox_path=str(tmp_path / "outbox.sqlite3"))
    try:
        # only the hub takes snapshot reports
        assert notifier.publish(snapshot_report(manifest) | {"lab_id": "vault-13"}) == ["hub"]
        assert await asyncio.to_thread(notifier.deliver_pending) == 1
    finally:
        notifier.stop()
    (env,) = answer(await api("GET", "environments", "alice"))["environments"]
    assert (env["id"], env["lab_id"], env["last_snapshot_id"]) == (
        "alice:env",
        "vault-13",
        "ab" * 32,
    )
    assert env["metadata"]["jupyter_packages"] == ["numpy==2.0.0"]
