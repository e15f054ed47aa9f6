"""The journal: an interrupted rollback resumes where it stopped, and a rollback is undone."""

from __future__ import annotations

import json

import pytest

from tests.core.rollback.conftest import drift_packages, imports, pip_list
from westtek_core import rollback
from westtek_core.capture import capture_environment
from westtek_core.cli import main
from westtek_core.drift import capture_live, detect_drift
from westtek_core.rollback import RollbackError, run_rollback
from westtek_core.snapshot import create_snapshot, load_snapshot
from westtek_core.store import Repository


@pytest.mark.slow
def test_an_interrupted_rollback_resumes_to_stable(
    snapshot,
    own_jupyter_dirs,
    wheelhouse,
    new_package_wheels,
    common,
    capsys,
):
    repo, manifest, python, root = snapshot
    drift_packages(own_jupyter_dirs, wheelhouse, new_package_wheels)

    def stop_after_first_step(progress):
        if progress.done == 1:
            raise KeyboardInterrupt  # as a Ctrl-C between two steps would

    with pytest.raises(KeyboardInterrupt):
        run_rollback(repo, manifest["id"], [python], root, progress=stop_after_first_step)
    (journal,) = rollback.journals(repo)
    assert journal.data["state"] == "failed"
    assert [s["state"] for s in journal.data["steps"]] == ["done", "pending", "pending"]
    # another rollback must not start on top of a half-done one
    other = create_snapshot(repo, capture_environment([python], root)).id
    with pytest.raises(RollbackError, match="is unfinished: finish it with"):
        run_rollback(repo, other, [python], root)

    store = ["--store", str(own_jupyter_dirs["tmp"] / "store")]
    assert main(["rollback", "--resume", *store, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["id"], report["resumed"], report["status"]) == (journal.id, True, "STABLE")
    assert (report["steps_done"], report["steps_total"]) == (3, 3)
    assert detect_drift(capture_live([python], root), manifest, root).status.value == "STABLE"
    assert main(["rollback", "--resume", *store]) == 1
    assert capsys.readouterr().err == (
        "westtek: error: no unfinished rollback of this store to resume\n"
    )


@pytest.mark.slow
def test_running_the_same_rollback_again_resumes_it(
    snapshot, own_jupyter_dirs, wheelhouse, new_package_wheels
):
    repo, manifest, python, root = snapshot
    drift_packages(own_jupyter_dirs, wheelhouse, new_package_wheels)

    def stop(progress):
        if progress.done == 2:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        run_rollback(repo, manifest["id"], [python], root, progress=stop)
    report = run_rollback(repo, manifest["id"], [python], root)
    assert report.resumed and report.status == "STABLE" and report.steps_done == 3


@pytest.mark.slow
def test_undo_puts_the_safety_snapshot_back(
    snapshot, own_jupyter_dirs, wheelhouse, new_package_wheels, capsys
):
    repo, manifest, python, root = snapshot
    drift_packages(own_jupyter_dirs, wheelhouse, new_package_wheels)
    drifted = pip_list(python)
    done = run_rollback(repo, manifest["id"], [python], root)
    assert pip_list(python) != drifted

    store = ["--store", str(own_jupyter_dirs["tmp"] / "store")]
    assert main(["rollback", "--undo", *store, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)

    assert report["kind"] == "undo" and report["target"] == done.safety_snapshot
    assert report["status"] == "STABLE"
    assert pip_list(python) == drifted
    assert imports(python, "westtek_new_pkg") == "1.0.0"
    safety = load_snapshot(repo, done.safety_snapshot)
    assert detect_drift(capture_live([python], root), safety, root).status.value == "STABLE"
    states = {j.id: j.data["state"] for j in rollback.journals(repo)}
    assert states == {done.id: "undone", report["id"]: "done"}
    assert main(["rollback", "--undo", *store]) == 1  # nothing left to undo
    assert capsys.readouterr().err == f"westtek: error: rollback {done.id} is undone already\n"


@pytest.mark.slow
def test_a_step_cut_short_midway_is_redone_on_resume(
    snapshot, own_jupyter_dirs, wheelhouse, new_package_wheels, monkeypatch
):
    repo, manifest, python, root = snapshot
    drift_packages(own_jupyter_dirs, wheelhouse, new_package_wheels)
    read_file, reads = Repository.iter_file, []

    def failing_store(self, content):
        reads.append(content)
        if len(reads) == 2:  # the second file of the replaced distribution
            raise OSError("store went away")
        return read_file(self, content)

    with monkeypatch.context() as patched:
        patched.setattr(Repository, "iter_file", failing_store)
        with pytest.raises(OSError, match="store went away"):
            run_rollback(repo, manifest["id"], [python], root)
    (journal,) = rollback.journals(repo)
    assert [s["state"] for s in journal.data["steps"]] == ["done", "pending", "pending"]
    assert journal.data["error"] == "OSError: store went away"
    # the half-written distribution is not installed as far as Python can tell
    assert "westtek-probe-pkg" not in {p["name"].replace("_", "-") for p in pip_list(python)}

    report = rollback.resume_rollback(repo)
    assert report.status == "STABLE" and report.steps_done == 3
    assert imports(python, "westtek_probe_pkg") == "1.0.0"
