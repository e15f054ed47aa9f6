"""The server's environment service: its live capture is reused until something changes."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.core.conftest import pip_install
from westtek_core.drift import live_capture
from westtek_core.drift.events import EventLog
from westtek_core.environment_service import EnvironmentService


def alice_service(
    store: str, root: Path, pythons: list[str] | None, tmp_path: Path, **settings: Any
) -> EnvironmentService:
    """Alice's environment service over ``store``; its key and event log in ``tmp_path``."""
    return EnvironmentService(
        store=store,
        key_file=tmp_path / "store.key",
        root=root,
        pythons=pythons,
        environment_id="alice",
        event_log=EventLog(tmp_path / "events.sqlite"),
        **settings,
    )


@pytest.fixture
def service(research_env, tmp_path):
    python = str(research_env["python"])
    return alice_service(str(tmp_path / "store"), research_env["workspace"], [python], tmp_path)


@pytest.fixture
def captures(monkeypatch):
    """Count the live captures; ``during`` runs inside the next one (then is cleared)."""
    real = live_capture.capture_live
    seen = {"count": 0, "during": None}

    def counted(pythons, root):
        seen["count"] += 1
        capture = real(pythons, root)
        during, seen["during"] = seen["during"], None
        if during:
            during()
        return capture

    monkeypatch.setattr(live_capture, "capture_live", counted)
    return seen


def packages(view):
    return {p["name"]: p["version"] for i in view["interpreters"] for p in i["packages"]}


def test_the_capture_is_reused_until_a_package_changes(service, captures, research_env, wheelhouse):
    time.sleep(0.2)  # the fixture's directories are older than the first capture
    first = service.environment_view()
    assert packages(service.environment_view()) == packages(first)
    assert captures["count"] == 1
    pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==1.1.0")
    assert packages(service.environment_view())["westtek_probe_pkg"] == "1.1.0"
    assert captures["count"] == 2


def test_a_change_during_the_first_capture_is_seen_next_time(service, captures, research_env):
    # Given a kernelspec edited while the first capture runs (after it read the kernels),
    kernel = research_env["tmp"] / "jupyter-data" / "kernels" / "research" / "kernel.json"

    def edit():
        kernel.write_text(kernel.read_text().replace('"Research"', '"Research v2"'))
        os.utime(kernel.parent)  # the spec directory changes too, as an editor's rename does

    captures["during"] = edit
    service.environment_view()
    # the next look captures again rather than trust the first, and shows the edit
    kernels = {k["name"]: k["display_name"] for k in service.environment_view()["kernels"]}
    assert kernels["research"] == "Research v2"
    assert captures["count"] == 2


def announced_snapshots(service):
    """The ids of the snapshots ``service`` announces to its listeners, in order."""
    seen: list[str] = []
    service.subscribe(
        lambda message: (
            seen.append(message["snapshot"]["id"]) if message["type"] == "snapshot" else None
        )
    )
    return seen


def store_args(service):
    return ["--store", service.store, "--key-file", str(service.key_file)]


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@contextmanager
def watched_upgrade(service, research_env, wheelhouse) -> Iterator[list[dict]]:
    """A baseline with westtek_probe_pkg 1.0.0, the watcher running, 1.1.0 installed and
    graded: yields the drift events so far (the list grows); stops the service after."""
    taken(service, service.start_snapshot())
    events: list[dict] = []
    service.subscribe(lambda m: events.append(m["event"]) if m["type"] == "event" else None)
    try:
        service.start_watching()
        assert service.wait_watching(60)
        pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==1.1.0")
        wait_for(lambda: any(e["changes"] for e in events), timeout=60)
        yield events
    finally:
        service.stop()


def taken(service, job):
    """The result of a finished job of ``service``."""
    done = service.jobs.wait(job.id, timeout=120)
    assert done is not None and done.error is None, done and done.error
    return done.result


def cli_snapshot(service, environment_id="alice", *extra):
    """A snapshot taken with ``westtek snapshot create`` in a terminal; returns its id."""
    from westtek_core.cli import main

    ids_before = set(service.repo(create=True).list_manifests())
    args = ["snapshot", "create", *store_args(service), "--root", str(service.root),
            "--python", service.pythons[0], "--environment-id", environment_id, *extra]  # fmt: skip
    assert main(args) == 0
    (new,) = set(service.repo().list_manifests()) - ids_before
    return new


def test_snapshots_taken_outside_the_server_are_announced_once(service):
    # Given a store that already holds a snapshot when the server first lists it,
    existing = cli_snapshot(service)
    seen = announced_snapshots(service)
    service.check_store()
    assert seen == []  # what was there before is not news
    # a snapshot from the CLI in a terminal is announced at the next look, once
    taken = cli_snapshot(service)
    service.check_store()
    service.check_store()
    assert seen == [taken] and taken != existing
    # another environment's snapshot in the same store is not this sidebar's news
    cli_snapshot(service, "bob")
    service.check_store()
    assert seen == [taken]


def test_a_snapshot_the_server_takes_is_announced_once(service):
    seen = announced_snapshots(service)
    result = taken(service, service.start_snapshot(note="by the sidebar"))
    service.check_store()
    assert seen == [result["id"]]


def test_the_watcher_follows_a_baseline_set_in_a_terminal(service, research_env, wheelhouse):
    from westtek_core.cli import main

    service.store_poll_seconds = 0.1
    with watched_upgrade(service, research_env, wheelhouse) as events:
        assert service.drift_state()["changes"]
        # When the researcher snapshots the upgrade in a terminal and makes it the baseline,
        accepted = cli_snapshot(service)
        assert main(["baseline", "set", accepted, *store_args(service)]) == 0
        # the server's watcher measures against it without a restart: stable again
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = service.drift_state()
            if state["baseline"] == accepted and service.watching:
                break
            time.sleep(0.1)
        assert state["baseline"] == accepted
        assert state["status"] == "STABLE", state["changes"]
        # and says so in an event, which is how the hub service learns the grade moved
        deadline = time.monotonic() + 10
        while not any(e["baseline"] == accepted for e in events) and time.monotonic() < deadline:
            time.sleep(0.1)
        (moved,) = [e for e in events if e["baseline"] == accepted]
        assert moved["status"] == "STABLE" and moved["changes"] == []
        assert [c["name"] for c in moved["resolved"]] == ["westtek_probe_pkg"]
        # the upgrade is in the install history once: accepting it installed nothing
        history = service.event_log.install_history("alice")
        assert [h["package"] for h in history] == ["westtek_probe_pkg"]


def test_a_file_rewritten_with_the_same_bytes_is_no_drift(service, research_env):
    # Given a baseline of alice's environment and its Jupyter config,
    config = research_env["tmp"] / "jupyter-config" / "jupyter_lab_config.py"
    config.write_text("c = get_config()\nc.LabApp.collaborative = False\n")
    taken(service, service.start_snapshot())
    notebook = research_env["workspace"] / "analysis.ipynb"
    # when her Jupyter config and her notebook are written again with the same bytes (a
    # reinstall of the suite, an editor's save), only their modification times change,
    for path in (config, notebook):
        path.write_bytes(path.read_bytes())
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    assert service.drift_state(fresh=True)["changes"] == []
    # while a real edit of the same size still counts.
    config.write_text(config.read_text().replace("False", "Fals_"))
    changes = service.drift_state(fresh=True)["changes"]
    assert [(c["kind"], c["change"]) for c in changes] == [("config", "modified")]


def test_the_first_snapshot_creates_an_empty_s3_lab_store(research_env, tmp_path, s3_bucket):
    # Given a server whose lab store is an S3 prefix nothing has written yet (a new lab),
    python = str(research_env["python"])
    store = f"s3://{s3_bucket}/labs/vault-13"
    service = alice_service(store, research_env["workspace"], [python], tmp_path)
    # it lists no snapshot, and looking for new ones finds none instead of failing;
    service.check_store()
    assert service.list_snapshots()["snapshots"] == []
    reports = snapshot_reports(service)
    # then its first snapshot creates the store (it said "no West Tek store" before),
    result = taken(service, service.start_snapshot(note="first"))
    assert [s["id"] for s in service.list_snapshots()["snapshots"]] == [result["id"]]
    # and the hub is told where its manifest is in the bucket.
    location = f"s3://{s3_bucket}/labs/vault-13/snapshots/{result['id']}"
    assert [r["s3_location"] for r in reports] == [location]


@pytest.mark.usefixtures("thawing_held")
def test_a_restore_job_waits_for_archived_packs_then_completes_by_itself(tmp_path, s3_bucket):
    from tests.core.store.archived import (
        FILES,
        RestoreCalls,
        archive_packs,
        set_restore_state,
        write_snapshot,
    )
    from westtek_core.store import Repository, S3Backend

    # Given: a lab store whose packs are in Deep Archive, and S3 slow to thaw them
    backend = S3Backend(bucket=s3_bucket, prefix="labs/vault-101")
    with Repository.open(backend, cache_dir=tmp_path / "cache") as repo:
        snapshot_id = write_snapshot(repo, FILES)
    (pack,) = archive_packs(backend)
    set_restore_state(s3_bucket, backend._key(pack), "IN_PROGRESS")
    (tmp_path / "workspace").mkdir()
    store = f"s3://{s3_bucket}/labs/vault-101"
    service = alice_service(store, tmp_path / "workspace", None, tmp_path, archive_poll_seconds=0.2)
    calls = RestoreCalls(service.repo().backend)  # type: ignore[arg-type]
    try:
        # When: a restore is asked for
        job = service.start_restore(snapshot_id, "restored")
        # Then: the job says what it waits for, asked S3 once, and keeps checking
        wait_for(lambda: job.progress.message.startswith("waiting for archive"))
        assert job.to_json()["progress"]["message"] == (
            f"waiting for archive, ready in about 12 hours: 1 pack of snapshot"
            f" {snapshot_id[:12]} coming back from archive storage, Standard retrieval"
        )
        assert job.to_json()["state"] == "running" and job.finished is None
        # meanwhile other jobs run
        other = service.jobs.submit("verify", "another job", lambda progress: {})
        assert service.jobs.wait(other.id, 10).state == "succeeded"  # type: ignore[union-attr]
        time.sleep(0.5)  # a few more checks
        assert job.finished is None and len(calls.requests) == 1

        # When: the pack is back
        set_restore_state(s3_bucket, backend._key(pack), "RESTORED")
        # Then: the restore finishes by itself, byte for byte
        assert service.jobs.wait(job.id, 20).state == "succeeded", job.error  # type: ignore[union-attr]
        assert job.to_json()["progress"]["message"] is None
        restored = tmp_path / "workspace" / "restored" / "workspace"
        assert {
            str(p.relative_to(restored)): p.read_bytes() for p in restored.rglob("*.*")
        } == FILES
    finally:
        service.stop()
        backend.close()


def snapshot_reports(service):
    """The snapshot reports ``service`` announces to its listeners (for the hub), in order."""
    seen: list[dict] = []
    service.subscribe(
        lambda message: seen.append(message["snapshot"]) if message["type"] == "snapshot" else None
    )
    return seen


def test_a_local_stores_snapshot_has_no_s3_location(service):
    reports = snapshot_reports(service)
    result = taken(service, service.start_snapshot(note="local"))
    assert [(r["id"], r["s3_location"]) for r in reports] == [(result["id"], None)]


def test_a_slow_rollback_is_one_event_not_its_halves(
    service, research_env, wheelhouse, monkeypatch
):
    from westtek_core.rollback.apply import StepApplier

    with watched_upgrade(service, research_env, wheelhouse) as events:
        upgraded = len(events)
        # Given a machine slow enough that the rollback's removal of 1.1.0 settles before
        # 1.0.0 is written back (five times the watcher's debounce)
        install = StepApplier._install_distribution

        def slow_install(self, step):
            time.sleep(1.5)
            install(self, step)

        monkeypatch.setattr(StepApplier, "_install_distribution", slow_install)
        # When the researcher rolls back
        taken(service, service.start_rollback())
        wait_for(lambda: service.watching and service.drift_state()["status"] == "STABLE", 60)
        wait_for(lambda: len(events) > upgraded, timeout=30)
        time.sleep(2)  # anything graded late would have arrived
        # Then one event resolves the upgrade, and none said the package was removed
        (rolled_back,) = events[upgraded:]
        assert rolled_back["changes"] == []
        assert [c["name"] for c in rolled_back["resolved"]] == ["westtek_probe_pkg"]
