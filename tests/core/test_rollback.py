"""Rollback in place: real venvs drift, then come back to their snapshot (and back again)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.core.conftest import build_wheel, pip_install
from tests.core.test_drift import common, pip  # noqa: F401 - `common`: the CLI options fixture
from westtek_core import rollback
from westtek_core.capture import capture_environment
from westtek_core.cli import main
from westtek_core.drift import capture_live, detect_drift
from westtek_core.rollback import (
    RollbackError,
    RollbackStep,
    distribution_entries,
    plan_rollback,
    run_rollback,
    with_live_secrets,
)
from westtek_core.snapshot import create_snapshot, load_snapshot
from westtek_core.store import Repository

# -- pure planning -------------------------------------------------------------------------

SITE = "lib/python3.11/site-packages"


def _dist(name: str, version: str, *, script: bool = False) -> dict:
    info = f"{name}-{version}.dist-info"
    files = [f"{name}/__init__.py", f"{name}/__pycache__/__init__.cpython-311.pyc"]
    files += [f"{info}/METADATA", f"{info}/RECORD"]
    if script:
        files.append(f"../../../bin/{name}-tool")
    return {"name": name, "version": version, "files": files}


def _tree_files(*dists: dict) -> list[dict]:
    entries = []
    for dist in dists:
        for path in dist["files"]:
            relative = os.path.normpath(f"{SITE}/{path}")
            if "__pycache__" not in relative:
                entries.append(
                    {"path": relative, "kind": "file", "mode": 0o644, "size": 1, "mtime_ns": 1}
                )
    return sorted(entries, key=lambda e: e["path"])


def _kernel(name: str, root: str, mtime: int = 1) -> dict:
    entry = {"path": "kernel.json", "kind": "file", "mode": 0o644, "size": 9, "mtime_ns": mtime}
    return {"name": name, "resource_dir": f"{root}/{name}", "files": [entry]}


def _config_file(path: str, mtime: int = 1) -> dict:
    return {"path": path, "kind": "file", "mode": 0o644, "size": 5, "mtime_ns": mtime}


@pytest.fixture
def target_and_live():
    """A target manifest and a live description that differ in every way a plan handles."""
    same, old_b, only_target = _dist("a", "1.0"), _dist("b", "2.0", script=True), _dist("c", "1.0")
    target = {
        "id": "f" * 64,
        "interpreters": [
            {
                "path": "/env/bin/python",
                "executable": "/env/bin/python",
                "prefix": "/env",
                "paths": {"purelib": f"/env/{SITE}", "platlib": f"/env/{SITE}"},
                "packages": [same, old_b, only_target],
                "prefix_tree": {"root": "/env", "files": _tree_files(same, old_b, only_target)},
            }
        ],
        "kernels": [_kernel("research", "/jd/kernels"), _kernel("same", "/jd/kernels")],
        "jupyter": {
            "config": [
                {
                    "dir": "/jc",
                    "role": "config",
                    "files": [
                        {"path": "lab", "kind": "dir", "mode": 0o755, "size": 0, "mtime_ns": 1},
                        _config_file("jupyter_server_config.py"),
                        _config_file("jupyter_lab_config.py"),
                    ],
                }
            ]
        },
    }
    site = f"/env/{SITE}"
    live = {
        "pythons": None,
        "self_prefix": "/elsewhere",
        "interpreters": [
            {
                "path": "/env/bin/python",
                "prefix": "/env",
                "packages": [
                    {**_dist("a", "1.0"), "location": site},
                    {**_dist("b", "3.0"), "location": site},
                    {**_dist("d", "0.1"), "location": site},
                ],
            }
        ],
        "kernels": [
            _kernel("research", "/jd/kernels", mtime=2),
            _kernel("same", "/jd/kernels"),
            _kernel("added", "/jd/kernels"),
        ],
        "config": [
            {
                "dir": "/jc",
                "files": [
                    _config_file("jupyter_server_config.py", mtime=2),
                    _config_file("jupyter_lab_config.py"),
                    _config_file("jupyter_notebook_config.py"),
                ],
            }
        ],
        "kernel_dirs": ["/jd/kernels"],
        "config_dirs": ["/jc"],
    }
    return target, live


def test_a_snapshots_lab_layout_is_never_rolled_back(target_and_live):
    # Given a snapshot made when JupyterLab's workspaces were captured as config,
    target, live = target_and_live
    layout = _config_file("lab/workspaces/default-37a8.jupyterlab-workspace")
    target["jupyter"]["config"][0]["files"].append(layout)
    # the rollback plans nothing for them: a layout is not configuration.
    names = [step.name for step in plan_rollback(target, live, ["config"]).steps]
    assert names == ["jupyter_notebook_config.py", "jupyter_server_config.py"]


def test_a_plan_lists_every_difference_removals_first(target_and_live):
    target, live = target_and_live
    plan = plan_rollback(target, live)
    packages = {"area": "packages", "where": "/env/bin/python", "interpreter": 0}
    assert plan.to_json() == {
        "target": "f" * 64,
        "only": ["packages", "kernels", "config"],
        "steps": [
            {**packages, "action": "remove", "name": "d", "before": "0.1", "after": None},
            {**packages, "action": "replace", "name": "b", "before": "3.0", "after": "2.0"},
            {**packages, "action": "install", "name": "c", "before": None, "after": "1.0"},
            {
                "area": "kernels",
                "action": "remove",
                "name": "added",
                "where": "/jd/kernels/added",
                "interpreter": None,
                "before": None,
                "after": None,
            },
            {
                "area": "kernels",
                "action": "replace",
                "name": "research",
                "where": "/jd/kernels/research",
                "interpreter": None,
                "before": None,
                "after": None,
            },
            {
                "area": "config",
                "action": "remove",
                "name": "jupyter_notebook_config.py",
                "where": "/jc",
                "interpreter": None,
                "before": None,
                "after": None,
            },
            {
                "area": "config",
                "action": "replace",
                "name": "jupyter_server_config.py",
                "where": "/jc",
                "interpreter": None,
                "before": None,
                "after": None,
            },
        ],
        "unchanged": {"packages": 1, "kernels": 1, "config": 1},
        "notes": [],
    }


def test_only_limits_the_plan_to_its_areas(target_and_live):
    target, live = target_and_live
    plan = plan_rollback(target, live, only=["kernels"])
    assert {s.area for s in plan.steps} == {"kernels"} and plan.unchanged == {"kernels": 1}
    with pytest.raises(RollbackError, match="choose from packages, kernels, config"):
        plan_rollback(target, live, only=["workspace"])


def test_record_paths_map_into_the_prefix():
    dist = _dist("b", "2.0", script=True)
    interp = {
        "prefix": "/env",
        "paths": {"purelib": f"/env/{SITE}"},
        "prefix_tree": {"files": _tree_files(dist)},
    }
    entries, missing = distribution_entries(interp, dist)
    assert [e["path"] for e in entries] == [
        "bin/b-tool",
        f"{SITE}/b-2.0.dist-info/METADATA",
        f"{SITE}/b-2.0.dist-info/RECORD",
        f"{SITE}/b/__init__.py",
    ]
    assert missing == []  # bytecode caches are never stored and never missed


@pytest.mark.parametrize(
    "bad_path", ["../../../../etc/cron.d/evil", "/etc/cron.d/evil", "../../../../../env2/x"]
)
def test_a_record_path_leaving_the_prefix_is_refused(target_and_live, bad_path):
    target, live = target_and_live
    target["interpreters"][0]["packages"][2]["files"].append(bad_path)
    with pytest.raises(RollbackError, match="unsafe path in snapshot: c lists"):
        plan_rollback(target, live)


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("kernel-dir", "/etc/research", "not a kernelspec of a Jupyter kernels directory"),
        ("kernel-dir", "/jd/kernels/../../etc/research", "not a kernelspec"),
        ("kernel-name", "..", "unsafe kernel name"),
        ("kernel-file", "../../../etc/passwd", "unsafe path in manifest"),
        ("config-dir", "/etc", "is not a Jupyter config directory here"),
        ("config-file", "/etc/passwd", "unsafe path in manifest"),
        ("config-file", "lab/../../x", "unsafe path in manifest"),
    ],
)
def test_kernels_and_config_must_stay_in_their_dirs(target_and_live, where, value, message):
    target, live = target_and_live
    kernel = target["kernels"][0]
    config = target["jupyter"]["config"][0]
    if where == "kernel-dir":
        kernel["resource_dir"] = value
    elif where == "kernel-name":
        kernel["name"] = value
    elif where == "kernel-file":
        kernel["files"][0]["path"] = value
    elif where == "config-dir":
        config["dir"] = value
    else:
        config["files"][1]["path"] = value
    with pytest.raises(RollbackError, match=message):
        plan_rollback(target, live)


def test_what_cannot_be_done_safely_is_left_and_noted(target_and_live):
    target, live = target_and_live
    live["interpreters"][0]["packages"][2]["location"] = "/root/.local/lib/site-packages"
    target["interpreters"][0]["packages"][2]["files"] = []  # c: no RECORD in the snapshot
    plan = plan_rollback(target, live, only=["packages"])
    assert [s.name for s in plan.steps] == ["b"]
    assert plan.notes == [
        "c 1.0 of /env/bin/python cannot be restored: its files are not in the snapshot "
        "(installed outside the prefix?)",
        "d 0.1 of /env/bin/python is installed outside its prefix "
        "(/root/.local/lib/site-packages): left as it is",
    ]


def test_an_unknown_interpreter_is_refused(target_and_live):
    target, live = target_and_live
    live["pythons"] = ["/other/bin/python"]
    with pytest.raises(RollbackError, match="interpreter /other/bin/python is not in snapshot"):
        plan_rollback(target, live)


def test_a_step_survives_the_journal_round_trip():
    step = RollbackStep("packages", "replace", "b", "/env/bin/python", 0, "3.0", "2.0")
    assert RollbackStep.from_json(json.loads(json.dumps(step.to_json()))) == step
    assert step.describe() == "replace b 3.0 → 2.0 (/env/bin/python)"


def test_redacted_config_gets_the_live_secrets_back():
    stored = (
        b"c = get_config()\nc.ServerApp.token = '<redacted-by-westtek>'\nc.ServerApp.port = 1\n"
    )
    live = b"c = get_config()\nc.ServerApp.token = 'tok'\nc.ServerApp.port = 2\nc.X.y = 3\n"
    assert with_live_secrets("jupyter_server_config.py", stored, live) == stored.replace(
        b"'<redacted-by-westtek>'", b"'tok'"
    )
    stored_json = b'{\n "env": {\n  "API_TOKEN": "<redacted-by-westtek>"\n },\n "x": 1\n}\n'
    live_json = b'{"env": {"API_TOKEN": "s3cr\xc3\xa9t"}, "x": 2}'
    assert with_live_secrets("kernel.json", stored_json, live_json) == (
        b'{\n "env": {\n  "API_TOKEN": "s3cr\xc3\xa9t"\n },\n "x": 1\n}\n'
    )
    # without a live value the marker stays (the caller notes it)
    assert with_live_secrets("kernel.json", stored_json, b"{}") == stored_json


# -- real environments ---------------------------------------------------------------------


@pytest.fixture
def own_jupyter_dirs(research_env, monkeypatch):
    """Jupyter's search paths reduced to the research environment's own dirs.

    Rollback rewrites whatever differs in the kernels and config dirs it sees: the shared
    development venv's must stay out of reach of these tests.
    """
    import jupyter_client.kernelspec
    import jupyter_core.paths

    from westtek_core.capture import jupyter_env

    tmp = research_env["tmp"]
    config = [str(tmp / "jupyter-config")]
    data = str(tmp / "jupyter-data")

    def jupyter_path(*subdirs):
        return [os.path.join(data, *subdirs)]

    for module in (jupyter_core.paths, jupyter_env):
        monkeypatch.setattr(module, "jupyter_config_path", lambda: list(config))
    for module in (jupyter_core.paths, jupyter_env, jupyter_client.kernelspec):
        monkeypatch.setattr(module, "jupyter_path", jupyter_path)
    monkeypatch.setenv("JUPYTERLAB_DIR", str(tmp / "lab-app"))
    return research_env


@pytest.fixture
def snapshot(own_jupyter_dirs, tmp_path):
    """A snapshot of the research environment; returns (repo, manifest, python, root)."""
    env = own_jupyter_dirs
    repo = Repository.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache")
    python, root = str(env["python"]), env["workspace"]
    result = create_snapshot(repo, capture_environment([python], root), note="known good")
    return repo, load_snapshot(repo, result.id), python, root


def pip_list(python) -> list[dict]:
    done = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def new_package_wheels(tmp_path_factory):
    """A package the research environment never had."""
    return build_wheel(tmp_path_factory.mktemp("new-wheel"), "westtek_new_pkg", "1.0.0")


def drift_packages(env, wheelhouse, new_wheels):
    """Upgrade across a major version, uninstall one package, install a new one."""
    pip_install(env["python"], wheelhouse, "westtek_probe_pkg==2.0.0")
    pip(env, "uninstall", "-y", "westtek_unused_pkg")
    pip_install(env["python"], new_wheels, "westtek_new_pkg==1.0.0")


def imports(python, module) -> str:
    done = subprocess.run(
        [str(python), "-c", f"import {module}; print({module}.VERSION)"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() if done.returncode == 0 else "not importable"


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
    common,  # noqa: F811 - the fixture
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
def test_an_interrupted_rollback_resumes_to_stable(
    snapshot,
    own_jupyter_dirs,
    wheelhouse,
    new_package_wheels,
    common,  # noqa: F811 - the fixture
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
def test_a_bad_snapshot_id_is_a_one_line_error(
    own_jupyter_dirs,
    common,  # noqa: F811 - the fixture
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
