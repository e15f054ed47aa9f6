"""Environment ids cannot be squatted: they are namespaced by owner (``<user>[:<server>]``).

Only the owner's server token (or a hub admin) registers or reports for an id; a
researcher who claimed another's id first used to lock the owner out (403 on every report,
their outbox stuck behind it). Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from tests.hub.conftest import answer
from tests.hub.test_registry_api import event_report, snapshot_report, visible
from westtek_core.hub_reports import snapshot_report as server_snapshot_report
from westtek_core.notify import Notifier
from westtek_core.snapshot import default_environment_id
from westtek_hub.db import make_engine, session_factory
from westtek_hub.models import DriftEvent, Environment, Lab, Researcher, Snapshot


async def audit_outcomes(api, actor: str) -> list[tuple[str, str]]:
    log = answer(await api("GET", "audit", "overseer"))["entries"]
    return [(e["action"], e["outcome"]) for e in log if e["actor"] == actor]


async def test_a_researcher_cannot_claim_another_researchers_environment_id(api):
    # Given carol's token reporting first for bob's default and named servers' ids,
    for env in ("bob", "bob:gpu"):
        squat = await api("POST", "snapshots", "carol", snapshot_report(env, "ca" * 32))
        assert squat.code == 403, answer(squat)
        assert answer(squat)["message"] == (
            f"environment id {env!r} is bob's, not carol's: a server reports as "
            "'carol' or 'carol:<server name>'"
        )
        assert (await api("POST", "events", "carol", event_report(env))).code == 403
        container = await api("PUT", f"environments/{env}/container", "carol",
                              {"container_info": {}})  # fmt: skip
        assert container.code == 403
    # then nothing was registered, and each attempt is audited as denied
    assert await visible(api, "overseer") == {}
    assert ("snapshot.report", "denied") in await audit_outcomes(api, "carol")
    assert ("event.report", "denied") in await audit_outcomes(api, "carol")
    # and bob's own reports still succeed, for both servers
    for env in ("bob", "bob:gpu"):
        snap = "b0" * 32 if env == "bob" else "b1" * 32
        assert (await api("POST", "snapshots", "bob", snapshot_report(env, snap))).code == 201
        assert (await api("POST", "events", "bob", event_report(env))).code == 201
    assert await visible(api, "bob") == {"bob": "own", "bob:gpu": "own"}
    # while carol still reports for her own
    assert (await api("POST", "snapshots", "carol", snapshot_report("carol"))).code == 201


async def test_a_hub_admin_registers_an_environment_for_its_owner(api):
    # When a hub admin reports for bob's id (say, repairing the registry),
    report = snapshot_report("bob", "b0" * 32, lab_id="vault-13")
    assert (await api("POST", "snapshots", "overseer", report)).code == 201
    # the environment is bob's, not the admin's, and bob's own server reports for it
    assert await visible(api, "bob") == {"bob": "own"}
    assert (await api("POST", "events", "bob", event_report("bob"))).code == 201


async def test_a_named_servers_own_default_id_is_accepted_by_the_hub(service, api, tmp_path,
                                                                      monkeypatch):  # fmt: skip
    # Given alice's named server "gpu" under JupyterHub, with no id set by a spawner,
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    monkeypatch.setenv("JUPYTERHUB_SERVER_NAME", "gpu")
    monkeypatch.delenv("WESTTEK_ENVIRONMENT_ID", raising=False)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "alice-token")
    monkeypatch.setenv("JUPYTERHUB_URL", f"http://127.0.0.1:{service.port}")
    monkeypatch.delenv("JUPYTERHUB_BASE_URL", raising=False)
    # its environment id is in alice's namespace, by the rule the hub service checks
    manifest = {"id": "ab" * 32, "environment_id": default_environment_id(), "created_by": "alice",
                "timestamp": "2026-11-20T10:00:00+00:00", "size_bytes": 1}  # fmt: skip
    notifier = Notifier(outbox_path=str(tmp_path / "outbox.sqlite3"))
    try:
        assert notifier.publish(server_snapshot_report(manifest)) == ["hub"]
        assert await asyncio.to_thread(notifier.deliver_pending) == 1
    finally:
        notifier.stop()
    assert await visible(api, "alice") == {"alice:gpu": "own"}


def register_before_namespacing(db_url: str, env_id: str, holder: str, lab: str) -> None:
    """An environment as the registry held it before ids were namespaced, with a snapshot
    and a drift event of the holder's."""
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        for model, key in ((Lab, lab), (Researcher, holder)):
            if session.get(model, key) is None:
                session.add(model(**{"id" if model is Lab else "name": key}))
        session.flush()
        session.add(Environment(id=env_id, lab_id=lab, researcher_id=holder, name=env_id))
        session.flush()
        snap = (holder[:1].encode().hex() * 64)[:64]
        session.add(Snapshot(id=snap, environment_id=env_id, created_by=holder,
                             timestamp=datetime.now(timezone.utc)))  # fmt: skip
        session.add(DriftEvent(environment_id=env_id, reported_by=holder, event_key="1",
                               time=1.0, status="STABLE",
                               body=event_report(env_id, status="STABLE")))  # fmt: skip
        session.commit()
    engine.dispose()


async def test_an_id_squatted_before_the_fix_returns_to_its_owner_and_legacy_ids_keep_working(
    api, db_url
):
    # Given a registry from before ids were namespaced: carol holds bob's id "bob", and
    # alice holds the free-form id "alice-env"
    register_before_namespacing(db_url, "bob", "carol", "vault-101")
    register_before_namespacing(db_url, "alice-env", "alice", "vault-13")
    # when bob's server reports for its id, it is registered as his (201, not 403 forever)
    assert (await api("POST", "snapshots", "bob", snapshot_report("bob", "b0" * 32))).code == 201
    assert (await api("POST", "events", "bob", event_report("bob"))).code == 201
    assert await visible(api, "bob") == {"bob": "own", "alice-env": "lab"}
    drift = answer(await api("GET", "environments/bob/drift", "bob"))
    assert [e["reported_by"] for e in drift["events"]] == ["bob"]
    # carol's squatted record is kept under her own namespace, with her snapshot and events
    assert await visible(api, "carol") == {"carol:bob": "own"}
    carols = answer(await api("GET", "environments/carol:bob/drift", "carol"))
    assert [e["reported_by"] for e in carols["events"]] == ["carol"]
    package = answer(await api("GET", "knowledge/transfer?environment_id=carol:bob", "carol"))
    assert [s["id"] for s in package["snapshots"]] == ["63" * 32]
    assert ("environment.reclaim", "ok") in await audit_outcomes(api, "bob")
    # and a legacy id keeps working for its recorded owner only
    report = snapshot_report("alice-env", "a1" * 32)
    assert (await api("POST", "snapshots", "alice", report)).code == 201
    assert (await api("POST", "events", "carol", event_report("alice-env"))).code == 403
