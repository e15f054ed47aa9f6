"""Rolling real venvs back to their snapshot: packages, kernels and config, by API and CLI."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.core.rollback.conftest import drift_packages, imports, pip_list
from westtek_core.cli import main
from westtek_core.drift import capture_live, detect_drift
from westtek_core.rollback import run_rollback
from westtek_core.snapshot import load_snapshot
from westtek_core.store import Repository


@pytest.mark.slow
def test_rollback_undoes_upgrade_uninstall_and_install(
    snapshot, own_jupyter_dirs, wheelhouse, new_package_wheels
):
    repo, manifest, python, root = snapshot
    env = own_jupyter_dirs
    before = pip_list(python)
    # Given the environment drifted critically
    drift_packages(env, wheelhouse, new_package_wheels)
    assert detect_drift(capture_live([python], root), manifest, root).status.value == (
        "CRITICAL_DRIFT"
    )
    seen = []
    # When it is rolled back
    report = run_rollback(repo, manifest["id"][:10], [python], root, progress=seen.append)
    # Then drift against the snapshot is STABLE and pip sees what it saw then
    assert report.status == "STABLE" and report.drift.changes == []
    assert detect_drift(capture_live([python], root), manifest, root).status.value == "STABLE"
    assert pip_list(python) == before
    assert imports(python, "westtek_probe_pkg") == "1.0.0"
    assert imports(python, "westtek_unused_pkg") == "1.0.0"
    assert imports(python, "westtek_new_pkg") == "not importable"
    assert [(s["action"], s["name"], s["state"]) for s in report.steps] == [
        ("remove", "westtek_new_pkg", "done"),
        ("replace", "westtek_probe_pkg", "done"),
        ("install", "westtek_unused_pkg", "done"),
    ]
    assert [(p.done, p.total) for p in seen] == [(1, 3), (2, 3), (3, 3)]
    # and the safety snapshot holds the drifted environment, labelled
    safety = load_snapshot(repo, report.safety_snapshot)
    assert safety["labels"]["westtek.rollback"] == "safety"
    assert manifest["id"][:12] in safety["notes"]
    versions = {p["name"]: p["version"] for p in safety["interpreters"][0]["packages"]}
    assert versions["westtek_probe_pkg"] == "2.0.0" and "westtek_new_pkg" in versions
    journal = json.loads(open(report.journal).read())
    assert journal["state"] == "done" and journal["status"] == "STABLE"
    # a second rollback has nothing to do
    again = run_rollback(repo, manifest["id"], [python], root)
    assert again.steps == [] and again.safety_snapshot is None and again.status == "STABLE"


@pytest.mark.slow
def test_only_packages_leaves_kernels_and_config_alone(
    snapshot, own_jupyter_dirs, wheelhouse, new_package_wheels
):
    repo, manifest, python, root = snapshot
    env = own_jupyter_dirs
    kernel_json = env["tmp"] / "jupyter-data" / "kernels" / "research" / "kernel.json"
    config = env["tmp"] / "jupyter-config" / "jupyter_server_config.py"
    drift_packages(env, wheelhouse, new_package_wheels)
    spec = json.loads(kernel_json.read_text())
    kernel_json.write_text(json.dumps({**spec, "display_name": "Renamed"}))
    config.write_text(config.read_text() + "c.ServerApp.port = 9000\n")
    edited = (kernel_json.read_bytes(), config.read_bytes())

    report = run_rollback(repo, manifest["id"], [python], root, only=["packages"])

    assert report.status == "STABLE" and {s["area"] for s in report.steps} == {"packages"}
    assert (kernel_json.read_bytes(), config.read_bytes()) == edited
    left = detect_drift(capture_live([python], root), manifest, root)
    assert sorted((c.kind, c.change) for c in left.changes) == [
        ("config", "modified"),
        ("kernel", "modified"),
    ]


@pytest.mark.slow
def test_kernels_and_config_come_back_with_their_secrets(
    own_jupyter_dirs,
    common,
    capsys,
):
    env = own_jupyter_dirs
    data, config_dir = env["tmp"] / "jupyter-data", env["tmp"] / "jupyter-config"
    kernel_json = data / "kernels" / "research" / "kernel.json"
    config = config_dir / "jupyter_server_config.py"
    original = {kernel_json: kernel_json.read_bytes(), config: config.read_bytes()}
    assert main(["snapshot", "create", *common, "--json"]) == 0
    snapshot_id = json.loads(capsys.readouterr().out)["id"]
    # Given a kernel edited, a kernel added, the token-bearing config edited, a config added
    kernel_json.write_text(kernel_json.read_text().replace("Research", "Changed"))
    (data / "kernels" / "extra").mkdir()
    (data / "kernels" / "extra" / "kernel.json").write_text('{"argv": ["python3"]}')
    config.write_text(config.read_text().replace("9999", "8888") + "c.ServerApp.ip = '*'\n")
    (config_dir / "jupyter_lab_config.py").write_text("c = get_config()\n")

    # a dry run lists every step the rollback will take, and changes nothing
    areas = ["--only", "kernels", "--only", "config"]
    assert main(["rollback", "--to", snapshot_id, *areas, "--dry-run", *common, "--json"]) == 0
    preview = json.loads(capsys.readouterr().out)
    assert sorted((s["action"], s["name"]) for s in preview["steps"]) == [
        ("remove", "extra"),
        ("remove", "jupyter_lab_config.py"),
        ("replace", "jupyter_server_config.py"),
        ("replace", "research"),
    ]
    assert (data / "kernels" / "extra").exists()

    code = main(["rollback", "--to", snapshot_id, *areas, *common])
    out = capsys.readouterr().out

    # Then each file is back byte for byte, the secret token included, and extras are gone
    assert code == 0, out
    assert {path: path.read_bytes() for path in original} == original
    assert b"super-secret-token" in config.read_bytes()
    assert not (data / "kernels" / "extra").exists()
    assert not (config_dir / "jupyter_lab_config.py").exists()
    assert "rolled back to snapshot" in out and "STABLE" in out and "--undo" in out
    manifest = load_snapshot(Repository.open(common[-1]), snapshot_id)
    python, root = common[1], env["workspace"]
    assert detect_drift(capture_live([python], root), manifest, root).status.value == "STABLE"


@pytest.mark.slow
def test_a_bad_snapshot_id_is_a_one_line_error(
    own_jupyter_dirs,
    common,
    capsys,
):
    assert main(["snapshot", "create", *common, "--json"]) == 0
    capsys.readouterr()
    assert main(["rollback", "--to", "ffffffff", *common]) == 1
    err = capsys.readouterr().err
    assert err.startswith("westtek: error: no snapshot 'ffffffff'") and err.count("\n") == 1


def test_rollback_needs_exactly_one_of_to_resume_undo(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["rollback", "--resume", "--undo"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["rollback"])
    assert exit_info.value.code == 2
    assert "one of the arguments --to --resume --undo is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["rollback", "--resume", "--dry-run"])
    assert exit_info.value.code == 2
    assert "use it with --to ID" in capsys.readouterr().err


@pytest.mark.slow
def test_a_deleted_environment_comes_back_whole(snapshot, own_jupyter_dirs):
    repo, manifest, python, root = snapshot
    before = pip_list(python)
    shutil.rmtree(own_jupyter_dirs["venv"])

    report = run_rollback(repo, manifest["id"], [python], root, only=["packages"])

    assert [(s["action"], s["state"]) for s in report.steps] == [("restore-prefix", "done")]
    assert report.status == "STABLE"
    assert pip_list(python) == before
    assert imports(python, "westtek_probe_pkg") == "1.0.0"
