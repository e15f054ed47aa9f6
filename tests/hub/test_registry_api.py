"""The hub service's registry API: isolation, sharing, succession and the audit log.

Every test runs on SQLite and on a real PostgreSQL server (the ``db_url`` fixture).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import update

from tests.hub.conftest import add_lab, answer, store_snapshot
from westtek_core.snapshot import iter_files
from westtek_core.store import Repository
from westtek_hub.db import make_engine, session_factory
from westtek_hub.models import AuditEntry

SNAPSHOT = "5a" * 32


def snapshot_report(env: str, snap: str = SNAPSHOT, **extra: Any) -> dict[str, Any]:
    return {
        "id": snap,
        "environment_id": env,
        "created_by": env,
        "timestamp": "2026-11-20T10:00:00+00:00",
        "size_bytes": 123456,
        "checksum": "c0ffee",
        "metadata": {"installed_packages": ["scipy==1.10.1"], "notebook_count": 3},
    } | extra


def event_report(env: str, event_id: int = 1, status: str = "CRITICAL_DRIFT") -> dict[str, Any]:
    return {"id": event_id, "time": 1_790_000_000.0 + event_id, "environment_id": env,
            "baseline": SNAPSHOT, "status": status, "changes": [], "resolved": []}  # fmt: skip


async def seed(api) -> None:
    """alice's and bob's environments in vault-13, carol's in vault-101, each with a snapshot."""
    for user, snap in (("alice", SNAPSHOT), ("bob", "b0" * 32), ("carol", "ca" * 32)):
        response = await api("POST", "snapshots", user, snapshot_report(user, snap))
        assert response.code == 201, answer(response)
    assert (await api("POST", "events", "alice", event_report("alice"))).code == 201


async def visible(api, user: str) -> dict[str, str]:
    response = await api("GET", "environments", user)
    assert response.code == 200
    return {e["id"]: e["access"] for e in answer(response)["environments"]}


async def test_labs_see_only_their_environments_until_a_share_and_the_audit_verifies(
    api, fake_hub, lab_stores
):
    hub, _ = fake_hub
    await seed(api)
    # alice's server stored a real snapshot in her lab's store and reported it
    analysis = {"analysis.ipynb": b'{"cells": []}', "data/x.csv": b"a,b\n1,2\n"}
    real = store_snapshot(lab_stores / "vault-13", "alice", analysis)
    assert (await api("POST", "snapshots", "alice", snapshot_report("alice", real))).code == 201
    # Given two labs, each sees only its own environments; the admin sees all
    assert await visible(api, "alice") == {"alice": "own", "bob": "lab"}
    assert await visible(api, "dana") == {"alice": "lab-admin", "bob": "lab-admin"}
    assert await visible(api, "carol") == {"carol": "own"}
    assert set(await visible(api, "overseer")) == {"alice", "bob", "carol"}
    drift = await api("GET", "environments/alice/drift", "carol")
    assert drift.code == 404 and answer(drift)["message"] == "no environment 'alice'"
    launch = await api("POST", "environments/jupyter", "carol", {"snapshot_id": SNAPSHOT})
    assert launch.code == 404

    # When alice shares her snapshot with vault-101 for restoring
    shared = await api(
        "POST", "collaboration/share", "alice",
        {"snapshot_id": real, "to_lab": "vault-101", "permission": "restore"},
    )  # fmt: skip
    assert shared.code == 201, answer(shared)

    # Then carol sees the environment (not its drift) and launches a new server restored from
    # it: the snapshot is copied into her lab's store, from which her own server restores it
    assert (await visible(api, "carol"))["alice"] == "shared-restore"
    drift = await api("GET", "environments/alice/drift", "carol")
    assert drift.code == 403 and "not its history" in answer(drift)["message"]
    launch = await api("POST", "environments/jupyter", "carol", {"snapshot_id": real[:12]})
    assert launch.code == 404  # a snapshot is named by its full id here
    launch = await api("POST", "environments/jupyter", "carol", {"snapshot_id": real})
    assert launch.code == 202, answer(launch)
    assert hub.started == [("carol", "", {"westtek_restore_snapshot": real})]
    copied = Repository.open(str(lab_stores / "vault-101"), create=False)
    assert copied.list_manifests() == [real]
    restored = {
        item.path: b"".join(copied.read_chunk(c) for c in item.chunks)
        for item in iter_files(copied.load_manifest(real))
    }
    assert restored == analysis
    copied.close()

    # And the admin reassigns bob's environment to carol, who then holds it: it moves to her
    # lab, and the snapshots its lab's store holds are copied to hers
    bobs = store_snapshot(lab_stores / "vault-13", "bob", {"fit.ipynb": b'{"cells": []}'})
    assert (await api("POST", "snapshots", "bob", snapshot_report("bob", bobs))).code == 201
    moved = await api(
        "POST",
        "knowledge/transfer",
        "overseer",
        {"environment_id": "bob", "to_researcher": "carol"},
    )
    assert moved.code == 200, answer(moved)
    assert answer(moved)["lab_id"] == "vault-101"
    assert answer(moved)["snapshots_copied"] == {
        "from_lab": "vault-13", "to_lab": "vault-101", "copied": {bobs: bobs},
        "not_in_store": ["b0" * 32],  # reported by bob's server, but not in the store
    }  # fmt: skip
    held = Repository.open(str(lab_stores / "vault-101"), create=False)
    assert bobs in held.list_manifests()
    held.close()
    assert (await visible(api, "carol"))["bob"] == "own"
    assert "bob" not in await visible(api, "alice")
    package = answer(await api("GET", "knowledge/transfer?environment_id=bob", "carol"))
    assert package["transfers"][0]["from"] == "bob" and package["onboarding_checklist"]

    # The audit log holds every step, denials included, and its chain verifies
    log = answer(await api("GET", "audit", "overseer"))
    assert log["verified"] is True
    steps = [(e["actor"], e["action"], e["outcome"]) for e in log["entries"]]
    for step in [
        ("alice", "snapshot.report", "ok"),
        ("carol", "environment.drift", "denied"),
        ("carol", "server.launch", "denied"),
        ("alice", "share.create", "ok"),
        ("carol", "snapshot.copy", "ok"),
        ("carol", "server.launch", "ok"),
        ("overseer", "environment.reassign", "ok"),
    ]:
        assert step in steps, step
    csv = await api("GET", "audit?format=csv", "overseer")
    assert csv.headers["Content-Type"].startswith("text/csv")
    assert csv.body.decode().splitlines()[0].startswith("seq,time,actor,action")
    assert (await api("GET", "audit", "dana")).code == 403


def westtek_audit_verify(db_url: str, service_dir: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "westtek_core.cli", "audit", "verify", "--db", db_url, "--json",
         "--key-file", f"{service_dir}/audit_key", "--anchor", f"{service_dir}/audit_anchor.json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


async def test_a_tampered_audit_log_fails_verification(api, db_url, service):
    await seed(api)
    verified = westtek_audit_verify(db_url, service.app.data_dir)
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["verified"] is True
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(actor="mallory"))
        session.commit()
    engine.dispose()
    log = answer(await api("GET", "audit", "overseer"))
    assert log["verified"] is False and "entry 2 was altered" in log["problem"]
    broken = westtek_audit_verify(db_url, service.app.data_dir)
    assert broken.returncode == 1 and "entry 2 was altered" in broken.stdout


async def test_revoking_a_share_hides_the_environment_again(api):
    await seed(api)
    share = answer(
        await api(
            "POST", "collaboration/share", "dana",
            {"snapshot_id": SNAPSHOT, "to_lab": "vault-101", "permission": "read"},
        )
    )  # fmt: skip
    assert (await visible(api, "carol"))["alice"] == "shared-read"
    launch = await api("POST", "environments/jupyter", "carol", {"snapshot_id": SNAPSHOT})
    assert launch.code == 403 and "read-only" in answer(launch)["message"]
    assert (await api("DELETE", f"collaboration/share/{share['id']}", "carol")).code == 403
    assert (await api("DELETE", f"collaboration/share/{share['id']}", "alice")).code == 200
    assert "alice" not in await visible(api, "carol")


async def share_for_restore(api, snapshot: str = SNAPSHOT) -> None:
    await seed(api)
    shared = await api(
        "POST", "collaboration/share", "alice",
        {"snapshot_id": snapshot, "to_lab": "vault-101", "permission": "restore"},
    )  # fmt: skip
    assert shared.code == 201, answer(shared)


async def refused_steps(api, action: str) -> list[tuple[str, str]]:
    log = answer(await api("GET", "audit", "overseer"))
    return [(e["outcome"], e["detail"]["reason"]) for e in log["entries"] if e["action"] == action]


async def test_a_shared_snapshot_missing_from_its_labs_store_starts_nothing(
    api, fake_hub, lab_stores
):
    # Given a shared snapshot that the registry knows but alice's lab store lacks,
    hub, _ = fake_hub
    store_snapshot(lab_stores / "vault-13", "alice", {"other.txt": b"not the shared one"})
    await share_for_restore(api)
    # when carol launches from it, she is told why and nothing starts or is half-copied
    launch = await api("POST", "environments/jupyter", "carol", {"snapshot_id": SNAPSHOT})
    assert launch.code == 502
    assert (
        f"snapshot {SNAPSHOT[:12]} could not be copied to lab vault-101"
        in answer(launch)["message"]
    )
    assert hub.started == []
    recipient = lab_stores / "vault-101" / "snapshots"
    assert not recipient.exists() or not any(recipient.iterdir())
    assert [o for o, _ in await refused_steps(api, "snapshot.copy")] == ["refused"]


@pytest.mark.parametrize("lab_stores", [None])
async def test_without_the_labs_stores_a_shared_launch_is_refused_clearly(api, fake_hub):
    hub, _ = fake_hub
    await share_for_restore(api)
    launch = await api("POST", "environments/jupyter", "carol", {"snapshot_id": SNAPSHOT})
    assert launch.code == 502 and "LabStores.store_template" in answer(launch)["message"]
    assert hub.started == []
    assert ("refused", answer(launch)["message"]) in await refused_steps(api, "server.launch")


async def test_a_reassignment_whose_snapshots_cannot_be_copied_moves_nothing(api, lab_stores):
    # Given bob's environment with a snapshot, and a recipient lab's store that is broken,
    await seed(api)
    bobs = store_snapshot(lab_stores / "vault-13", "bob", {"fit.ipynb": b"{}"})
    assert (await api("POST", "snapshots", "bob", snapshot_report("bob", bobs))).code == 201
    (lab_stores / "vault-101").write_text("not a store")
    # when the admin hands it to carol in that lab, it is refused with the reason,
    moved = await api(
        "POST",
        "knowledge/transfer",
        "overseer",
        {"environment_id": "bob", "to_researcher": "carol"},
    )
    assert moved.code == 502
    assert "could not be copied to lab vault-101's store" in answer(moved)["message"]
    # and bob still holds it, in his lab
    assert (await visible(api, "bob"))["bob"] == "own"
    assert [o for o, _ in await refused_steps(api, "snapshot.copy")] == ["refused"]


@pytest.mark.parametrize(
    ("user", "body", "status", "message"),
    [
        ("alice", b"{not json", 400, "not JSON"),
        ("alice", [1], 400, "JSON object"),
        ("alice", snapshot_report("alice", "0d" * 32, size_bytes=-1), 400, "size_bytes"),
        ("alice", snapshot_report("alice", "0d" * 32, timestamp="someday"), 400, "ISO 8601"),
        ("alice", snapshot_report("alice:2", "0d" * 32, lab_id="vault-101"), 403, "not in lab"),
        ("bob", snapshot_report("alice", "0b" * 32), 403, "not bob's"),
        ("drifter", snapshot_report("drifter"), 403, "in no lab"),
        ("alice", b"x" * (2 << 20), 413, "larger than"),
    ],
    ids=[
        "bad-json",
        "not-object",
        "negative-size",
        "bad-time",
        "forged-lab",
        "foreign-env",
        "no-lab",
        "oversized",
    ],  # fmt: skip
)
async def test_bad_reports_are_refused_and_only_audited(api, user, body, status, message):
    await seed(api)
    before = answer(await api("GET", "audit", "overseer"))["entries"]
    response = await api("POST", "snapshots", user, body)
    assert response.code == status
    assert message in answer(response)["message"]
    after = answer(await api("GET", "audit", "overseer"))["entries"]
    new = [e for e in after if e["seq"] > before[-1]["seq"]]
    # nothing written but the audit entry (plus the audit read itself)
    if status in (400, 403):
        assert [e["outcome"] for e in new if e["action"] == "snapshot.report"] in (
            ["denied"],
            ["refused"],
        )
    assert set(await visible(api, "overseer")) == {"alice", "bob", "carol"}


async def test_the_spawner_reports_where_the_server_runs(api):
    await seed(api)
    info = {"task_arn": "arn:aws:ecs:eu-west-1:1:task/c/abc", "cluster": "westtek",
            "jupyter_url": "http://10.0.0.5:8888/", "efs_access_point": "fsap-1"}  # fmt: skip
    response = await api(
        "PUT", "environments/alice/container", "alice", {"container_info": info,
                                                         "image_digest": "sha256:ab"}
    )  # fmt: skip
    assert response.code == 200, answer(response)
    drift = answer(await api("GET", "environments/alice/drift", "alice"))
    reported = dict(drift["environment"]["container_info"])
    # with when the service took the report (what a snapshot's image digest is checked by)
    assert datetime.fromisoformat(reported.pop("reported_at")).tzinfo is not None
    assert reported == info | {"image_digest": "sha256:ab"}
    assert (
        await api("PUT", "environments/alice/container", "carol", {"container_info": {}})
    ).code == 403
    refused = await api("PUT", "environments/alice/container", "alice",
                        {"container_info": info, "image_digest": ["sha256:ab"]})  # fmt: skip
    assert refused.code == 400 and "'image_digest' must be a string" in answer(refused)["message"]


# -- every endpoint × every role × own / foreign / shared lab ---------------------------

ROLES = {"researcher": "bob", "lab-admin": "dana", "admin": "overseer"}
# the environment in each situation, seen from vault-13's users (the admin sees all)
TARGETS = {"own-lab": "alice", "foreign-lab": "carol", "shared": "erin:env"}


def endpoint_calls(env: str, snapshot: str) -> dict[str, tuple[str, str, Any]]:
    return {
        "list": ("GET", "environments", None),
        "drift": ("GET", f"environments/{env}/drift", None),
        "launch": ("POST", "environments/jupyter", {"environment_id": env}),
        "launch-snapshot": ("POST", "environments/jupyter", {"snapshot_id": snapshot}),
        "snapshot": ("POST", "environments/snapshot", {"environment_id": env}),
        "share": ("POST", "collaboration/share",
                  {"snapshot_id": snapshot, "to_lab": "vault-8", "permission": "read"}),
        "share-unknown-lab": ("POST", "collaboration/share",
                              {"snapshot_id": snapshot, "to_lab": "vault-9", "permission": "read"}),
        "transfer-package": ("GET", f"knowledge/transfer?environment_id={env}", None),
        "reassign": ("POST", "knowledge/transfer",
                     {"environment_id": env, "to_researcher": "bob"}),
        "events": ("GET", f"events?environment_id={env}", None),
        "audit": ("GET", "audit", None),
    }  # fmt: skip


# expected status per endpoint, role, target (409: allowed, but the server isn't running;
# 404: another lab's environment is answered as missing, so its id and owner stay unknown)
EXPECTED: dict[str, dict[str, dict[str, int]]] = {
    "list": {r: {t: 200 for t in TARGETS} for r in ROLES},
    "drift": {  # a share covers snapshots, not the environment's history
        "researcher": {"own-lab": 200, "foreign-lab": 404, "shared": 403},
        "lab-admin": {"own-lab": 200, "foreign-lab": 404, "shared": 403},
        "admin": {"own-lab": 200, "foreign-lab": 200, "shared": 200},
    },
    "launch": {
        "researcher": {"own-lab": 403, "foreign-lab": 404, "shared": 403},
        "lab-admin": {"own-lab": 202, "foreign-lab": 404, "shared": 403},
        "admin": {"own-lab": 202, "foreign-lab": 202, "shared": 202},
    },
    "launch-snapshot": {
        "researcher": {"own-lab": 202, "foreign-lab": 404, "shared": 202},
        "lab-admin": {"own-lab": 202, "foreign-lab": 404, "shared": 202},
        "admin": {"own-lab": 202, "foreign-lab": 202, "shared": 202},
    },
    "snapshot": {
        "researcher": {"own-lab": 403, "foreign-lab": 404, "shared": 403},
        "lab-admin": {"own-lab": 409, "foreign-lab": 404, "shared": 403},
        "admin": {"own-lab": 409, "foreign-lab": 409, "shared": 409},
    },
    "share": {
        "researcher": {"own-lab": 403, "foreign-lab": 404, "shared": 403},
        "lab-admin": {"own-lab": 201, "foreign-lab": 404, "shared": 403},
        "admin": {"own-lab": 201, "foreign-lab": 201, "shared": 201},
    },
    "share-unknown-lab": {  # refused, never created: 404 once the caller may share at all
        "researcher": {"own-lab": 403, "foreign-lab": 404, "shared": 403},
        "lab-admin": {"own-lab": 404, "foreign-lab": 404, "shared": 403},
        "admin": {"own-lab": 404, "foreign-lab": 404, "shared": 404},
    },
    "transfer-package": {  # a share covers snapshots, not the environment's history
        "researcher": {"own-lab": 200, "foreign-lab": 404, "shared": 403},
        "lab-admin": {"own-lab": 200, "foreign-lab": 404, "shared": 403},
        "admin": {"own-lab": 200, "foreign-lab": 200, "shared": 200},
    },
    "reassign": {
        "researcher": {"own-lab": 403, "foreign-lab": 404, "shared": 403},
        "lab-admin": {"own-lab": 200, "foreign-lab": 404, "shared": 403},
        "admin": {"own-lab": 200, "foreign-lab": 200, "shared": 200},
    },
    "events": {  # a share covers snapshots, not the environment's history
        "researcher": {"own-lab": 200, "foreign-lab": 404, "shared": 403},
        "lab-admin": {"own-lab": 200, "foreign-lab": 404, "shared": 403},
        "admin": {"own-lab": 200, "foreign-lab": 200, "shared": 200},
    },
    "audit": {
        "researcher": {t: 403 for t in TARGETS},
        "lab-admin": {t: 403 for t in TARGETS},
        "admin": {t: 200 for t in TARGETS},
    },
}


@pytest.mark.parametrize("endpoint", sorted(EXPECTED))
async def test_every_endpoint_for_every_role_and_lab(api, endpoint, lab_stores, db_url):
    # Given alice's (vault-13), carol's and erin's (vault-101) environments, erin's shared,
    # and a third lab, vault-8, that the registry knows
    await seed(api)
    add_lab(db_url, "vault-8")
    erin = store_snapshot(lab_stores / "vault-101", "erin:env", {"notes.md": b"# erin"})
    assert (await api("POST", "snapshots", "erin", snapshot_report("erin:env", erin))).code == 201
    share = {"snapshot_id": erin, "to_lab": "vault-13", "permission": "restore"}
    assert (await api("POST", "collaboration/share", "erin", share)).code == 201
    snapshots = {"alice": SNAPSHOT, "carol": "ca" * 32, "erin:env": erin}
    for role, user in ROLES.items():
        for target, env in TARGETS.items():
            method, path, body = endpoint_calls(env, snapshots[env])[endpoint]
            if endpoint == "reassign" and role == "admin":
                successor = {"alice": "dana", "carol": "erin", "erin:env": "carol"}[env]
                body = {"environment_id": env, "to_researcher": successor}
            response = await api(method, path, user, body)
            expected = EXPECTED[endpoint][role][target]
            assert response.code == expected, (endpoint, role, target, answer(response))
            hidden = expected == 404 and target == "foreign-lab" and role != "admin"
            if expected == 403 or hidden:
                log = answer(await api("GET", "audit", "overseer"))["entries"]
                assert any(e["actor"] == user and e["outcome"] == "denied" for e in log[-3:]), (
                    endpoint,
                    role,
                    target,
                )
