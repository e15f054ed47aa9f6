"""Environments that survive restarts: the pre-start restore, on a real throwaway venv.

A "fresh container" is simulated the way it looks from inside: the researcher's venv has
lost what they pip-installed and gained what a newer base image brings. The restore puts
their latest snapshot back before the server starts; on the local backend it runs through
the whole spawn, its stages shown as progress events.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.conftest import pip_install, research_env, wheelhouse  # noqa: F401 (fixtures)
from tests.core.store.conftest import (  # noqa: F401 (fixtures)
    moto_endpoint,
    s3_bucket,
    s3_endpoint,
    thawing_held,
)
from tests.spawner.conftest import TINY_SERVER, make_user
from westtek_core.cli import main as westtek
from westtek_core.snapshot import snapshot_summaries
from westtek_core.snapshot.retention import is_container_start_safety
from westtek_core.store import Repository
from westtek_spawner import WestTekSpawner, prestart

pytestmark = pytest.mark.slow  # builds real venvs and snapshots them


def installed(python: Path, name: str) -> str | None:
    """The version of ``name`` in the venv of ``python`` (None when not installed)."""
    found = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
        capture_output=True,
        text=True,
    )
    return found.stdout.strip() if found.returncode == 0 else None


@pytest.fixture
def snapshotted(research_env, tmp_path, capsys):  # noqa: F811
    """Alice's venv, snapshotted into a local store as environment `alice`."""
    store = tmp_path / "store"
    python, root = str(research_env["python"]), str(research_env["workspace"])
    args = ["--python", python, "--root", root, "--store", str(store)]
    assert westtek(["snapshot", "create", *args, "--environment-id", "alice", "--json"]) == 0
    snapshot = json.loads(capsys.readouterr().out)["id"]
    return {**research_env, "store": store, "snapshot": snapshot}


def lose_installs(env, wheelhouse):  # noqa: F811
    """What a fresh container from a newer image looks like: installs gone, others newer."""
    subprocess.run(
        [str(env["python"]), "-m", "pip", "uninstall", "-q", "-y", "westtek_probe_pkg"],
        check=True,
        capture_output=True,
    )
    pip_install(env["python"], wheelhouse, "westtek_unused_pkg==2.0.0")
    assert installed(env["python"], "westtek_probe_pkg") is None


def test_a_fresh_environment_gets_its_latest_snapshot_back(snapshotted, wheelhouse):  # noqa: F811
    # Given alice's snapshot and a venv that lost her installs,
    python = snapshotted["python"]
    lose_installs(snapshotted, wheelhouse)
    stages = []
    # when the pre-start step runs,
    outcome = prestart.restore_latest(
        str(snapshotted["store"]), "alice", report=lambda p, m: stages.append((p, m))
    )
    # then her packages are as she snapshotted them,
    assert outcome.status == "restored", outcome
    assert outcome.snapshot == snapshotted["snapshot"] and outcome.drift_status == "STABLE"
    assert outcome.steps == 2
    assert installed(python, "westtek_probe_pkg") == "1.0.0"
    assert installed(python, "westtek_unused_pkg") == "1.0.0"
    assert outcome.message == (
        f"Restored your environment from snapshot {snapshotted['snapshot'][:12]} "
        "(2 changes put back)"
    )
    # each stage was reported, and the next start finds nothing to do.
    messages = [m for _, m in stages]
    assert messages[0] == "Restoring your environment: looking for your latest snapshot"
    assert any("from snapshot" in m and ": 2/2 (" in m for m in messages), messages
    assert [p for p, _ in stages] == sorted(p for p, _ in stages)
    again = prestart.restore_latest(str(snapshotted["store"]), "alice")
    assert again.status == "unchanged" and again.steps == 0


def test_the_latest_snapshot_wins_and_safety_snapshots_are_not_it(
    snapshotted,
    wheelhouse,  # noqa: F811
    capsys,
):
    # Given a second, newer snapshot with probe 1.1.0,
    python, store = snapshotted["python"], snapshotted["store"]
    pip_install(python, wheelhouse, "westtek_probe_pkg==1.1.0")
    args = ["--python", str(python), "--root", str(snapshotted["workspace"])]
    westtek(["snapshot", "create", *args, "--store", str(store), "--environment-id", "alice"])
    capsys.readouterr()
    lose_installs(snapshotted, wheelhouse)
    # when restored (which leaves a safety snapshot, newer still),
    first = prestart.restore_latest(str(store), "alice")
    assert first.status == "restored" and installed(python, "westtek_probe_pkg") == "1.1.0"
    # then the next start compares with the researcher's snapshot, not the safety one.
    lose_installs(snapshotted, wheelhouse)
    second = prestart.restore_latest(str(store), "alice")
    assert second.snapshot == first.snapshot
    assert installed(python, "westtek_probe_pkg") == "1.1.0"
    # A server launched from a given snapshot (the older one) gets that one instead.
    older = prestart.restore_latest(str(store), "alice", snapshot=snapshotted["snapshot"][:12])
    assert older.status == "restored" and older.snapshot == snapshotted["snapshot"]
    assert installed(python, "westtek_probe_pkg") == "1.0.0"
    # Each restore left a safety snapshot marked as a container start's, and forgot the one
    # before: only the latest is kept, automatic snapshots or not (QA saw them pile up)
    with Repository.open(str(store)) as repo:
        summaries = snapshot_summaries(repo)
    kept = [s["id"] for s in summaries if is_container_start_safety(s.get("labels"))]
    assert len(kept) == 1
    assert kept[0] == max(summaries, key=lambda s: str(s["timestamp"]))["id"]
    # Bob has no snapshot in this store; a store that does not exist holds none either.
    bob = prestart.restore_latest(str(snapshotted["store"]), "bob")
    assert (bob.status, bob.message) == (
        "no-snapshot",
        "No snapshot of bob yet: nothing to restore",
    )
    nowhere = prestart.restore_latest(str(snapshotted["tmp"] / "no-store"), "alice")
    assert nowhere.status == "no-snapshot"


def test_a_failed_restore_is_reported_not_raised(snapshotted, monkeypatch):
    from westtek_core import rollback

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(rollback, "run_rollback", broken)
    outcome = prestart.restore_latest(str(snapshotted["store"]), "alice")
    assert outcome.status == "failed"
    assert outcome.message == (
        "Could not restore your environment (OSError: disk full); "
        "starting with the environment as it is"
    )


def test_a_snapshot_in_archive_storage_is_asked_back_and_left_to_the_server(
    s3_bucket,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    from tests.core.store.archived import FILES, archive_packs, storage_class, write_snapshot
    from westtek_core.rollback.container_start import pending_restore
    from westtek_core.store import Repository, S3Backend

    # Given alice's latest snapshot, a year old: the lifecycle moved its packs to Deep Archive
    backend = S3Backend(bucket=s3_bucket, prefix="labs/vault-13")
    with Repository.open(backend, cache_dir=tmp_path / "cache") as repo:
        snapshot = write_snapshot(repo, FILES, in_env=True)
    packs = archive_packs(backend)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("JUPYTERHUB_SERVICE_URL", raising=False)
    # when her container starts, the restore asks for them back instead of failing on them
    done = subprocess.run(
        [sys.executable, "-m", "westtek_spawner.prestart", "--only", "packages",
         "--store", f"s3://{s3_bucket}/labs/vault-13", "--environment-id", "alice",
         "--", sys.executable, "-c", "print('the server ran')"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout == "the server ran\n", done.stderr
    head = backend.client.head_object(Bucket=s3_bucket, Key=backend._key(packs[0]))
    assert "Restore" in head and storage_class(backend, packs[0]) == "DEEP_ARCHIVE"
    # and says the server will put the environment back by itself, the side bar showing it,
    assert (
        "westtek prestart: Not restored yet, waiting for archive, ready in about 12 hours:"
        f" {len(packs)} pack of snapshot {snapshot[:12]} coming back from archive storage,"
        " Standard retrieval; starting with the environment as it is: it is put back by"
        " itself once they are back (the West Tek side bar shows the wait)\n"
    ) in done.stderr
    # which finds in the record what is left to restore.
    left = pending_restore()
    assert left is not None and (left.snapshot, left.areas) == (snapshot, ("packages",))


@pytest.mark.usefixtures("thawing_held")
def test_a_take_over_of_archived_packs_is_asked_back_and_done_by_the_server_once(
    s3_bucket,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    from tests.core.store.archived import FILES, RestoreCalls, thaw_all, write_archived_snapshot
    from tests.core.test_environment_service import wait_for
    from westtek_core.drift.events import EventLog
    from westtek_core.environment_service import EnvironmentService
    from westtek_core.rollback.container_start import pending_take_over
    from westtek_core.store import S3Backend

    # Given alice's snapshot, years after she left: its packs are in Deep Archive
    backend = S3Backend(bucket=s3_bucket, prefix="labs/vault-13")
    snapshot = write_archived_snapshot(backend, tmp_path / "cache")
    (pack,) = backend.list("data/")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    monkeypatch.delenv("JUPYTERHUB_SERVICE_URL", raising=False)
    carol, store = tmp_path / "carol", f"s3://{s3_bucket}/labs/vault-13"
    carol.mkdir()
    # when a server is launched for carol to take it over,
    done = subprocess.run(
        [sys.executable, "-m", "westtek_spawner.prestart", "--skip-restore",
         "--take-over", "alice", "--predecessor", "alice", "--workspace", str(carol),
         "--store", store, "--", sys.executable, "-c", "print('the server ran')"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout == "the server ran\n", done.stderr
    # the pre-start step asks for the packs, writes nothing and says the work comes by itself
    head = backend.client.head_object(Bucket=s3_bucket, Key=backend._key(pack))
    assert 'ongoing-request="true"' in head["Restore"]
    assert list(carol.iterdir()) == [] and not (tmp_path / "jupyter-data").exists()
    assert (
        "westtek prestart: Not taken over yet, waiting for archive, ready in about 12 hours:"
        f" 1 pack of snapshot {snapshot[:12]} coming back from archive storage, Standard"
        " retrieval: alice's work comes into your workspace by itself once the data is back"
        " (the West Tek side bar shows the wait)\n"
    ) in done.stderr
    # and the server, as it starts, takes over by itself once the packs are back
    service = EnvironmentService(
        store=store, key_file=tmp_path / "store.key", root=carol, pythons=[],
        environment_id="carol", event_log=EventLog(tmp_path / "events.sqlite"),
        archive_poll_seconds=0.2,
    )  # fmt: skip
    try:
        calls = RestoreCalls(service.repo().backend)  # type: ignore[arg-type]
        job = service.resume_take_over()
        assert job is not None
        wait_for(lambda: job.waiting)
        assert job.progress.message.startswith("waiting for archive, ready in about 12 hours")
        assert calls.requests == []  # the launch's request is the one S3 works on
        thaw_all(backend)
        finished = service.jobs.wait(job.id, 60)
        assert finished is not None and finished.state == "succeeded", finished.error
        assert (carol / "from-alice" / "data" / "big.bin").read_bytes() == FILES["data/big.bin"]
        assert pending_take_over() is None and service.resume_take_over() is None  # once
    finally:
        service.stop()
        backend.close()


def test_the_command_runs_after_the_restore_and_the_outcome_is_kept(tmp_path, monkeypatch):
    # No store at all: the step reports it and execs the server's command all the same.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("JUPYTERHUB_SERVICE_URL", raising=False)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "westtek_spawner.prestart",
            "--store",
            str(tmp_path / "none"),
            "--environment-id",
            "alice",
            "--",
            sys.executable,
            "-c",
            "print('the server ran')",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "the server ran\n"
    assert "westtek prestart: No snapshot store yet" in done.stderr
    record = json.loads((tmp_path / "data" / "westtek" / "prestart.json").read_text())
    assert record["status"] == "no-snapshot" and record["seconds"] >= 0


def test_without_a_command_it_is_a_usage_error():
    assert prestart.main(["--only", "packages"]) == 2


def test_the_spawner_puts_the_restore_in_front_of_the_servers_command():
    spawner = WestTekSpawner(backend="ecs", cmd=["jupyterhub-singleuser"])
    assert spawner.restore_environment  # on for fresh containers
    assert spawner.server_command()[:3] == ["python", "-m", "westtek_spawner.prestart"]
    assert spawner.server_command()[3:] == [
        "--only",
        "packages",
        "--only",
        "kernels",
        "--only",
        "config",
        "--",
        "jupyterhub-singleuser",
    ]
    spawner.restore_areas = ["packages"]
    assert spawner.server_command()[3:6] == ["--only", "packages", "--"]
    spawner.restore_environment = False
    assert spawner.server_command() == ["jupyterhub-singleuser"]
    assert not WestTekSpawner(backend="local").restore_environment  # shared, persistent
    # The hub service launches a server for an environment, or from a snapshot: that one is
    # restored even where the pre-start restore is off.
    launched = WestTekSpawner(
        backend="ecs",
        restore_environment=False,
        cmd=["jupyterhub-singleuser"],
        user=make_user("alice"),
        user_options={"westtek_environment": "bob", "westtek_restore_snapshot": "ab12cd34"},
    )
    assert launched.environment_id == "bob"
    assert launched.server_command()[3:] == [
        "--only",
        "packages",
        "--only",
        "kernels",
        "--only",
        "config",
        "--snapshot",
        "ab12cd34",
        "--",
        "jupyterhub-singleuser",
    ]
    from westtek_spawner.errors import SpawnRefused

    with pytest.raises(SpawnRefused, match="westtek_restore_snapshot '../x' is not a valid id"):
        launched.apply_user_options(launched, {"westtek_restore_snapshot": "../x"})
    with pytest.raises(Exception, match="restore_areas: workspace unknown"):
        WestTekSpawner(restore_areas=["workspace"])


async def spawn_showing_progress(spawner: WestTekSpawner) -> list[str]:
    """Start the spawner; the messages of its progress events, as the spawn page shows them."""
    events = []

    async def collect():
        async for event in spawner.progress():
            events.append(event)

    start = asyncio.ensure_future(spawner.start())
    await asyncio.sleep(0)
    collector = asyncio.ensure_future(collect())
    await asyncio.wait_for(start, 120)
    await asyncio.wait_for(collector, 5)
    return [e["message"] for e in events]


async def test_a_local_spawn_restores_before_the_server_answers(
    snapshotted,
    wheelhouse,  # noqa: F811
    tmp_path,
):
    from jupyterhub.objects import Hub

    # Given alice's snapshot in her store and a venv that lost her installs,
    python = snapshotted["python"]
    lose_installs(snapshotted, wheelhouse)
    spawner = WestTekSpawner(
        user=make_user("alice"),
        hub=Hub(ip="127.0.0.1", port=8081, base_url="/hub/"),
        api_token="t",
        oauth_client_id="jupyterhub-user-alice",
        cmd=[str(python), "-c", TINY_SERVER],
        restore_environment=True,  # an admin's choice on the local backend
        store_template=str(snapshotted["store"]),
        answer_poll_interval=0.05,
        report_to_hub_service=False,
    )
    # the server sees the same Jupyter paths the snapshot was taken with
    spawner.env_keep = [
        *spawner.env_keep,
        "JUPYTER_DATA_DIR",
        "JUPYTER_CONFIG_DIR",
        "JUPYTER_PATH",
        "JUPYTER_CONFIG_PATH",
        "XDG_DATA_HOME",
    ]
    spawner.config.LocalBackend.home_dir_template = str(tmp_path / "homes" / "{username}")
    spawner.config.LocalBackend.state_dir_template = str(tmp_path / "state" / "{username}")
    # when she spawns,
    try:
        messages = await spawn_showing_progress(spawner)
        # then the restore ran first, as progress stages, and her packages are back.
        short = snapshotted["snapshot"][:12]
        restored = f"Restored your environment from snapshot {short} (2 changes put back)"
        assert restored in messages, messages
        assert messages.index(restored) < messages.index("Notebook server answering")
        assert installed(python, "westtek_probe_pkg") == "1.0.0"
        home = tmp_path / "homes" / "alice"
        assert (home / "home-was").read_text() == str(home)  # the server ran after it
    finally:
        await spawner.stop(now=True)


def test_a_take_over_launch_runs_the_take_over_and_opens_on_its_start_page():
    successor = WestTekSpawner(
        backend="local",
        cmd=["jupyterhub-singleuser"],
        user=make_user("alice"),
        user_options={
            "westtek_take_over": "bob",
            "westtek_predecessor": "bob",
            "westtek_take_over_snapshot": "ab12cd34",
        },
    )
    assert successor.environment_id == "alice"  # her own environment, not bob's
    assert successor.server_command()[3:12] == [
        "--skip-restore",  # restoring is off on the local backend
        "--take-over",
        "bob",
        "--predecessor",
        "bob",
        "--take-over-snapshot",
        "ab12cd34",
        "--",
        "jupyterhub-singleuser",
    ]
    successor.restore_environment = True
    assert successor.server_command()[3:5] == ["--only", "packages"]
    assert "--skip-restore" not in successor.server_command()
    from westtek_spawner.errors import SpawnRefused

    with pytest.raises(SpawnRefused, match="westtek_predecessor '../x' is not a valid id"):
        successor.apply_user_options(successor, {"westtek_predecessor": "../x"})
    assert prestart.main(["--take-over", "bob", "--", "true"]) == 2  # whose?


async def test_a_take_over_spawn_brings_the_predecessors_work_before_the_server_answers(
    snapshotted,
    tmp_path,
    monkeypatch,
):
    from jupyterhub.objects import Hub

    # Given alice's snapshot in the lab's store, handed to carol,
    spawner = WestTekSpawner(
        user=make_user("carol"),
        hub=Hub(ip="127.0.0.1", port=8081, base_url="/hub/"),
        api_token="t",
        oauth_client_id="jupyterhub-user-carol",
        cmd=[sys.executable, "-c", TINY_SERVER],
        store_template=str(snapshotted["store"]),
        answer_poll_interval=0.05,
        report_to_hub_service=False,
        user_options={"westtek_take_over": "alice", "westtek_predecessor": "alice"},
    )
    spawner.env_keep = [*spawner.env_keep, "JUPYTER_DATA_DIR", "XDG_DATA_HOME", "PYTHONPATH"]
    spawner.config.LocalBackend.home_dir_template = str(tmp_path / "homes" / "{username}")
    spawner.config.LocalBackend.state_dir_template = str(tmp_path / "state" / "{username}")
    assert spawner.get_env()["JUPYTERHUB_DEFAULT_URL"] == "/westtek/start-here"
    # when carol's server starts,
    try:
        messages = await spawn_showing_progress(spawner)
        # then alice's work is in a folder of carol's home before the server answers,
        taken = "alice's work is in from-alice/: open from-alice/START_HERE.md"
        assert any(taken in m for m in messages), messages
        assert messages.index(next(m for m in messages if taken in m)) < messages.index(
            "Notebook server answering"
        )
        home = tmp_path / "homes" / "carol"
        assert (home / "from-alice" / "analysis.ipynb").exists()
        assert (home / "from-alice" / "data" / "measurements.csv").exists()
        # with her packages as a kernel of its own, carol's interpreter untouched
        kernels = Path(snapshotted["tmp"]) / "jupyter-data" / "kernels"
        spec = json.loads((kernels / "alice-research" / "kernel.json").read_text())
        assert spec["argv"][0].startswith(str(home / ".kernels"))
        assert installed(Path(spec["argv"][0]), "westtek_probe_pkg") == "1.0.0"
    finally:
        await spawner.stop(now=True)
