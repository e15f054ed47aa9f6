"""Sharing gives exactly what was shared: one snapshot, for as long as the share lasts.

A share does not open the environment's other snapshots, drift events or install history
to the recipient lab; revoking it removes the copy a launch made in the recipient lab's
store, and the registry says so; a share to a lab that does not exist is refused. Every
test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from tests.hub.conftest import answer, store_snapshot
from tests.hub.test_registry_api import SNAPSHOT, event_report, seed, snapshot_report, visible
from westtek_core.store import Repository
from westtek_hub.db import make_engine, session_factory, upgrade
from westtek_hub.models import Share
from westtek_hub.registry import share_json

LATER = "a1" * 32


def numpy_upgrade(event_id: int) -> dict[str, Any]:
    """A drift event of alice's: an install the recipient lab must not learn of."""
    change = {
        "kind": "package",
        "name": "numpy",
        "change": "upgraded",
        "before": "1.26.4",
        "after": "2.0.0",
        "severity": "critical",
        "affected_notebooks": [],
        "reason": "",
    }
    return event_report("alice", event_id) | {"changes": [change]}


async def share(api, user: str, snapshot: str, to_lab: str, permission: str = "read"):
    body = {"snapshot_id": snapshot, "to_lab": to_lab, "permission": permission}
    return await api("POST", "collaboration/share", user, body)


async def test_a_share_shows_the_shared_snapshot_not_the_environments_history(api):
    # Given alice's environment with an older snapshot, a later one, drift and installs,
    await seed(api)
    later = snapshot_report("alice", LATER, timestamp="2026-11-21T10:00:00+00:00")
    later["metadata"] = {"installed_packages": ["numpy==2.0.0"]}
    assert (await api("POST", "snapshots", "alice", later)).code == 201
    assert (await api("POST", "events", "alice", numpy_upgrade(2))).code == 201
    # when she shares only the older snapshot with vault-101,
    assert (await share(api, "alice", SNAPSHOT, "vault-101")).code == 201
    # carol's lab sees the environment with that snapshot and nothing of its history
    rows = {e["id"]: e for e in answer(await api("GET", "environments", "carol"))["environments"]}
    alice = rows["alice"]
    assert alice["access"] == "shared-read"
    assert alice["last_snapshot_id"] == SNAPSHOT
    assert [s["id"] for s in alice["shared_snapshots"]] == [SNAPSHOT]
    assert alice["drift_status"] is None
    assert alice["metadata"] == {} and alice["container_info"] == {}
    assert LATER not in str(alice) and "numpy" not in str(alice)
    critical = answer(await api("GET", "environments?drift=CRITICAL_DRIFT", "carol"))
    assert "alice" not in {e["id"] for e in critical["environments"]}
    for path in (
        "environments/alice/drift",
        "events?environment_id=alice",
        "knowledge/transfer?environment_id=alice",
    ):
        refused = await api("GET", path, "carol")
        assert refused.code == 403, (path, answer(refused))
        assert "not its history" in answer(refused)["message"]
    events = answer(await api("GET", "events", "carol"))["events"]
    assert {e["environment_id"] for e in events} <= {"carol"}
    # while alice's own lab still sees all of it
    assert (await api("GET", "environments/alice/drift", "bob")).code == 200
    package = answer(await api("GET", "knowledge/transfer?environment_id=alice", "bob"))
    assert [i["package"] for i in package["install_history"]] == ["numpy"]


async def test_revoking_a_share_removes_the_copy_from_the_recipient_labs_store(
    api, fake_hub, lab_stores: Path
):
    # Given alice's real snapshot shared with vault-101 for restoring, and carol's launch
    # from it, which copied it into her lab's store,
    hub, _ = fake_hub
    await seed(api)
    real = store_snapshot(lab_stores / "vault-13", "alice", {"analysis.ipynb": b"{}"})
    assert (await api("POST", "snapshots", "alice", snapshot_report("alice", real))).code == 201
    created = answer(await share(api, "alice", real, "vault-101", "restore"))
    launch = await api("POST", "environments/jupyter", "carol", {"snapshot_id": real})
    assert launch.code == 202, answer(launch)
    recipient = lab_stores / "vault-101"
    with_copy = Repository.open(str(recipient), create=False)
    assert with_copy.list_manifests() == [real]
    with_copy.close()
    # when alice revokes the share,
    revoked = await api("DELETE", f"collaboration/share/{created['id']}", "alice")
    assert revoked.code == 200, answer(revoked)
    # the copy is gone from vault-101's store, and the registry says so
    after = Repository.open(str(recipient), create=False)
    assert after.list_manifests() == []
    after.close()
    record = answer(revoked)
    assert record["revoked_at"] and record["copy_id"] == real and record["copy_removed_at"]
    log = answer(await api("GET", "audit", "overseer"))["entries"]
    (entry,) = [e for e in log if e["action"] == "share.copy_remove"]
    assert (entry["actor"], entry["lab_id"], entry["detail"]["copy"]) == (
        "alice",
        "vault-101",
        real,
    )
    # and carol can no longer start a server from it
    hub.started.clear()
    again = await api("POST", "environments/jupyter", "carol", {"snapshot_id": real})
    assert again.code == 404 and hub.started == []  # as missing as a snapshot never shared
    assert "alice" not in await visible(api, "carol")


async def test_a_revoke_whose_copy_cannot_be_removed_says_so_and_can_be_retried(
    api, lab_stores: Path
):
    # Given a launched restore share whose recipient store then breaks,
    await seed(api)
    real = store_snapshot(lab_stores / "vault-13", "alice", {"analysis.ipynb": b"{}"})
    assert (await api("POST", "snapshots", "alice", snapshot_report("alice", real))).code == 201
    created = answer(await share(api, "alice", real, "vault-101", "restore"))
    assert (await api("POST", "environments/jupyter", "carol", {"snapshot_id": real})).code == 202
    recipient = lab_stores / "vault-101"
    recipient.rename(lab_stores / "moved-away")
    recipient.write_text("not a store")
    # the share ends at once, and the answer says the copy is still there and why,
    refused = await api("DELETE", f"collaboration/share/{created['id']}", "alice")
    assert refused.code == 502
    message = answer(refused)["message"]
    assert f"share {created['id']} is revoked, but its copy {real[:12]}" in message
    assert "could not be removed from lab vault-101's store" in message
    assert "alice" not in await visible(api, "carol")
    for user in ("alice", "carol"):
        (pending,) = answer(await api("GET", "collaboration/share", user))["shares"]
        assert pending["revoked_at"] and pending["copy_id"] == real
        assert pending["copy_removed_at"] is None
    # and revoking again once the store is back removes it
    recipient.unlink()
    (lab_stores / "moved-away").rename(recipient)
    again = await api("DELETE", f"collaboration/share/{created['id']}", "alice")
    assert again.code == 200 and answer(again)["copy_removed_at"]
    held = Repository.open(str(recipient), create=False)
    assert held.list_manifests() == []
    held.close()
    gone = await api("DELETE", f"collaboration/share/{created['id']}", "alice")
    assert gone.code == 404
    assert answer(await api("GET", "collaboration/share", "alice"))["shares"] == []


async def test_a_copy_another_share_still_covers_stays_until_that_one_is_revoked(
    api, lab_stores: Path
):
    # Given alice's snapshot shared with vault-101 for restoring, launched there (copied),
    await seed(api)
    real = store_snapshot(lab_stores / "vault-13", "alice", {"analysis.ipynb": b"{}"})
    assert (await api("POST", "snapshots", "alice", snapshot_report("alice", real))).code == 201
    first = answer(await share(api, "alice", real, "vault-101", "restore"))
    assert (await api("POST", "environments/jupyter", "carol", {"snapshot_id": real})).code == 202
    # and shared again by her lab admin after the launch,
    second = answer(await share(api, "dana", real, "vault-101", "restore"))

    def copies() -> list[str]:
        store = Repository.open(str(lab_stores / "vault-101"), create=False)
        try:
            return store.list_manifests()
        finally:
            store.close()

    # revoking the first share leaves the copy, which the second still covers,
    revoked = answer(await api("DELETE", f"collaboration/share/{first['id']}", "alice"))
    assert revoked["revoked_at"] and revoked["copy_removed_at"] is None
    assert copies() == [real]
    launch = await api("POST", "environments/jupyter", "carol", {"snapshot_id": real})
    assert launch.code == 202
    # and revoking the second removes it
    last = answer(await api("DELETE", f"collaboration/share/{second['id']}", "dana"))
    assert last["copy_id"] == real and last["copy_removed_at"]
    assert copies() == []
    assert answer(await api("GET", "collaboration/share", "alice"))["shares"] == []


async def test_sharing_with_a_lab_that_does_not_exist_is_refused_not_created(api):
    # Given a lab the configuration names, whose members have not reported yet,
    assert (await api("POST", "snapshots", "alice", snapshot_report("alice"))).code == 201
    assert (await share(api, "alice", SNAPSHOT, "vault-101")).code == 201
    # a share with a lab that does not exist is refused, and no lab appears
    refused = await share(api, "alice", SNAPSHOT, "no-such-lab")
    assert refused.code == 404
    assert answer(refused)["message"] == "no lab 'no-such-lab': share with a lab the hub knows"
    storage = answer(await api("GET", "storage", "overseer"))["labs"]
    assert {lab["lab"] for lab in storage} == {"vault-13", "vault-101"}
    shares = answer(await api("GET", "collaboration/share", "overseer"))["shares"]
    assert [s["to_lab"] for s in shares] == ["vault-101"]


def test_shares_made_before_copies_were_recorded_survive_the_upgrade(db_url):
    # Given a registry at the first schema with a share,
    engine = make_engine(db_url)
    upgrade(engine, "0001")
    now = "2026-11-20 10:00:00+00:00"
    with engine.begin() as db:
        for statement in (
            "INSERT INTO labs VALUES ('vault-13', :now), ('vault-101', :now)",
            "INSERT INTO researchers VALUES ('alice', :now)",
            "INSERT INTO environments (id, lab_id, researcher_id, name, created_at, drift_status,"
            " container_info, metadata) VALUES ('alice', 'vault-13', 'alice', 'alice', :now,"
            " 'STABLE', '{}', '{}')",
            "INSERT INTO snapshots (id, environment_id, created_by, timestamp, size_bytes,"
            " metadata) VALUES (:snap, 'alice', 'alice', :now, 0, '{}')",
            "INSERT INTO shares (snapshot_id, from_lab, to_lab, permission, created_by,"
            " created_at) VALUES (:snap, 'vault-13', 'vault-101', 'restore', 'alice', :now)",
        ):
            db.execute(text(statement), {"now": now, "snap": SNAPSHOT})
    # when the service upgrades it, the share is kept, with no copy recorded yet
    upgrade(engine)
    with session_factory(engine)() as session:
        record = share_json(session.scalars(select(Share)).one())
    engine.dispose()
    assert (record["snapshot_id"], record["to_lab"]) == (SNAPSHOT, "vault-101")
    assert record["copy_id"] is None and record["copy_removed_at"] is None
