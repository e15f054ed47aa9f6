"""A successor takes over a handed-over environment through the hub service: by launching a
server that does it before JupyterLab opens, or through their running server.

Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio

from tests.core.kb.test_lab_memory import BOB_ANALYSIS
from tests.hub.conftest import answer, store_snapshot
from tests.hub.test_lab_knowledge import report
from tests.hub.test_panel import fetch
from tests.hub.test_registry_api import snapshot_report
from westtek_core.kb.lab_client import visible_snapshots

TAKE_OVER = "environments/take-over"


async def handed_to_alice(api, lab_stores) -> str:
    """bob's snapshot in vault-13's store, and his environment handed to alice by dana."""
    snapshot = await report(api, lab_stores, "bob", "vault-13", {"analysis.ipynb": BOB_ANALYSIS})
    handed = await api("POST", "knowledge/transfer", "dana",
                       {"environment_id": "bob", "to_researcher": "alice"})  # fmt: skip
    assert handed.code == 200, answer(handed)
    return snapshot


async def test_a_successor_without_a_server_launches_one_that_takes_over(api, lab_stores, fake_hub):
    hub, _ = fake_hub
    bobs = await handed_to_alice(api, lab_stores)
    response = await api("POST", TAKE_OVER, "alice", {"environment_id": "bob"})
    assert response.code == 202, answer(response)
    assert answer(response) | {"user_options": None} == {
        "user": "alice",
        "server_name": "",
        "user_options": None,
        "environment_id": "bob",
        "predecessor": "bob",
        "snapshot_id": bobs,
    }
    # her own server starts (not bob's environment), told what to take over from whom: in
    # the same lab, the latest snapshot the registry holds (bob may store later ones)
    taken = {"westtek_take_over": "bob", "westtek_predecessor": "bob",
             "westtek_take_over_snapshot": bobs}  # fmt: skip
    assert hub.started == [("alice", "", taken)]
    log = answer(await api("GET", "audit", "overseer"))["entries"]
    actions = [(e["action"], e["outcome"], e["actor"]) for e in log[-2:]]
    assert actions == [("environment.take_over", "ok", "alice"), ("server.launch", "ok", "alice")]


async def test_a_running_server_takes_over_as_a_job(api, lab_stores, fake_hub, service):
    hub, hub_api = fake_hub
    bobs = await handed_to_alice(api, lab_stores)
    hub.running["alice"] = "/user/alice/"
    service.tornado_app.settings["westtek_public_url"] = hub_api.removesuffix("/hub/api")
    response = await api("POST", TAKE_OVER, "alice", {"environment_id": "bob"})
    assert response.code == 202, answer(response)
    assert answer(response)["job"]["kind"] == "take-over"
    assert answer(response)["open"] == "/user/alice/westtek/start-here"
    assert hub.server_posts == [
        ("alice", "take-over", {"environment_id": "bob", "predecessor": "bob", "snapshot_id": bobs})
    ]
    assert hub.started == []  # no second server


async def test_only_the_holder_of_a_handed_over_environment_takes_it_over(
    api, lab_stores, fake_hub
):
    hub, _ = fake_hub
    await handed_to_alice(api, lab_stores)
    await report(api, lab_stores, "dana", "vault-13", {"analysis.ipynb": BOB_ANALYSIS})
    refusals = {
        # bob gave it away; dana administers the lab but does not hold it
        ("bob", "bob"): (403, "bob may not act on environment 'bob'"),
        ("dana", "bob"): (403, "bob is alice's: only its holder takes it over"),
        # nobody handed dana's own environment to her; carol's lab cannot see bob's
        ("dana", "dana"): (400, "dana was never handed to dana: nothing to take over"),
        ("carol", "bob"): (404, None),
        ("alice", ""): (400, None),
    }
    for (user, env), (code, message) in refusals.items():
        response = await api("POST", TAKE_OVER, user, {"environment_id": env})
        assert response.code == code, (user, env, answer(response))
        if message:
            assert answer(response)["message"] == message
    assert hub.started == [] and hub.server_posts == []


async def test_an_environment_without_snapshots_cannot_be_taken_over(api, fake_hub):
    hub, _ = fake_hub
    event = {"environment_id": "bob", "lab_id": "vault-13", "status": "STABLE", "changes": [],
             "time": 1_700_000_000}  # fmt: skip
    assert (await api("POST", "events", "bob", event)).code in (200, 201)
    handed = await api("POST", "knowledge/transfer", "dana",
                       {"environment_id": "bob", "to_researcher": "alice"})  # fmt: skip
    assert handed.code == 200, answer(handed)
    response = await api("POST", TAKE_OVER, "alice", {"environment_id": "bob"})
    assert (response.code, answer(response)["message"]) == (
        400,
        "bob has no snapshot to take over",
    )
    assert hub.started == []


async def test_the_succession_page_offers_the_take_over_to_the_holder_only(
    api, lab_stores, service
):
    await handed_to_alice(api, lab_stores)
    page = (await fetch(service, "succession?environment_id=bob", "alice")).body.decode()
    assert 'data-westtek-action="take-over"' in page and "bob handed bob to you" in page
    for other in ("dana", "overseer"):
        page = (await fetch(service, "succession?environment_id=bob", other)).body.decode()
        assert 'id="westtek-take-over"' not in page, other


async def test_the_former_owners_next_server_reports_as_their_own_environment(api, lab_stores):
    def own_id(user: str, server: str = ""):
        return api("GET", f"environments/own-id?server_name={server}", user)

    # Before the hand-over bob's server reports as bob,
    assert answer(await own_id("bob")) == {"environment_id": "bob"}
    await handed_to_alice(api, lab_stores)
    # after it, "bob" names alice's environment: bob's next server takes the next generation
    assert answer(await own_id("bob")) == {"environment_id": "bob:@2"}
    assert answer(await own_id("bob", "gpu")) == {"environment_id": "bob:gpu"}
    assert answer(await own_id("alice")) == {"environment_id": "alice"}
    # (a server still reporting as "bob" is refused: it is not his),
    stale = store_snapshot(lab_stores / "vault-13", "bob", {"new.ipynb": BOB_ANALYSIS})
    assert (await api("POST", "snapshots", "bob", snapshot_report("bob", stale))).code == 403
    # the next generation registers as his own, and stays his,
    fresh = store_snapshot(lab_stores / "vault-13", "bob:@2", {"x.ipynb": BOB_ANALYSIS})
    reported = await api("POST", "snapshots", "bob", snapshot_report("bob:@2", fresh))
    assert reported.code == 201, answer(reported)
    assert answer(await own_id("bob")) == {"environment_id": "bob:@2"}
    mine = answer(await api("GET", "environments", "bob"))["environments"]
    assert {e["id"]: e["access"] for e in mine}["bob:@2"] == "own"
    assert {e["id"]: e["access"] for e in mine}["bob"] == "lab"  # alice's now
    # until that one is handed over too.
    handed = await api("POST", "knowledge/transfer", "dana",
                       {"environment_id": "bob:@2", "to_researcher": "alice"})  # fmt: skip
    assert handed.code == 200, answer(handed)
    assert answer(await own_id("bob")) == {"environment_id": "bob:@3"}
    assert (await own_id("bob", "a/b")).code == 400


async def test_a_handed_over_environment_leaves_its_former_owners_snapshot_list(
    api, lab_stores, service, monkeypatch
):
    bobs = await handed_to_alice(api, lab_stores)
    fresh = store_snapshot(lab_stores / "vault-13", "bob:@2", {"x.ipynb": BOB_ANALYSIS})
    assert (await api("POST", "snapshots", "bob", snapshot_report("bob:@2", fresh))).code == 201
    # what bob's and alice's servers list of the lab's store (their own env first)
    store = [{"id": bobs, "environment_id": "bob", "created_by": "bob"},
             {"id": fresh, "environment_id": "bob:@2", "created_by": "bob"},
             {"id": "cafe", "environment_id": "bob:gpu", "created_by": "bob"}]  # fmt: skip
    monkeypatch.setenv("JUPYTERHUB_URL", service.base.removesuffix("/services/westtek/api/"))
    monkeypatch.setenv("JUPYTERHUB_BASE_URL", "/")

    async def listed(user: str) -> dict[str, str | None]:
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", f"{user}-token")
        shown = await asyncio.to_thread(visible_snapshots, store)
        return {s["environment_id"]: s["holder"] for s in shown}

    # bob's list no longer has the environment he handed over,
    assert await listed("bob") == {"bob:@2": "bob", "bob:gpu": None}
    # alice's shows it as hers now, taken by bob.
    assert await listed("alice") == {"bob": "alice", "bob:@2": "bob", "bob:gpu": None}
    # Outside JupyterHub the store's list is as it is.
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN")
    assert await asyncio.to_thread(visible_snapshots, store) == store
