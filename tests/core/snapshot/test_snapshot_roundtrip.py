"""Capture a real venv + workspace, store it, restore it elsewhere, and compare every byte."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import blake3
import pytest

from tests.core.conftest import pip_install
from westtek_core.capture import capture_environment
from westtek_core.drift import diff_manifests
from westtek_core.snapshot import (
    ManifestError,
    RestoreError,
    copy_snapshot,
    create_snapshot,
    delete_snapshot,
    export_snapshot,
    load_snapshot,
    restore_snapshot,
    verify_snapshots,
)
from westtek_core.store import Repository, SnapshotNotFound

tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11; exports are checked there


def snapshot(repo, env, note=""):
    capture = capture_environment([str(env["python"])], env["workspace"])
    return create_snapshot(repo, capture, note=note, environment_id="alice@vault-13")


def tree_hashes(root: Path) -> dict[str, str]:
    hashes = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                hashes[rel] = "-> " + os.readlink(path)
            elif "__pycache__" not in rel:
                hashes[rel] = blake3.blake3(path.read_bytes()).hexdigest()
    return hashes


@pytest.fixture
def repo(tmp_path):
    return Repository.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache")


def test_restore_is_byte_exact_apart_from_relocated_files(repo, research_env, tmp_path):
    # Given a snapshot of a venv with a pip-installed package and a workspace,
    result = snapshot(repo, research_env, note="before the rerun")
    # when it is restored into a new directory,
    target = tmp_path / "restored"
    report = restore_snapshot(repo, load_snapshot(repo, result.id), target)
    # then every file hashes the same, except the relocated ones, which name the new prefix,
    relocated = {r.split("/", 1)[1] for r in report.relocated if r.startswith("env:0/")}
    assert "pyvenv.cfg" in relocated or any(r.startswith("bin/") for r in relocated)
    before = tree_hashes(research_env["venv"])
    after = tree_hashes(target / "envs" / "0")
    assert before.keys() == after.keys()
    differing = {p for p in before if before[p] != after[p]}
    assert differing <= relocated
    assert tree_hashes(research_env["workspace"]) == {
        **tree_hashes(target / "workspace"),
        ".env": tree_hashes(research_env["workspace"])[".env"],
    }
    # the restored interpreter imports the package and passes pip check,
    assert report.ok, report.validation
    python = target / "envs" / "0" / "bin" / "python"
    out = subprocess.run(
        [
            str(python),
            "-c",
            "import westtek_probe_pkg, sys; print(westtek_probe_pkg.VERSION, sys.prefix)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["1.0.0", str(target / "envs" / "0")]
    # the kernelspec runs the restored interpreter, and RESTORE.json says all of it.
    spec = json.loads((target / "jupyter" / "kernels" / "research" / "kernel.json").read_text())
    assert spec["argv"][0] == str(python)
    restore_json = json.loads((target / "RESTORE.json").read_text())
    assert restore_json["ok"] and restore_json["snapshot"] == result.id


def test_modes_and_mtimes_come_back(repo, research_env, tmp_path):
    csv = research_env["workspace"] / "data" / "measurements.csv"
    os.chmod(csv, 0o640)
    os.utime(csv, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    result = snapshot(repo, research_env)
    target = tmp_path / "restored"
    restore_snapshot(repo, load_snapshot(repo, result.id), target, validate=False)
    restored = (target / "workspace" / "data" / "measurements.csv").stat()
    assert restored.st_mode & 0o777 == 0o640
    assert restored.st_mtime_ns == 1_600_000_000_123_456_789


def test_secrets_are_left_out_and_tokens_redacted(repo, research_env, tmp_path):
    result = snapshot(repo, research_env)
    manifest = load_snapshot(repo, result.id)
    assert ".env" not in {e["path"] for e in manifest["workspace"]["files"]}
    assert any(s["path"].endswith(".env") for s in manifest["secrets"])
    target = tmp_path / "restored"
    restore_snapshot(repo, manifest, target, validate=False)
    config = (target / "jupyter" / "jupyter_server_config.py").read_text()
    assert "super-secret-token" not in config
    assert "c.ServerApp.port = 9999" in config


def test_manifest_carries_the_design_documents_fields(repo, research_env):
    manifest = load_snapshot(repo, snapshot(repo, research_env, note="n").id)
    for key in (
        "id",
        "environment_id",
        "created_by",
        "timestamp",
        "size_bytes",
        "checksum",
        "container_image",
        "notes",
    ):
        assert key in manifest
    metadata = manifest["metadata"]
    assert "westtek-probe-pkg==1.0.0" in {
        p.replace("_", "-") for p in metadata["installed_packages"]
    }
    assert metadata["notebook_count"] == 1
    assert any(p.endswith("jupyter_server_config.py") for p in metadata["configuration_files"])
    assert manifest["environment_id"] == "alice@vault-13"
    assert manifest["size_bytes"] > 1_000_000


def test_unchanged_resnapshot_reads_nothing_new(repo, research_env):
    first = snapshot(repo, research_env)
    second = snapshot(repo, research_env)
    # no file content was read again, but for the config file it re-reads to redact
    assert second.unchanged_files == first.files - 1
    assert second.new_bytes < 0.02 * first.new_bytes
    assert load_snapshot(repo, first.id)["checksum"] == load_snapshot(repo, second.id)["checksum"]


def test_diff_reports_an_upgrade_in_the_drift_report_shape(repo, research_env, wheelhouse):
    before = snapshot(repo, research_env)
    pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==2.0.0")
    (research_env["workspace"] / "data" / "measurements.csv").write_text("t,x\n1,1\n")
    after = snapshot(repo, research_env)
    report = diff_manifests(load_snapshot(repo, before.id), load_snapshot(repo, after.id)).to_json()
    assert report["status"] == "CRITICAL_DRIFT"  # a major version change
    upgrade = next(c for c in report["changes"] if c["kind"] == "package")
    assert upgrade["change"] == "upgraded"
    assert (upgrade["before"], upgrade["after"]) == ("1.0.0", "2.0.0")
    assert any(
        c["kind"] == "data" and c["name"] == "data/measurements.csv" for c in report["changes"]
    )


def test_verify_names_the_snapshot_and_file_a_flipped_byte_damages(repo, research_env, tmp_path):
    result = snapshot(repo, research_env)
    assert verify_snapshots(repo).ok
    packs = sorted(
        (tmp_path / "store" / "data").rglob("*"),
        key=lambda p: p.stat().st_size if p.is_file() else 0,
    )
    pack = packs[-1]
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.write_bytes(bytes(data))
    report = verify_snapshots(repo)
    assert not report.ok
    assert {d["snapshot"] for d in report.damaged} == {result.id}
    assert report.damaged  # every damaged file is named


def test_restore_refuses_a_non_empty_target_unless_forced(repo, research_env, tmp_path):
    manifest = load_snapshot(repo, snapshot(repo, research_env).id)
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(RestoreError, match="is not empty"):
        restore_snapshot(repo, manifest, target, validate=False)
    restore_snapshot(repo, manifest, target, validate=False, force=True)
    assert (target / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("evil", ["/etc/passwd", "../outside.txt", "data/../../x"])
def test_restore_refuses_a_manifest_that_escapes_its_area(repo, research_env, tmp_path, evil):
    manifest = load_snapshot(repo, snapshot(repo, research_env).id)
    manifest["workspace"]["files"].append(
        {"path": evil, "kind": "file", "mode": 0o644, "size": 0, "mtime_ns": 0, "content": []}
    )
    with pytest.raises(ManifestError, match="unsafe path"):
        restore_snapshot(repo, manifest, tmp_path / "t", validate=False)
    assert not (tmp_path / "outside.txt").exists()


def test_exports(repo, research_env):
    manifest = load_snapshot(repo, snapshot(repo, research_env).id)
    requirements = export_snapshot(manifest, "requirements")
    assert "westtek_probe_pkg==1.0.0" in requirements.replace("-", "_")
    lock = tomllib.loads(export_snapshot(manifest, "pylock"))
    assert lock["lock-version"] == "1.0"
    assert {"name": "westtek-probe-pkg", "version": "1.0.0"}.items() <= next(
        p for p in lock["packages"] if p["name"].replace("_", "-") == "westtek-probe-pkg"
    ).items()
    conda = export_snapshot(manifest, "conda")
    assert "dependencies:" in conda and "  - pip:" in conda
    with pytest.raises(ValueError, match="unknown export format"):
        export_snapshot(manifest, "poetry")


def test_delete_frees_what_no_snapshot_needs(repo, research_env, wheelhouse):
    first = snapshot(repo, research_env)
    (research_env["workspace"] / "data" / "new.bin").write_bytes(os.urandom(3_000_000))
    second = snapshot(repo, research_env)
    stored = repo.stats()["stored_bytes"]
    delete_snapshot(repo, second.id)
    assert repo.stats()["stored_bytes"] < stored - 2_000_000
    assert verify_snapshots(repo).ok
    assert [first.id] == repo.list_manifests()


def test_lock_restore_rebuilds_the_venv_from_an_index(
    repo, research_env, wheelhouse, tmp_path, monkeypatch
):
    manifest = load_snapshot(repo, snapshot(repo, research_env).id)
    # the "index" is a local wheel directory: tests never leave the machine
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheelhouse))
    monkeypatch.setenv(
        "PATH", f"{Path(research_env['python']).resolve().parent}:{os.environ['PATH']}"
    )
    target = tmp_path / "locked"
    report = restore_snapshot(repo, manifest, target, mode="lock")
    python = target / "envs" / "0" / "bin" / "python"
    version = subprocess.run(
        [str(python), "-c", "import westtek_probe_pkg as p; print(p.VERSION)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version == "1.0.0"
    assert report.ok, report.validation


@pytest.mark.slow
def test_a_real_scientific_env_restores_and_reruns_its_notebook(tmp_path, monkeypatch):
    # Given this test run's own environment (jupyter, ipykernel, ~180 packages) and a
    # notebook whose stored outputs came from its kernel,
    import sys

    import nbformat

    python = Path(sys.executable)
    jupyter_data = tmp_path / "jupyter-data"
    kernel_dir = jupyter_data / "kernels" / "lab-python"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Lab Python",
                "language": "python",
            }
        )
    )
    for key in ("JUPYTER_DATA_DIR", "JUPYTER_PATH"):
        monkeypatch.setenv(key, str(jupyter_data))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "no-config"))
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    notebook = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "lab-python", "display_name": "Lab Python"}}
    )
    notebook.cells = [
        nbformat.v4.new_code_cell("import yaml, dateutil\nprint(sum(range(10)))"),
        nbformat.v4.new_code_cell("6 * 7"),
    ]
    notebook.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="45\n")]
    notebook.cells[1].outputs = [
        nbformat.v4.new_output("execute_result", data={"text/plain": "42"}, execution_count=2)
    ]
    nbformat.write(notebook, workspace / "figure3.ipynb")
    stale = nbformat.v4.new_notebook(metadata=notebook.metadata)
    stale.cells = [nbformat.v4.new_code_cell("6 * 9")]
    stale.cells[0].outputs = [
        nbformat.v4.new_output("execute_result", data={"text/plain": "42"}, execution_count=1)
    ]
    nbformat.write(stale, workspace / "stale.ipynb")

    repo = Repository.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache")
    capture = capture_environment([str(python)], workspace)
    result = create_snapshot(repo, capture)
    # when it is restored with its notebooks re-run,
    target = tmp_path / "restored"
    report = restore_snapshot(repo, load_snapshot(repo, result.id), target, execute_notebooks=True)
    # then every package imports in the restored interpreter, the notebook reproduces, and
    # the one whose stored output no longer matches is reported cell by cell.
    checks = {check["interpreter"]: check for check in report.validation}
    imports = next(c for c in report.validation if "import_failures" in c)
    assert imports["import_failures"] == {} and imports["modules"] > 100
    assert checks["notebook figure3.ipynb"]["ok"], checks["notebook figure3.ipynb"]
    assert checks["notebook stale.ipynb"]["differences"] == [
        {"cell": 0, "before": "[execute_result] 42", "after": "[execute_result] 54"}
    ]
    before = tree_hashes(Path(sys.prefix))
    after = tree_hashes(target / "envs" / "0")
    relocated = {r.split("/", 1)[1] for r in report.relocated if r.startswith("env:0/")}
    assert {p for p in before if before.get(p) != after.get(p)} <= relocated


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted-other-key"])
def test_a_copied_snapshot_restores_the_same_files_from_the_other_store(
    repo, research_env, tmp_path, encrypted
):
    # Given a snapshot in one lab's store and another lab's store (its own key, if encrypted),
    result = snapshot(repo, research_env)
    other = Repository.open(
        str(tmp_path / "other-store"),
        cache_dir=tmp_path / "cache",
        encrypt=encrypted,
        key_file=tmp_path / "other.key" if encrypted else None,
    )
    # when the snapshot is copied there,
    copied = copy_snapshot(repo, other, result.id[:12])
    # then it is there under the id that store gives it (the same, unless keys differ),
    assert (copied == result.id) is not encrypted
    assert other.list_manifests() == [copied]
    # it verifies, and it restores the same files as the original,
    assert verify_snapshots(other, [copied]).ok
    target = tmp_path / "restored"  # one target: relocated files name their prefix
    assert restore_snapshot(repo, load_snapshot(repo, result.id), target).ok
    from_source = tree_hashes(target)
    shutil.rmtree(target)
    assert restore_snapshot(other, load_snapshot(other, copied), target).ok
    from_copy = tree_hashes(target)
    del from_source["RESTORE.json"], from_copy["RESTORE.json"]  # they name the snapshot id
    assert from_copy == from_source
    # and copying it again adds nothing.
    before = other.stats()
    assert copy_snapshot(repo, other, result.id) == copied
    assert other.stats() == before


def test_copying_a_snapshot_the_source_lacks_changes_nothing(repo, tmp_path):
    other = Repository.open(str(tmp_path / "other-store"), cache_dir=tmp_path / "cache")
    with pytest.raises(SnapshotNotFound, match="no snapshot 'abcdef12'"):
        copy_snapshot(repo, other, "abcdef12")
    assert other.list_manifests() == []
