"""Drift graded by what the notebooks use: the realistic scenarios, on real pip installs."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.core.conftest import pip_install
from westtek_core.capture import capture_environment
from westtek_core.cli import main
from westtek_core.drift import (
    RawChange,
    Severity,
    SeverityPolicy,
    capture_live,
    detect_drift,
    fails_at,
)
from westtek_core.snapshot import create_snapshot, load_snapshot
from westtek_core.store import Repository


@pytest.fixture
def baseline(research_env, tmp_path):
    """A snapshot of the research environment, as the baseline; returns a drift function."""
    repo = Repository.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache")
    python, root = str(research_env["python"]), research_env["workspace"]
    manifest = load_snapshot(repo, create_snapshot(repo, capture_environment([python], root)).id)

    def drift():
        report = detect_drift(capture_live([python], root), manifest, root)
        return report, {(c.kind, c.name): c for c in report.changes}

    return drift


def pip(env, *args):
    subprocess.run(
        [str(env["python"]), "-m", "pip", "-q", "--disable-pip-version-check", *args],
        check=True,
        capture_output=True,
    )


def test_no_change_is_stable(baseline):
    report, changes = baseline()
    assert report.status.value == "STABLE" and changes == {}


def test_minor_upgrade_of_an_imported_package_is_minor(baseline, research_env, wheelhouse):
    pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==1.1.0")
    report, changes = baseline()
    change = changes["package", "westtek_probe_pkg"]
    assert (change.change, change.severity) == ("upgraded", Severity.MINOR)
    assert change.affected_notebooks == ("analysis.ipynb",)
    assert report.status.value == "MINOR_DRIFT"


def test_major_upgrade_of_an_imported_package_is_critical(baseline, research_env, wheelhouse):
    pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==2.0.0")
    report, changes = baseline()
    change = changes["package", "westtek_probe_pkg"]
    assert change.severity is Severity.CRITICAL and "breaking" in change.reason
    assert change.affected_notebooks == ("analysis.ipynb",)
    assert report.status.value == "CRITICAL_DRIFT"


def test_removing_an_imported_package_is_critical(baseline, research_env):
    pip(research_env, "uninstall", "-y", "westtek_probe_pkg")
    _, changes = baseline()
    change = changes["package", "westtek_probe_pkg"]
    assert (change.change, change.severity) == ("removed", Severity.CRITICAL)


def test_an_import_name_unlike_its_distribution_is_mapped(baseline, research_env, wheelhouse):
    # the notebook imports `wtyaml`; the distribution is westtek-yaml-dist (cf. yaml/PyYAML)
    pip_install(research_env["python"], wheelhouse, "westtek-yaml-dist==2.0.0")
    _, changes = baseline()
    change = next(c for (kind, name), c in changes.items() if kind == "package")
    assert change.severity is Severity.CRITICAL
    assert change.affected_notebooks == ("analysis.ipynb",)


@pytest.mark.parametrize("action", ["upgrade-major", "remove"])
def test_unimported_packages_are_minor_whatever_happens(baseline, research_env, wheelhouse, action):
    if action == "upgrade-major":
        pip_install(research_env["python"], wheelhouse, "westtek_unused_pkg==2.0.0")
    else:
        pip(research_env, "uninstall", "-y", "westtek_unused_pkg")
    report, changes = baseline()
    change = changes["package", "westtek_unused_pkg"]
    assert change.severity is Severity.MINOR and change.affected_notebooks == ()
    assert report.status.value == "MINOR_DRIFT"


def test_a_downgrade_of_an_imported_package_is_graded_like_an_upgrade(
    research_env, wheelhouse, tmp_path
):
    pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==1.1.0")
    repo = Repository.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache")
    python, root = str(research_env["python"]), research_env["workspace"]
    manifest = load_snapshot(repo, create_snapshot(repo, capture_environment([python], root)).id)
    pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==1.0.0")
    report = detect_drift(capture_environment([python], root), manifest, root)
    (change,) = [c for c in report.changes if c.kind == "package"]
    assert (change.change, change.severity) == ("downgraded", Severity.MINOR)


def test_removing_the_notebooks_kernel_is_critical(baseline, research_env):
    shutil.rmtree(research_env["tmp"] / "jupyter-data" / "kernels" / "research")
    report, changes = baseline()
    change = changes["kernel", "research"]
    assert (change.change, change.severity) == ("removed", Severity.CRITICAL)
    assert change.affected_notebooks == ("analysis.ipynb",)


def test_a_config_edit_is_minor(baseline, research_env):
    config = research_env["tmp"] / "jupyter-config" / "jupyter_server_config.py"
    config.write_text(config.read_text() + "c.ServerApp.port = 9000\n")
    report, changes = baseline()
    assert changes["config", f"{config.parent}/jupyter_server_config.py"].severity is Severity.MINOR
    assert report.status.value == "MINOR_DRIFT"


def test_a_jupyterlab_user_setting_is_no_drift(baseline, research_env):
    # Given the researcher picks a dark theme in JupyterLab's settings
    settings = research_env["tmp"] / "jupyter-config" / "lab" / "user-settings"
    theme = settings / "@jupyterlab" / "apputils-extension" / "themes.jupyterlab-settings"
    theme.parent.mkdir(parents=True)
    theme.write_text('{"theme": "JupyterLab Dark"}')
    report, changes = baseline()
    # then it is listed, for information, and the environment is still stable
    assert changes["config", str(theme)].severity is Severity.INFO
    assert report.status.value == "STABLE"


def test_removing_a_data_file_a_notebook_reads_is_critical(baseline, research_env):
    (research_env["workspace"] / "data" / "measurements.csv").unlink()
    _, changes = baseline()
    change = changes["data", "data/measurements.csv"]
    assert change.severity is Severity.CRITICAL
    assert change.affected_notebooks == ("analysis.ipynb",)


def test_modifying_read_data_is_minor_and_new_files_are_info(baseline, research_env):
    (research_env["workspace"] / "data" / "measurements.csv").write_text("t,x\n0,0\n")
    (research_env["workspace"] / "notes.txt").write_text("new idea")
    _, changes = baseline()
    assert changes["data", "data/measurements.csv"].severity is Severity.MINOR
    assert changes["data", "notes.txt"].severity is Severity.INFO


def test_a_vanished_interpreter_is_critical_not_a_crash(baseline, research_env):
    shutil.rmtree(research_env["venv"])
    report, changes = baseline()
    change = next(c for (kind, _), c in changes.items() if kind == "interpreter")
    assert (change.change, change.severity) == ("removed", Severity.CRITICAL)
    assert report.status.value == "CRITICAL_DRIFT"


def test_python_minor_version_change_is_critical_patch_is_minor():
    policy = SeverityPolicy()
    minor = RawChange("interpreter", "env0", "upgraded", "3.11.7", "3.12.1", "env0")
    patch = RawChange("interpreter", "env0", "upgraded", "3.11.7", "3.11.9", "env0")
    assert policy.grade_one(minor, None).severity is Severity.CRITICAL
    assert policy.grade_one(patch, None).severity is Severity.MINOR


def test_zero_x_minor_releases_count_as_breaking_unless_configured():
    change = RawChange("package", "lib", "upgraded", "0.4.0", "0.5.0", "env0")
    assert SeverityPolicy().grade_one(change, None).severity is Severity.CRITICAL
    lenient = SeverityPolicy(zero_minor_is_breaking=False)
    assert lenient.grade_one(change, None).severity is Severity.MINOR


@pytest.fixture
def common(research_env, tmp_path):
    """The environment options every CLI call in these tests takes."""
    python, root = str(research_env["python"]), str(research_env["workspace"])
    return ["--python", python, "--root", root, "--store", str(tmp_path / "cli-store")]


def test_cli_drift_gates_ci_with_fail_on(research_env, wheelhouse, common, capsys):
    assert main(["snapshot", "create", *common, "--json"]) == 0
    capsys.readouterr()
    assert main(["drift", *common, "--fail-on", "minor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "STABLE"
    pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==1.1.0")
    assert main(["drift", *common, "--fail-on", "critical", "--json"]) == 0
    capsys.readouterr()
    assert main(["drift", *common, "--fail-on", "minor", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "MINOR_DRIFT"
    assert report["changes"][0]["affected_notebooks"] == ["analysis.ipynb"]


def test_baseline_set_moves_the_reference(research_env, wheelhouse, common, capsys):
    main(["snapshot", "create", *common, "--json"])
    capsys.readouterr()
    pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==2.0.0")
    main(["snapshot", "create", *common, "--json"])
    second = json.loads(capsys.readouterr().out)["id"]
    main(["drift", *common, "--json"])
    assert json.loads(capsys.readouterr().out)["status"] == "CRITICAL_DRIFT"  # vs the first
    assert main(["baseline", "set", second[:10], *common, "--json"]) == 0
    capsys.readouterr()
    main(["drift", *common, "--json"])
    assert json.loads(capsys.readouterr().out) == {
        "status": "STABLE",
        "baseline": second,
        "changes": [],
    }


def test_fail_on_levels_gate_at_and_above_their_severity():
    from westtek_core.drift import Change, DriftReport

    def report_with(severity):
        change = Change("package", "lib", "upgraded", "1.0", "1.1", severity, "r")
        return DriftReport("b", [change])

    assert not fails_at(DriftReport("b"), "minor")
    assert fails_at(report_with(Severity.MINOR), "minor")
    assert not fails_at(report_with(Severity.MINOR), "critical")
    assert fails_at(report_with(Severity.CRITICAL), "critical")
    assert not fails_at(report_with(Severity.INFO), "minor")


def test_notebook_analyses_are_cached_until_a_notebook_changes(research_env, tmp_path, monkeypatch):
    from westtek_core import drift

    root = research_env["workspace"]
    cache = tmp_path / "analyses.json"
    (first,) = drift.analyse_notebooks_cached(root, cache)
    assert "westtek_probe_pkg" in first.imports

    def must_not_run(*args, **kwargs):
        raise AssertionError("an unchanged notebook was analysed again")

    with monkeypatch.context() as patched:
        patched.setattr("westtek_core.drift.grading.analyse_notebook", must_not_run)
        assert drift.analyse_notebooks_cached(root, cache) == [first]
    notebook = root / "analysis.ipynb"
    notebook.write_text(notebook.read_text().replace("import wtyaml", "import json"))
    (again,) = drift.analyse_notebooks_cached(root, cache)
    assert "wtyaml" not in again.imports


def test_a_file_left_out_for_the_secret_in_it_is_no_drift(research_env, tmp_path):
    # Given a private key in the workspace under a name no rule knows: the baseline left it
    # out after reading it, the live capture (which reads no content) lists it
    root, python = research_env["workspace"], str(research_env["python"])
    (root / "deploy_key").write_text(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
    )
    repo = Repository.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache")
    manifest = load_snapshot(repo, create_snapshot(repo, capture_environment([python], root)).id)
    assert ("deploy_key", "excluded") in {(s["path"], s["action"]) for s in manifest["secrets"]}

    report = detect_drift(capture_live([python], root), manifest, root)

    assert report.status.value == "STABLE" and report.changes == [], report.changes


def test_a_package_installed_after_the_baseline_affects_the_notebooks_importing_it(
    research_env, wheelhouse, tmp_path
):
    # Given a baseline without westtek_unused_pkg,
    python, root = str(research_env["python"]), research_env["workspace"]
    pip(research_env, "uninstall", "-y", "westtek_unused_pkg")
    repo = Repository.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache")
    manifest = load_snapshot(repo, create_snapshot(repo, capture_environment([python], root)).id)
    # a notebook written since that imports it, and then its install,
    shutil.copy(root / "analysis.ipynb", root / "uses_new.ipynb")
    text = (root / "uses_new.ipynb").read_text().replace("westtek_probe_pkg", "westtek_unused_pkg")
    (root / "uses_new.ipynb").write_text(text)
    pip_install(research_env["python"], wheelhouse, "westtek_unused_pkg==1.0.0")
    # the added package is graded by the notebook that imports it
    report = detect_drift(capture_live([python], root), manifest, root)
    change = next(c for c in report.changes if c.name == "westtek_unused_pkg")
    assert change.change == "added"
    assert change.affected_notebooks == ("uses_new.ipynb",)
