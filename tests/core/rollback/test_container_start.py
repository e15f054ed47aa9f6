"""The restore a container start left undone: the server does it once the packs are back.

A container started while the researcher's latest snapshot had its packs in Deep Archive:
the pre-start step could only ask for them back, recorded ``archived`` and started the
server as it was. The server's job waits for the packs, showing the wait, then rolls the
environment back by itself, once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.core.drift.test_detect import pip
from tests.core.rollback.conftest import imports
from tests.core.store.archived import RestoreCalls, archive_packs, set_restore_state
from tests.core.test_environment_service import alice_service, taken, wait_for
from westtek_core.environment_service import EnvironmentService
from westtek_core.rollback.container_start import ARCHIVED, pending_restore, write_record
from westtek_core.snapshot.retention import SAFETY_LABEL, is_container_start_safety


@dataclass
class Archived:
    """alice's service, her snapshot a year old (its one pack in Deep Archive, thawing)."""

    service: EnvironmentService
    env: dict[str, Any]
    snapshot_id: str
    backend: Any
    pack: str
    key: str


@pytest.fixture
def archived(own_jupyter_dirs, s3_bucket, tmp_path, thawing_held) -> Iterator[Archived]:
    """Given: alice's snapshot, a year old, and a new container without her install."""
    env = own_jupyter_dirs
    store, python = f"s3://{s3_bucket}/labs/vault-111", str(env["python"])
    service = alice_service(store, env["workspace"], [python], tmp_path, archive_poll_seconds=0.2)
    try:
        snapshot_id = taken(service, service.start_snapshot(note="known good"))["id"]
        backend = service.repo().backend
        (pack,) = archive_packs(backend)  # type: ignore[arg-type]
        key = backend._key(pack)  # type: ignore[attr-defined]
        set_restore_state(s3_bucket, key, "IN_PROGRESS")  # and S3 takes its time
        # a new container without her install
        pip(env, "uninstall", "-y", "westtek_probe_pkg")
        yield Archived(service, env, snapshot_id, backend, pack, key)
    finally:
        service.stop()


@pytest.mark.slow
def test_the_server_rolls_back_by_itself_once_the_packs_are_back_and_only_once(archived, s3_bucket):
    service, env, snapshot_id = archived.service, archived.env, archived.snapshot_id
    backend, pack, key = archived.backend, archived.pack, archived.key
    # Given: a container whose start could only record the wait
    write_record({"status": ARCHIVED, "snapshot": snapshot_id, "areas": ["packages"]})
    calls = RestoreCalls(backend)  # type: ignore[arg-type]

    # When: her server starts
    job = service.resume_container_start()
    assert job is not None and job.kind == "rollback"
    assert (
        job.description
        == f"roll back the packages to {snapshot_id[:12]}, as this container started"
    )
    # Then: the job asks S3 for the packs and shows the wait, as the side bar's row does
    wait_for(lambda: job.progress.message.startswith("waiting for archive"))
    assert job.to_json()["progress"]["message"] == (
        "waiting for archive, ready in about 12 hours: 1 pack of snapshot"
        f" {snapshot_id[:12]} coming back from archive storage, Standard retrieval"
    )
    assert [asked for asked, _ in calls.requests] == [pack.rpartition("/")[2]]
    time.sleep(0.5)  # a few more checks: still waiting, nothing asked again or changed
    assert job.finished is None and len(calls.requests) == 1
    assert imports(env["python"], "westtek_probe_pkg") == "not importable"

    # When: the packs are back
    set_restore_state(s3_bucket, key, "RESTORED")
    # Then: the environment is put back without anyone asking
    done = service.jobs.wait(job.id, 120)
    assert done is not None and done.state == "succeeded", done and done.error
    assert imports(env["python"], "westtek_probe_pkg") == "1.0.0"
    result = done.result or {}
    assert (result["status"], result["only"], result["steps_done"]) == (
        "STABLE",
        ["packages"],
        1,
    )
    # its safety snapshot holds what she had since the start, kept like her own
    # rollbacks' (a container start's would give way to the next container start's)
    safety = service.snapshot(result["safety_snapshot"])
    assert SAFETY_LABEL in safety["labels"]
    assert not is_container_start_safety(safety["labels"])

    # When: the server restarts in the same container, nothing is done again
    assert pending_restore() is None
    assert service.resume_container_start() is None


@pytest.mark.slow
def test_a_researchers_rollback_to_an_archived_snapshot_waits_then_completes(archived, s3_bucket):
    service, env, snapshot_id, key = (
        archived.service,
        archived.env,
        archived.snapshot_id,
        archived.key,
    )
    before = {s["id"] for s in service.list_snapshots()["snapshots"]}

    # When: alice rolls back to it from the side bar
    job = service.start_rollback(snapshot_id)
    # Then: the job waits, and nothing changes meanwhile (no safety snapshot, no step)
    wait_for(lambda: job.progress.message.startswith("waiting for archive"))
    time.sleep(0.5)
    assert job.finished is None
    assert {s["id"] for s in service.list_snapshots()["snapshots"]} == before
    assert imports(env["python"], "westtek_probe_pkg") == "not importable"

    # When: the packs are back, the same job completes by itself
    set_restore_state(s3_bucket, key, "RESTORED")
    done = service.jobs.wait(job.id, 120)
    assert done is not None and done.state == "succeeded", done and done.error
    assert imports(env["python"], "westtek_probe_pkg") == "1.0.0"
