"""A server whose container start left its restore to it shows the wait as a job at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.core.store.archived import write_archived_snapshot
from tests.core.store.conftest import (  # noqa: F401 (fixtures)
    moto_endpoint,
    s3_bucket,
    s3_endpoint,
    thawing_held,
)
from tests.server_ext.test_api import call
from westtek_core.rollback.container_start import ARCHIVED, write_record
from westtek_core.store import S3Backend
from westtek_server_ext import models


@pytest.fixture
def archived_snapshot(s3_bucket, thawing_held, tmp_path):  # noqa: F811
    """Alice's lab store on S3 with her snapshot's packs in Deep Archive, thawing; its id."""
    backend = S3Backend(bucket=s3_bucket, prefix="labs/vault-13")
    # packs of her interpreter: a rollback reads no workspace
    snapshot_id = write_archived_snapshot(backend, tmp_path / "cache", in_env=True)
    backend.close()
    return snapshot_id


@pytest.fixture
def westtek_traits(westtek_traits, archived_snapshot, s3_bucket):  # noqa: F811
    """The server of a container whose start could only ask for the packs back."""
    # only the packages: the snapshot has no interpreter, so even a thaw would change nothing
    write_record({"status": ARCHIVED, "snapshot": archived_snapshot, "areas": ["packages"]})
    return westtek_traits | {
        "store": f"s3://{s3_bucket}/labs/vault-13",
        "environment_id": "alice",
    }


async def waiting_rollback(jp_fetch) -> models.Job:
    """The server's rollback job once it says what it waits for, as the side bar polls it."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        _, listed = await call(jp_fetch, "GET", "jobs")
        jobs = models.JobList.model_validate(listed).jobs
        rollbacks = [job for job in jobs if job.kind == "rollback"]
        if rollbacks and rollbacks[0].progress.message:
            return rollbacks[0]
        await asyncio.sleep(0.1)
    raise AssertionError("no rollback job waits")


async def test_the_wait_is_a_rollback_job_the_side_bar_follows(jp_fetch, archived_snapshot):
    # When the side bar loads and asks for the server's jobs, a rollback job waits
    job = await waiting_rollback(jp_fetch)
    assert (job.state, job.finished) == ("running", None)
    assert job.description == (
        f"roll back the packages to {archived_snapshot[:12]}, as this container started"
    )
    assert job.progress.message == (
        "waiting for archive, ready in about 12 hours: 1 pack of snapshot"
        f" {archived_snapshot[:12]} coming back from archive storage, Standard retrieval"
    )
