"""Per-lab quotas: concurrent servers, snapshot storage and API rate, each a clear refusal."""

from __future__ import annotations

import pytest

from tests.hub.conftest import answer
from tests.hub.test_registry_api import SNAPSHOT, seed


@pytest.fixture
def quotas():
    return {
        "vault-13": {"servers": 1, "snapshot_bytes": 200_000},
        "vault-101": {"requests_per_minute": 5},
    }


async def test_a_lab_at_its_server_quota_cannot_launch_another(api, fake_hub):
    hub, _ = fake_hub
    await seed(api)
    hub.running["bob"] = "/user/bob/"
    launch = await api("POST", "environments/jupyter", "dana", {"environment_id": "alice"})
    assert launch.code == 403
    assert "already runs 1 of its 1 servers" in answer(launch)["message"]
    assert hub.started == []  # nothing half-done
    del hub.running["bob"]
    launch = await api("POST", "environments/jupyter", "dana", {"environment_id": "alice"})
    assert launch.code == 202


async def test_a_lab_over_its_snapshot_storage_cannot_snapshot(api):
    await seed(api)  # alice's and bob's snapshots: 2 x 123,456 bytes in vault-13
    response = await api("POST", "environments/snapshot", "dana", {"environment_id": "alice"})
    assert response.code == 403
    assert "snapshot storage quota (246912 of 200000 bytes)" in answer(response)["message"]
    log = answer(await api("GET", "audit", "overseer"))["entries"]
    assert (log[-1]["action"], log[-1]["outcome"]) == ("snapshot.request", "denied")


async def test_the_api_rate_is_limited_per_researcher_of_a_lab(api):
    await seed(api)  # carol has made 1 request already
    codes = [(await api("GET", "environments", "carol")).code for _ in range(6)]
    assert codes == [200, 200, 200, 200, 429, 429]
    refused = await api("GET", "environments", "carol")
    assert "over the API rate of 5 requests a minute" in answer(refused)["message"]
    assert (await api("GET", "environments", "alice")).code == 200  # another lab: unlimited
    assert (await api("GET", "environments", "overseer")).code == 200
    log = answer(await api("GET", "audit", "overseer"))["entries"]
    assert ("carol", "api.rate", "refused") in [
        (e["actor"], e["action"], e["outcome"]) for e in log
    ]


def test_bad_quota_configuration_is_refused():
    from westtek_hub.registry import Quota

    with pytest.raises(ValueError, match="unknown quota keys: gpus"):
        Quota.from_config({"gpus": 1})
    with pytest.raises(ValueError, match="must not be negative"):
        Quota.from_config({"servers": -1})


async def test_a_lab_over_its_storage_quota_can_still_share(api):
    # vault-13 is over its snapshot storage quota: no new snapshot,
    await seed(api)
    refused = await api("POST", "environments/snapshot", "dana", {"environment_id": "alice"})
    assert refused.code == 403 and "storage quota" in answer(refused)["message"]
    # but a share adds no bytes, so it goes through, and the other lab sees the environment
    shared = await api(
        "POST",
        "collaboration/share",
        "alice",
        {"snapshot_id": SNAPSHOT, "to_lab": "vault-101", "permission": "read"},
    )
    assert shared.code == 201, answer(shared)
    listed = answer(await api("GET", "environments", "carol"))["environments"]
    assert {e["id"]: e["access"] for e in listed} == {"carol": "own", "alice": "shared-read"}


async def test_lab_admins_see_their_labs_storage_and_what_a_prune_would_free(api):
    await seed(api)
    # three more of alice's snapshots, each adding 1 MB of new bytes to the store
    for day in (21, 22, 23):
        body = {
            "id": f"{day:02d}" * 32,
            "environment_id": "alice",
            "created_by": "alice",
            "timestamp": f"2026-11-{day}T10:00:00+00:00",
            "size_bytes": 5_000_000,
            "metadata": {"stored_bytes": 1_000_000},
        }
        assert (await api("POST", "snapshots", "alice", body)).code == 201
    report = answer(await api("GET", "storage", "dana"))
    (lab,) = report["labs"]
    assert lab["lab"] == "vault-13" and lab["snapshots"] == 5
    assert lab["logical_bytes"] == 2 * 123_456 + 3 * 5_000_000
    assert lab["stored_bytes"] == 3_000_000
    assert lab["dedup_savings_bytes"] == lab["logical_bytes"] - 3_000_000
    assert lab["quota_bytes"] == 200_000
    # the default policy keeps them all (10 last); nothing to free yet
    assert (lab["prune_would_delete"], lab["prune_would_free_bytes"]) == (0, 0)
    assert answer(await api("GET", "storage", "alice"))["labs"] == []  # not a lab admin
    assert {r["lab"] for r in answer(await api("GET", "storage", "overseer"))["labs"]} == {
        "vault-13",
        "vault-101",
    }


def test_a_prune_frees_the_new_bytes_of_the_snapshots_it_drops():
    from datetime import datetime, timezone

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from westtek_core.snapshot.retention import RetentionPolicy
    from westtek_hub.db import upgrade
    from westtek_hub.models import Environment, Lab, Researcher, Snapshot
    from westtek_hub.registry import Caller, Quota, lab_storage

    engine = create_engine("sqlite://")
    upgrade(engine)
    with Session(engine) as session:
        session.add_all([Lab(id="vault-13"), Researcher(name="alice")])
        session.flush()
        session.add(
            Environment(id="alice", lab_id="vault-13", researcher_id="alice", last_snapshot_id="s3")
        )
        for index in (1, 2, 3):
            session.add(
                Snapshot(
                    id=f"s{index}",
                    environment_id="alice",
                    created_by="alice",
                    timestamp=datetime(2026, 11, index, tzinfo=timezone.utc),
                    size_bytes=10,
                    snap_metadata={"stored_bytes": 100 * index},
                )
            )
        session.flush()
        (lab,) = lab_storage(
            session, Caller("overseer", admin=True), RetentionPolicy(keep_last=1), lambda _: Quota()
        )
    assert (lab["prune_would_delete"], lab["prune_would_free_bytes"]) == (2, 300)
