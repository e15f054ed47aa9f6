"""A successor takes over a predecessor's snapshot: work in a folder, packages as a kernel."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.core.store.archived import FILES, RestoreCalls, thaw_all, write_archived_snapshot
from tests.core.test_environment_service import wait_for
from westtek_core.capture import capture_environment
from westtek_core.drift.events import EventLog
from westtek_core.environment_service import EnvironmentService
from westtek_core.kb.take_over import TakeOverError, private_reason, records, take_over
from westtek_core.rollback.container_start import (
    TAKE_OVER,
    PendingTakeOver,
    pending_take_over,
    record_path,
    write_record,
)
from westtek_core.snapshot import create_snapshot
from westtek_core.store import Repository, S3Backend


@pytest.fixture
def repo(tmp_path):
    return Repository.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache")


@pytest.fixture
def bobs_snapshot(repo, research_env):
    """Bob's environment with his work and his private files, snapshotted as "bob"."""
    workspace = research_env["workspace"]
    (workspace / ".bash_history").write_text("curl -H 'Authorization: x' https://example\n")
    (workspace / ".ipython" / "profile_default").mkdir(parents=True)
    (workspace / ".ipython" / "profile_default" / "history.sqlite").write_bytes(b"SQLite")
    (workspace / ".jupyter" / "lab" / "user-settings").mkdir(parents=True)
    (workspace / ".jupyter" / "jupyter_server_config.json").write_text('{"a": 1}')
    (workspace / ".local" / "share" / "jupyter" / "runtime").mkdir(parents=True)
    (workspace / ".local" / "share" / "jupyter" / "runtime" / "jupyter_cookie_secret").write_text(
        "cookie"
    )
    (workspace / "notes").mkdir()
    (workspace / "notes" / "why.md").write_text("pinned wtyaml for the old loader\n")
    capture = capture_environment([str(research_env["python"])], workspace)
    return create_snapshot(repo, capture, environment_id="bob").id


def test_a_successor_gets_the_work_and_a_kernel_of_its_own_but_no_private_files(
    repo, research_env, bobs_snapshot, tmp_path
):
    carol, kernels = tmp_path / "carol", tmp_path / "carol-kernels"
    carol.mkdir()
    # When carol takes over bob's environment,
    done = take_over(repo, "bob", "bob", carol, kernels_dir=kernels, state=tmp_path / "state")
    folder = carol / "from-bob"
    assert done.folder == "from-bob" and done.snapshot == bobs_snapshot
    # his notebooks and data are in a folder of her workspace, byte-exact,
    source = research_env["workspace"]
    for path in ("data/measurements.csv", "data/blob.bin", "notes/why.md"):
        assert (folder / path).read_bytes() == (source / path).read_bytes()
    # without his shell and IPython history, Jupyter secrets or config,
    for private in (
        ".bash_history",
        ".ipython/profile_default/history.sqlite",
        ".jupyter/jupyter_server_config.json",
        ".local/share/jupyter/runtime/jupyter_cookie_secret",
    ):
        assert not (folder / private).exists(), private
    # (the capture never stores shell or IPython history; a snapshot does hold his config)
    assert {"path": ".jupyter/jupyter_server_config.json", "why": "Jupyter config and secrets"} in (
        done.left_out
    )
    # his packages run as a kernel of its own, which his notebook is set to use,
    spec = json.loads((kernels / "bob-research" / "kernel.json").read_text())
    assert spec["display_name"] == "bob's research"
    assert spec["argv"][0].startswith(str(carol / ".kernels"))
    version = subprocess.run(
        [spec["argv"][0], "-c", "import westtek_probe_pkg; print(westtek_probe_pkg.VERSION)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert version.strip() == "1.0.0"
    notebook = json.loads((folder / "analysis.ipynb").read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "bob-research"
    # and a start page says what came over and what to do, from the notebooks themselves.
    page = (folder / "START_HERE.md").read_text()
    assert "Use kernel bob-research (bob's research), installed with this folder" in page
    assert "[analysis.ipynb](analysis.ipynb): imports westtek_probe_pkg, wtyaml" in page
    assert "reads data/measurements.csv" in page
    assert "Run the notebooks in this order" in page
    assert "Take over snapshot" not in page  # done already
    assert records(tmp_path / "state") == [done.to_json()]


def test_taking_over_again_brings_nothing_twice(repo, bobs_snapshot, tmp_path):
    carol = tmp_path / "carol"
    carol.mkdir()
    args = (repo, "bob", "bob", carol)
    first = take_over(*args, kernels_dir=tmp_path / "k", state=tmp_path / "state")
    again = take_over(*args, kernels_dir=tmp_path / "k", state=tmp_path / "state")
    assert again == first
    assert sorted(p.name for p in carol.iterdir()) == [".kernels", "from-bob"]


def test_the_snapshot_the_hub_names_is_taken_not_a_later_one(
    repo, research_env, bobs_snapshot, tmp_path
):
    # bob, still in the lab under the same environment id, stores a later snapshot
    (research_env["workspace"] / "after.ipynb").write_text("{}")
    capture = capture_environment([str(research_env["python"])], research_env["workspace"])
    later = create_snapshot(repo, capture, environment_id="bob").id
    carol = tmp_path / "carol"
    carol.mkdir()
    args = (repo, "bob", "bob", carol)
    done = take_over(
        *args, kernels_dir=tmp_path / "k", state=tmp_path / "s", snapshot=bobs_snapshot
    )
    assert done.snapshot == bobs_snapshot != later
    assert not (carol / "from-bob" / "after.ipynb").exists()
    with pytest.raises(TakeOverError, match=f"snapshot {later[:8]} is not one of dan"):
        take_over(repo, "dan", "dan", carol, kernels_dir=tmp_path / "k", snapshot=later[:8])


def test_a_folder_in_the_way_gets_the_snapshot_in_its_name(repo, bobs_snapshot, tmp_path):
    carol = tmp_path / "carol"
    (carol / "from-bob").mkdir(parents=True)
    (carol / "from-bob" / "mine.txt").write_text("carol's own")
    done = take_over(repo, "bob", "bob", carol, kernels_dir=tmp_path / "k", state=tmp_path / "s")
    assert done.folder == f"from-bob-{bobs_snapshot[:12]}"
    assert (carol / "from-bob" / "mine.txt").read_text() == "carol's own"


def test_an_environment_without_snapshots_is_a_one_line_error(repo, bobs_snapshot, tmp_path):
    with pytest.raises(TakeOverError, match="holds no snapshot of dan"):
        take_over(repo, "dan", "dan", tmp_path, kernels_dir=tmp_path / "k", state=tmp_path / "s")
    assert not (tmp_path / "from-dan").exists() and not (tmp_path / ".kernels").exists()


@pytest.mark.parametrize(
    ("path", "private"),
    [
        (".bash_history", True),
        ("sub/.python_history", True),
        (".ipython/profile_default/history.sqlite", True),
        (".jupyter/lab/user-settings/x.jupyterlab-settings", True),
        (".westtek/chat.sqlite", True),
        (".ssh/id_rsa", True),
        ("analysis.ipynb", False),
        ("data/jupyter/results.csv", False),
        ("history.csv", False),
    ],
)
def test_what_is_private(path, private):
    assert (private_reason(path) is not None) is private


# -- a predecessor who left years ago: their snapshot's packs are in Deep Archive -----------


@pytest.fixture
def archived_take_over(s3_bucket, thawing_held, tmp_path, monkeypatch):
    """Carol's server over an empty workspace; alice's snapshot's packs archived, thawing."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    backend = S3Backend(bucket=s3_bucket, prefix="labs/vault-13")
    snapshot = write_archived_snapshot(backend, tmp_path / "cache")  # alice's
    carol = tmp_path / "carol"
    carol.mkdir()
    service = EnvironmentService(
        store=f"s3://{s3_bucket}/labs/vault-13", key_file=tmp_path / "store.key", root=carol,
        pythons=[], environment_id="carol", event_log=EventLog(tmp_path / "events.sqlite"),
        archive_poll_seconds=0.2,
    )  # fmt: skip
    yield service, snapshot, backend
    service.stop()
    backend.close()


@pytest.mark.parametrize("started_by", ["a running server", "a take-over launch"])
def test_an_archived_snapshot_is_taken_over_by_itself_once_it_is_back(
    archived_take_over, tmp_path, started_by
):
    service, snapshot, backend = archived_take_over
    calls = RestoreCalls(service.repo().backend)  # type: ignore[arg-type]
    if started_by == "a running server":  # When: the hub posts the take-over to her server
        job = service.start_take_over("alice", "alice")
    else:  # When: her server starts after a take-over launch could only ask for the packs
        write_record({"status": "unchanged", TAKE_OVER: PendingTakeOver(
            "alice", "alice", snapshot, record_path()).to_json()})  # fmt: skip
        job = service.resume_take_over()
    assert job is not None and job.description == "take over alice's alice"
    # Then: the job asks S3 for the packs once and shows the wait,
    wait_for(lambda: job.waiting)
    assert job.to_json()["progress"]["message"] == (
        "waiting for archive, ready in about 12 hours: 1 pack of snapshot"
        f" {snapshot[:12]} coming back from archive storage, Standard retrieval"
    )
    time.sleep(0.5)  # a few more checks: still waiting, nothing asked again or written
    assert job.finished is None and len(calls.requests) == 1
    carol = tmp_path / "carol"
    assert list(carol.iterdir()) == [] and records() == []
    assert not (tmp_path / "jupyter-data").exists()

    # When: the packs are back
    thaw_all(backend)
    # Then: alice's work comes into carol's workspace without anyone asking
    done = service.jobs.wait(job.id, 60)
    assert done is not None and done.state == "succeeded", done and done.error
    for path, data in FILES.items():
        assert (carol / "from-alice" / path).read_bytes() == data
    assert records() == [done.result]
    # and a restart of the server does not take over again
    assert pending_take_over() is None and service.resume_take_over() is None
