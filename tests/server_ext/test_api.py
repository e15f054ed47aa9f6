"""The researcher API through a real Jupyter server: snapshots, jobs, drift, errors."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from tornado.httpclient import HTTPClientError

from tests.core.conftest import pip_install
from westtek_server_ext import models


@pytest.fixture
def westtek_traits(westtek_traits, research_env):
    """The research venv is the captured interpreter and its workspace the server's."""
    return westtek_traits | {
        "pythons": [str(research_env["python"])],
        "workspace": str(research_env["workspace"]),
    }


async def call(jp_fetch, method: str, *parts: str, body=None, **params):
    kwargs = {"method": method, "params": params}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    elif method in ("POST", "PUT"):
        kwargs["body"] = "{}"
    response = await jp_fetch("westtek", "api", *parts, **kwargs)
    return response.code, json.loads(response.body) if response.body else None


async def error(jp_fetch, method: str, *parts: str, body=None, **params) -> tuple[int, dict]:
    with pytest.raises(HTTPClientError) as raised:
        await call(jp_fetch, method, *parts, body=body, **params)
    answer = json.loads(raised.value.response.body)
    models.ErrorBody.model_validate(answer)
    return raised.value.code, answer


async def finish(jp_fetch, job: dict, timeout: float = 120) -> dict:
    """Poll a job until it ends; every poll answers a valid Job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, job = await call(jp_fetch, "GET", "jobs", job["id"])
        models.Job.model_validate(job)
        if job["finished"] is not None:
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job['id']} did not finish in {timeout} s")


async def snapshot(jp_fetch, **body) -> str:
    code, job = await call(jp_fetch, "POST", "snapshots", body=body)
    assert code == 202
    job = await finish(jp_fetch, job)
    assert job["state"] == "succeeded", job["error"]
    return str(job["result"]["id"])


async def test_snapshot_job_reports_progress_and_lists_the_snapshot(jp_fetch):
    # Given a fresh environment with no store yet
    _, listed = await call(jp_fetch, "GET", "snapshots")
    assert listed["snapshots"] == []
    _, drift = await call(jp_fetch, "GET", "drift")
    assert drift["status"] == "NO_BASELINE" and "snapshot" in drift["message"]

    # When the researcher snapshots with a note and labels
    response = await jp_fetch(
        "westtek",
        "api",
        "snapshots",
        method="POST",
        body=json.dumps({"note": "before the rerun", "labels": {"paper": "fig3"}}),
    )
    assert response.code == 202
    assert response.headers["Location"].endswith(
        "/westtek/api/jobs/" + json.loads(response.body)["id"]
    )
    job = await finish(jp_fetch, json.loads(response.body))

    # Then the job succeeded with its progress complete, and the snapshot is listed
    assert job["state"] == "succeeded"
    assert job["progress"]["percent"] == 100.0
    assert job["progress"]["files_done"] == job["progress"]["files_total"] > 0
    _, listed = await call(jp_fetch, "GET", "snapshots")
    models.SnapshotList.model_validate(listed)
    (row,) = listed["snapshots"]
    assert row["id"] == job["result"]["id"]
    assert row["notes"] == "before the rerun" and row["labels"] == {"paper": "fig3"}
    assert row["baseline"] is True  # the environment's first snapshot
    assert row["stored_bytes"] > 0 and listed["store_bytes"] >= row["stored_bytes"]
    _, manifest = await call(jp_fetch, "GET", "snapshots", row["id"][:8])
    assert manifest["id"] == row["id"]
    # and the lab's knowledge base now holds its notebook and the snapshot's manifest
    knowledge = job["result"]["knowledge"]
    assert "analysis.ipynb" in knowledge["ingested"], knowledge
    assert f"snapshot:{row['id']}" in knowledge["ingested"]
    _, jobs = await call(jp_fetch, "GET", "jobs")
    models.JobList.model_validate(jobs)
    assert [j["id"] for j in jobs["jobs"]] == [job["id"]]


async def test_drift_diff_and_baseline_follow_a_pip_upgrade(jp_fetch, research_env, wheelhouse):
    first = await snapshot(jp_fetch, note="baseline")
    _, drift = await call(jp_fetch, "GET", "drift")
    models.DriftState.model_validate(drift)
    assert drift["status"] == "STABLE" and drift["baseline"] == first

    # When the imported package gets a new major version
    pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==2.0.0")

    # Then drift is critical and names the notebook that imports it
    _, drift = await call(jp_fetch, "GET", "drift")
    assert drift["status"] == "CRITICAL_DRIFT"
    (change,) = [c for c in drift["changes"] if c["name"] == "westtek_probe_pkg"]
    assert change["affected_notebooks"] == ["analysis.ipynb"]

    # And a second snapshot diffs against the first the same way
    second = await snapshot(jp_fetch, note="after upgrade")
    _, diff = await call(jp_fetch, "GET", "snapshots", first, "diff", second)
    models.DriftReport.model_validate(diff)
    (change,) = [c for c in diff["changes"] if c["name"] == "westtek_probe_pkg"]
    assert (change["before"], change["after"], change["severity"]) == ("1.0.0", "2.0.0", "critical")

    # Accepting the second as the baseline makes the environment stable again
    _, drift = await call(jp_fetch, "PUT", "baseline", body={"id": second})
    assert drift["status"] == "STABLE" and drift["baseline"] == second
    _, listed = await call(jp_fetch, "GET", "snapshots")
    assert [r["id"] for r in listed["snapshots"] if r["baseline"]] == [second]


async def test_environment_lists_packages_with_the_notebooks_importing_them(
    jp_fetch, research_env, wheelhouse
):
    _, view = await call(jp_fetch, "GET", "environment")
    models.EnvironmentView.model_validate(view)
    (interp,) = view["interpreters"]
    packages = {p["name"]: p for p in interp["packages"]}
    assert packages["westtek_probe_pkg"]["version"] == "1.0.0"
    assert packages["westtek_probe_pkg"]["imported_by"] == ["analysis.ipynb"]
    assert packages["westtek-yaml-dist"]["imported_by"] == ["analysis.ipynb"]  # as wtyaml
    assert packages["westtek_unused_pkg"]["imported_by"] == []
    assert packages["westtek_probe_pkg"]["installer"] == "pip"
    assert view["drift"] == "NO_BASELINE"
    # the view is cached until the environment changes: a pip install shows at once
    pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==1.1.0")
    _, view = await call(jp_fetch, "GET", "environment")
    packages = {p["name"]: p for p in view["interpreters"][0]["packages"]}
    assert packages["westtek_probe_pkg"]["version"] == "1.1.0"


async def test_verify_restore_and_export_a_snapshot(jp_fetch, research_env):
    snapshot_id = await snapshot(jp_fetch)

    code, job = await call(jp_fetch, "POST", "snapshots", snapshot_id, "verify")
    assert code == 202
    job = await finish(jp_fetch, job)
    assert job["state"] == "succeeded" and job["result"]["ok"] is True
    assert job["progress"]["files_total"] > 0  # packs read

    _, job = await call(
        jp_fetch, "POST", "snapshots", snapshot_id, "restore", body={"target": "restored"}
    )
    job = await finish(jp_fetch, job)
    assert job["state"] == "succeeded", job["error"]
    restored = research_env["workspace"] / "restored"
    assert (restored / "workspace" / "analysis.ipynb").read_bytes() == (
        research_env["workspace"] / "analysis.ipynb"
    ).read_bytes()
    assert job["progress"]["bytes_done"] == job["progress"]["bytes_total"] > 0
    # the restored copy is not the workspace's data: snapshots and drift leave it out
    assert "/restored/" in (research_env["workspace"] / ".westtekignore").read_text()

    response = await jp_fetch(
        "westtek", "api", "snapshots", snapshot_id, "export", params={"format": "requirements"}
    )
    assert "westtek_probe_pkg==1.0.0" in response.body.decode()
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "attachment" in response.headers["Content-Disposition"]


async def test_bad_requests_get_a_json_message_a_person_can_act_on(jp_fetch):
    code, answer = await error(jp_fetch, "GET", "snapshots", "abcdef12")
    assert code == 404 and "no snapshot" in answer["message"]
    code, answer = await error(jp_fetch, "PUT", "baseline", body={"snapshot": "abcd"})
    assert code == 400 and answer["message"].startswith("id:")
    code, answer = await error(jp_fetch, "POST", "snapshots", body={"labels": {"a": 1}})
    assert code == 400 and "labels.a" in answer["message"]
    snapshot_id = await snapshot(jp_fetch)
    code, answer = await error(
        jp_fetch, "POST", "snapshots", snapshot_id, "restore", body={"target": "../outside"}
    )
    assert code == 400 and "outside the workspace" in answer["message"]
    code, answer = await error(
        jp_fetch, "POST", "snapshots", snapshot_id, "restore", body={"target": "data"}
    )
    assert code == 400 and "not empty" in answer["message"]
    code, answer = await error(jp_fetch, "GET", "drift", "events", since="-1")
    assert code == 400
    with pytest.raises(HTTPClientError) as raised:
        await jp_fetch(
            "westtek", "api", "snapshots", snapshot_id, "export", params={"format": "zip"}
        )
    assert raised.value.code == 400


async def next_message(socket, timeout: float = 30) -> dict:
    message = json.loads(await asyncio.wait_for(socket.read_message(), timeout))
    models.StreamMessage.model_validate(message)
    return message


async def test_drift_stream_pushes_the_event_of_a_pip_install(
    jp_fetch, jp_ws_fetch, jp_serverapp, research_env, wheelhouse
):
    # Given a baseline and a watching server with a client on the stream
    first = await snapshot(jp_fetch, note="baseline")
    service = jp_serverapp.web_app.settings["westtek_service"]
    service.start_watching()
    assert await asyncio.get_running_loop().run_in_executor(None, service.wait_watching, 60)
    socket = await jp_ws_fetch("westtek", "api", "drift", "stream")
    hello = await next_message(socket)
    assert hello["type"] == "state" and hello["drift"]["baseline"] == first

    # When a package a notebook imports is upgraded a major version
    await asyncio.get_running_loop().run_in_executor(
        None, pip_install, research_env["python"], wheelhouse, "westtek_probe_pkg==2.0.0"
    )

    # Then the event arrives on the stream, graded critical, and is in the event log
    while (message := await next_message(socket))["type"] != "event":
        pass
    event = message["event"]
    assert event["status"] == "CRITICAL_DRIFT"
    (change,) = [c for c in event["changes"] if c["name"] == "westtek_probe_pkg"]
    assert change["affected_notebooks"] == ["analysis.ipynb"]
    _, listed = await call(jp_fetch, "GET", "drift", "events", days="30")
    models.EventList.model_validate(listed)
    assert [e["id"] for e in listed["events"]] == [event["id"]]
    _, later = await call(jp_fetch, "GET", "drift", "events", since=str(event["id"]))
    assert later["events"] == []
    # and a snapshot taken by any client is announced on the stream, so every open
    # sidebar lists it without a reload.
    taken = await snapshot(jp_fetch, note="after the upgrade")
    while (message := await next_message(socket))["type"] != "snapshot":
        pass
    models.StreamMessage.model_validate(message)
    assert message["snapshot_id"] == taken
    socket.close()


async def test_roll_back_to_the_baseline_makes_the_environment_stable(
    jp_fetch, research_env, wheelhouse
):
    baseline = await snapshot(jp_fetch, note="baseline")
    pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==2.0.0")
    _, drift = await call(jp_fetch, "GET", "drift")
    assert drift["status"] == "CRITICAL_DRIFT"

    code, job = await call(jp_fetch, "POST", "rollback", body={"only": "packages"})
    assert code == 202 and job["kind"] == "rollback"
    job = await finish(jp_fetch, job)

    assert job["state"] == "succeeded", job["error"]
    _, drift = await call(jp_fetch, "GET", "drift")
    assert drift["status"] == "STABLE" and drift["baseline"] == baseline
    _, listed = await call(jp_fetch, "GET", "snapshots")
    safety = [r for r in listed["snapshots"] if r["labels"].get("westtek.rollback") == "safety"]
    assert len(safety) == 1  # taken before anything changed
    code, answer = await error(jp_fetch, "POST", "rollback", body={"only": "everything"})
    assert code == 400 and answer["message"].startswith("only:")


async def test_the_rollback_preview_is_exactly_what_the_rollback_does(
    jp_fetch, research_env, wheelhouse
):
    # Given a baseline, then two package changes and an edited workspace file,
    await snapshot(jp_fetch, note="baseline")
    pip_install(
        research_env["python"], wheelhouse, "westtek_probe_pkg==2.0.0", "westtek_unused_pkg==1.1.0"
    )
    (research_env["workspace"] / "data" / "measurements.csv").write_text("t,x\n0,0\n")
    # when the researcher previews the rollback,
    code, preview = await call(jp_fetch, "GET", "rollback", "preview")
    assert code == 200
    models.RollbackPreview.model_validate(preview)
    # it lists every package it will put back (and never the workspace, which stays),
    lines = [s["description"] for s in preview["steps"]]
    assert sorted(s["name"] for s in preview["steps"]) == [
        "westtek_probe_pkg",
        "westtek_unused_pkg",
    ]
    assert any(line.startswith("replace westtek_probe_pkg 2.0.0 → 1.0.0") for line in lines)
    # and the rollback confirmed with that preview does exactly that.
    body = {"plan": preview["fingerprint"]}
    job = await finish(jp_fetch, (await call(jp_fetch, "POST", "rollback", body=body))[1])
    assert job["state"] == "succeeded", job["error"]
    done = [s["name"] for s in job["result"]["steps"]]
    assert sorted(done) == ["westtek_probe_pkg", "westtek_unused_pkg"]


async def test_a_rollback_whose_preview_is_stale_changes_nothing(
    jp_fetch, research_env, wheelhouse
):
    await snapshot(jp_fetch, note="baseline")
    pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==2.0.0")
    _, preview = await call(jp_fetch, "GET", "rollback", "preview", only="packages")
    assert [s["name"] for s in preview["steps"]] == ["westtek_probe_pkg"]
    # Given a package changed after the preview was shown,
    pip_install(research_env["python"], wheelhouse, "westtek_unused_pkg==2.0.0")
    # when the researcher confirms the old preview, the rollback refuses and changes nothing.
    body = {"only": "packages", "plan": preview["fingerprint"]}
    job = await finish(jp_fetch, (await call(jp_fetch, "POST", "rollback", body=body))[1])
    assert job["state"] == "failed"
    assert "changed since the rollback was previewed" in job["error"]
    _, listed = await call(jp_fetch, "GET", "snapshots")
    assert not [r for r in listed["snapshots"] if r["labels"].get("westtek.rollback")]
    code, answer = await error(jp_fetch, "GET", "rollback", "preview", only="data")
    assert code == 400 and "only must be" in answer["message"]
