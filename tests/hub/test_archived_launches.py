"""A launch from a shared snapshot whose packs are in Deep Archive waits, then starts by itself.

The labs' stores are on moto (S3 on loopback) with the shared snapshot's packs in
DEEP_ARCHIVE, as the lifecycle leaves them after a year. The launch asks S3 for them back
and is recorded as waiting ("waiting for archive, ready in about N hours", in the API and
the panel); the service's rounds keep it waiting while S3 thaws them, then copy the
snapshot into the caller's lab's store and start the server, without anyone asking again,
unless the share was revoked meanwhile.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from tests.core.store.archived import (
    FILES,
    MORE_FILES,
    archive_packs,
    set_restore_state,
    write_snapshot,
)
from tests.core.store.conftest import (  # noqa: F401 - fixtures
    moto_endpoint,
    s3_bucket,
    s3_endpoint,
    thawing_held,
)
from tests.hub.conftest import Service, answer
from tests.hub.test_panel import fetch, text
from tests.hub.test_registry_api import snapshot_report
from westtek_core.snapshot import iter_files
from westtek_core.store import Repository, S3Backend
from westtek_hub.archived_launches import waiting_launches_of
from westtek_hub.service import close_hub_http_client

pytestmark = pytest.mark.usefixtures("thawing_held")


@pytest.fixture
async def service(
    fake_hub,
    db_url: str,
    tmp_path: Path,
    s3_bucket: str,  # noqa: F811 - the fixture
    quotas,
) -> AsyncIterator[Service]:
    """The hub service with the labs' stores in the moto bucket."""
    stores = {"store_template": f"s3://{s3_bucket}/labs/{{lab_id}}"}
    running = Service(fake_hub[1], db_url, tmp_path / "hub-data", quotas,
                      extra_config=Config({"LabStores": stores}))  # fmt: skip
    running.start()
    yield running
    running.stop()
    await close_hub_http_client()


@pytest.fixture
def archived_share(s3_bucket: str, tmp_path: Path) -> tuple[S3Backend, str, list[str]]:  # noqa: F811
    """alice's snapshot in vault-13's store, its packs in Deep Archive: (backend, id, packs)."""
    backend = S3Backend(bucket=s3_bucket, prefix="labs/vault-13")
    with Repository.open(backend, cache_dir=tmp_path / "writer-cache") as repo:
        snapshot_id = write_snapshot(repo, FILES, MORE_FILES)
    return backend, snapshot_id, archive_packs(backend)


async def share_with_vault_101(api, snapshot_id: str) -> None:
    reported = await api("POST", "snapshots", "alice", snapshot_report("alice", snapshot_id))
    assert reported.code == 201, answer(reported)
    shared = await api(
        "POST", "collaboration/share", "alice",
        {"snapshot_id": snapshot_id, "to_lab": "vault-101", "permission": "restore"},
    )  # fmt: skip
    assert shared.code == 201, answer(shared)


async def launches(api, user: str) -> list[dict[str, Any]]:
    response = await api("GET", "environments/launches", user)
    assert response.code == 200, answer(response)
    return list(answer(response)["launches"])


def thaw(backend: S3Backend, packs: list[str], state: str) -> None:
    for key in packs:
        set_restore_state(backend.bucket, backend._key(key), state)


async def audited(api) -> list[tuple[str, str]]:
    log = answer(await api("GET", "audit", "overseer"))
    return [(e["action"], e["outcome"]) for e in log["entries"]]


async def test_a_launch_waits_for_archive_then_starts_by_itself(
    api,
    fake_hub,
    service,
    archived_share,
    s3_bucket: str,  # noqa: F811 - the fixture
    tmp_path: Path,
):
    hub, _ = fake_hub
    backend, snapshot_id, packs = archived_share
    await share_with_vault_101(api, snapshot_id)

    # When carol launches from the shared snapshot, a year on
    launch = await api("POST", "environments/jupyter", "carol", {"snapshot_id": snapshot_id})

    # Then the packs are asked back, the launch waits, and nothing starts yet
    assert launch.code == 202, answer(launch)
    waiting = answer(launch)["waiting"]
    assert waiting["state"] == "waiting" and waiting["ready_in_hours"] == 12
    assert waiting["waiting"] == (
        f"waiting for archive, ready in about 12 hours: 2 packs of snapshot {snapshot_id[:12]}"
        " coming back from archive storage, Standard retrieval"
    )
    assert hub.started == []
    head = backend.client.head_object(Bucket=s3_bucket, Key=backend._key(packs[0]))
    assert "Restore" in head  # the restore was requested
    # carol, her lab's admin and the hub admin see it; alice, in another lab, does not
    assert [w["id"] for w in await launches(api, "carol")] == [waiting["id"]]
    assert [w["id"] for w in await launches(api, "erin")] == [waiting["id"]]
    assert [w["id"] for w in await launches(api, "overseer")] == [waiting["id"]]
    assert await launches(api, "alice") == []
    panel = await fetch(service, "", "carol")
    assert panel.code == 200 and waiting["waiting"] in text(panel)

    # When the service's round comes while S3 still thaws them, it keeps waiting
    rounds = waiting_launches_of(service.tornado_app)
    thaw(backend, packs, "IN_PROGRESS")
    assert await rounds.resume() == 0
    assert hub.started == [] and len(await launches(api, "carol")) == 1

    # When they are back, the next round copies the snapshot and starts carol's server
    thaw(backend, packs, "RESTORED")
    assert await rounds.resume() == 1
    copy_store = Repository.open(f"s3://{s3_bucket}/labs/vault-101", create=False,
                                 cache_dir=tmp_path / "reader-cache")  # fmt: skip
    [copied] = copy_store.list_manifests()
    assert hub.started == [("carol", "", {"westtek_restore_snapshot": copied})]
    restored = {
        item.path: b"".join(copy_store.read_chunk(c) for c in item.chunks)
        for item in iter_files(copy_store.load_manifest(copied))
    }
    copy_store.close()
    assert restored == FILES | MORE_FILES
    assert await launches(api, "carol") == []
    trail = await audited(api)
    assert ("server.launch.archived", "ok") in trail
    assert trail.index(("snapshot.copy", "ok")) < trail.index(("server.launch", "ok"))

    # And a further round has nothing left to do
    assert await rounds.resume() == 0
    assert len(hub.started) == 1


async def test_a_launch_whose_share_is_revoked_while_it_waits_never_starts(
    api,
    fake_hub,
    service,
    archived_share,
    s3_bucket: str,  # noqa: F811 - the fixture
    tmp_path: Path,
):
    hub, _ = fake_hub
    backend, snapshot_id, packs = archived_share
    await share_with_vault_101(api, snapshot_id)
    launch = answer(
        await api("POST", "environments/jupyter", "carol", {"snapshot_id": snapshot_id})
    )
    [share] = answer(await api("GET", "collaboration/share", "alice"))["shares"]
    assert (await api("DELETE", f"collaboration/share/{share['id']}", "alice")).code == 200

    # When the packs are back after the share was revoked
    thaw(backend, packs, "RESTORED")
    assert await waiting_launches_of(service.tornado_app).resume() == 0

    # Then nothing is copied or started, and carol is told why
    assert hub.started == []
    [failed] = await launches(api, "carol")
    assert failed["state"] == "failed" and failed["failure"] == (
        f"carol may no longer launch from it: no snapshot '{snapshot_id}'"
    )
    assert not list(backend.client.list_objects_v2(
        Bucket=s3_bucket, Prefix="labs/vault-101/snapshots/").get("Contents", []))  # fmt: skip
    # only those who see it may dismiss it
    gone = f"environments/launches/{launch['waiting']['id']}"
    assert (await api("DELETE", gone, "alice")).code == 404
    assert (await api("DELETE", gone, "carol")).code == 200
    assert await launches(api, "carol") == []
    assert ("server.launch.archived", "error") in await audited(api)


async def test_reassigning_an_archived_environment_asks_for_every_pack_then_moves_it(
    api,
    fake_hub,
    service,
    s3_bucket: str,  # noqa: F811 - the fixture
    tmp_path: Path,
):
    # Given bob's two snapshots in vault-13's store, a year on: their packs in Deep Archive
    backend = S3Backend(bucket=s3_bucket, prefix="labs/vault-13")
    with Repository.open(backend, cache_dir=tmp_path / "writer-cache") as repo:
        first, second = write_snapshot(repo, FILES), write_snapshot(repo, MORE_FILES)
    packs = archive_packs(backend)
    for snapshot_id in (first, second):
        report = snapshot_report("bob", snapshot_id)
        assert (await api("POST", "snapshots", "bob", report)).code == 201
    reassign = {"environment_id": "bob", "to_researcher": "carol"}

    # When the admin hands bob's environment to carol, in another lab
    moved = await api("POST", "knowledge/transfer", "overseer", reassign)

    # Then it stays put, every pack of both snapshots is asked back at once, and they are told
    assert moved.code == 502
    assert answer(moved)["message"] == (
        "'bob' was not reassigned yet: waiting for archive, ready in about 12 hours:"
        f" {len(packs)} packs of 2 snapshots coming back from archive storage, Standard"
        " retrieval; reassign it again once the data is back"
    )
    for key in packs:
        assert "Restore" in backend.client.head_object(Bucket=s3_bucket, Key=backend._key(key))
    carols = answer(await api("GET", "environments", "carol"))["environments"]
    assert "bob" not in {e["id"] for e in carols}

    # When the admin asks again once the packs are back, bob's environment moves to carol
    thaw(backend, packs, "RESTORED")
    moved = await api("POST", "knowledge/transfer", "overseer", reassign)
    assert moved.code == 200, answer(moved)
    assert answer(moved)["snapshots_copied"]["copied"].keys() == {first, second}
    carols = answer(await api("GET", "environments", "carol"))["environments"]
    assert "bob" in {e["id"] for e in carols}


@pytest.mark.parametrize("quotas", [{"vault-101": {"servers": 1}}])
async def test_a_launch_whose_data_is_back_waits_for_a_place_in_its_labs_quota(
    api,
    fake_hub,
    service,
    archived_share,
):
    hub, _ = fake_hub
    backend, snapshot_id, packs = archived_share
    await share_with_vault_101(api, snapshot_id)
    launch = await api("POST", "environments/jupyter", "carol", {"snapshot_id": snapshot_id})
    assert launch.code == 202, answer(launch)
    # When the data is back while erin's server takes vault-101's one place
    hub.running["erin"] = "/user/erin/"
    thaw(backend, packs, "RESTORED")
    rounds = waiting_launches_of(service.tornado_app)
    assert await rounds.resume() == 0
    # Then it keeps waiting, saying why, and copies nothing yet
    [waiting] = await launches(api, "carol")
    assert waiting["state"] == "waiting" and waiting["waiting"] == (
        "waiting for a server place: lab vault-101 already runs 1 of its 1 servers: stop one first"
    )
    assert hub.started == [] and "snapshot.copy" not in {a for a, _ in await audited(api)}
    # And once erin's server stops, the next round starts carol's
    del hub.running["erin"]
    assert await rounds.resume() == 1
    assert [user for user, _, _ in hub.started] == ["carol"]
