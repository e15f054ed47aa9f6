"""Taking over from a predecessor who left years ago: their packs are in Deep Archive.

Whether the hub posted the take-over to the successor's running server or launched a
server whose start could only ask for the packs back, the server's take-over job waits for
them, the start page says so instead of spinning, and the work comes in by itself.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.core.store.archived import FILES, thaw_all, write_archived_snapshot
from tests.core.store.conftest import (  # noqa: F401 (fixtures)
    moto_endpoint,
    s3_bucket,
    s3_endpoint,
    thawing_held,
)
from tests.server_ext.test_api import call, finish
from westtek_core.kb.take_over import records
from westtek_core.rollback.container_start import (
    TAKE_OVER,
    PendingTakeOver,
    pending_take_over,
    record_path,
    write_record,
)
from westtek_core.store import S3Backend
from westtek_server_ext import models


@pytest.fixture
def archived_work(s3_bucket, thawing_held, tmp_path):  # noqa: F811
    """Alice's work in the lab store on S3, years after she left: its packs in Deep Archive.

    Yields the snapshot's id and the store.
    """
    backend = S3Backend(bucket=s3_bucket, prefix="labs/vault-13")
    yield write_archived_snapshot(backend, tmp_path / "cache"), backend
    backend.close()


@pytest.fixture
def launched(request) -> bool:
    """Whether a take-over launch left the take-over to the server (else it is posted)."""
    return bool(request.param)


@pytest.fixture
def westtek_traits(westtek_traits, archived_work, s3_bucket, launched):  # noqa: F811
    """Carol's server, over an empty workspace, in the lab store holding alice's snapshot."""
    if launched:  # as the pre-start step records it
        pending = PendingTakeOver("alice", "alice", archived_work[0], record_path())
        write_record({"status": "unchanged", TAKE_OVER: pending.to_json()})
    return westtek_traits | {
        "store": f"s3://{s3_bucket}/labs/vault-13",
        "environment_id": "carol",
        "archive_poll_seconds": 0.2,
    }


async def waiting_take_over(jp_fetch) -> models.Job:
    """The server's take-over job once it says what it waits for, as the side bar polls it."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        _, listed = await call(jp_fetch, "GET", "jobs")
        jobs = [
            job for job in models.JobList.model_validate(listed).jobs if job.kind == "take-over"
        ]
        if jobs and jobs[0].progress.message:
            return jobs[0]
        await asyncio.sleep(0.1)
    raise AssertionError("no take-over job waits")


@pytest.mark.parametrize("launched", [False, True], ids=["posted", "launched"], indirect=True)
async def test_the_start_page_shows_the_wait_and_the_work_comes_in_by_itself(
    jp_fetch,
    archived_work,
    westtek_traits,
    launched,
):
    snapshot, store = archived_work
    if not launched:  # the hub posts the take-over to carol's running server
        wanted = {"environment_id": "alice", "predecessor": "alice"}
        code, _ = await call(jp_fetch, "POST", "take-over", body=wanted)
        assert code == 202
    job = await waiting_take_over(jp_fetch)
    wait = (
        "waiting for archive, ready in about 12 hours: 1 pack of snapshot"
        f" {snapshot[:12]} coming back from archive storage, Standard retrieval"
    )
    assert (job.state, job.description, job.progress.message) == (
        "running", "take over alice's alice", wait
    )  # fmt: skip
    # The start page, opened meanwhile, says what it waits for at once (not after minutes)
    page = await asyncio.wait_for(jp_fetch("westtek", "start-here", follow_redirects=False), 10)
    assert page.code == 200
    text = page.body.decode()
    assert f"Take over alice's alice: {wait}." in text
    assert "It comes into your workspace by itself once the data is back" in text
    carol = Path(westtek_traits["workspace"])
    assert list(carol.iterdir()) == [] and records() == []  # nothing written while waiting

    # When the packs are back, the take-over completes without anyone asking
    thaw_all(store)
    done = await finish(jp_fetch, job.model_dump(), timeout=30)
    assert done["state"] == "succeeded", done["error"]
    for path, data in FILES.items():
        assert (carol / "from-alice" / path).read_bytes() == data
    # and the start page now opens JupyterLab on its start page
    page = await jp_fetch("westtek", "start-here", follow_redirects=False, raise_error=False)
    assert page.code == 302
    assert page.headers["Location"].endswith("/lab?westtek-start-page=from-alice%2FSTART_HERE.md")
    assert len(records()) == 1 and pending_take_over() is None
