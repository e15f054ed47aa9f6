import ast
import glob
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from westtek_core.capture import ProbeError, capture_interpreter, probe_interpreter
from westtek_core.capture.interpreters import PROBE_SCRIPT, _run_probe, probing_ahead
from westtek_core.capture.probe_cache import ProbeCache

from .conftest import DemoEnv, make_venv


def dist(info: dict, canonical: str) -> dict:
    return next(d for d in info["distributions"] if d["canonical_name"] == canonical)


@pytest.fixture(scope="module")
def venv_info() -> dict:
    return probe_interpreter(sys.executable)


def test_probe_describes_the_interpreter(venv_info):
    # Given the project's venv, when probed, then the interpreter fields are reported.
    assert venv_info["executable"] == sys.executable
    assert venv_info["prefix"] == sys.prefix
    assert venv_info["base_prefix"] == sys.base_prefix
    assert venv_info["is_venv"] is True
    assert venv_info["is_conda"] is False
    assert venv_info["pyvenv_cfg"]["home"]
    assert venv_info["version"][:3] == list(sys.version_info[:3])
    assert venv_info["version_string"] == sys.version
    assert venv_info["implementation"]["name"] == sys.implementation.name
    assert venv_info["platform"]["sys_platform"] == sys.platform
    assert venv_info["platform"]["machine"]
    assert set(venv_info["abi"]) == {"soabi", "ext_suffix"}
    assert set(venv_info["paths"]) == {"purelib", "platlib", "scripts", "data"}
    assert venv_info["paths"]["purelib"] in venv_info["sys_path"]
    # The probe's own directory is not part of the interpreter's path.
    assert str(PROBE_SCRIPT.parent) not in venv_info["sys_path"]
    assert venv_info["conda_meta"] is None
    assert venv_info["errors"] == []


def test_distributions_are_sorted_and_map_import_names(venv_info):
    names = [d["canonical_name"] for d in venv_info["distributions"]]
    assert names == sorted(names)
    assert "yaml" in dist(venv_info, "pyyaml")["top_level"]
    assert dist(venv_info, "python-dateutil")["top_level"] == ["dateutil"]
    pyyaml = dist(venv_info, "pyyaml")
    assert pyyaml["name"] == "PyYAML"
    assert pyyaml["installer"] == "pip"
    assert pyyaml["location"] == venv_info["paths"]["purelib"]
    assert pyyaml["metadata_dir"].endswith(".dist-info")
    # its files are the paths its RECORD lists, relative to its site-packages
    assert "yaml/__init__.py" in pyyaml["files"]
    assert all(os.path.exists(os.path.join(pyyaml["location"], f)) for f in pyyaml["files"])


def test_local_and_editable_installs_are_told_apart(demo_env: DemoEnv):
    info = probe_interpreter(str(demo_env.python))
    assert [d["canonical_name"] for d in info["distributions"]] == ["wt-demo", "wt-editable"]

    regular = dist(info, "wt-demo")
    assert regular["name"] == "WT.Demo"
    assert regular["version"] == "1.2.3"
    assert regular["editable"] is False
    assert regular["local"] is True
    assert regular["vcs"] is None
    assert regular["direct_url"]["url"].startswith("file://")
    assert regular["requested"] is True
    assert regular["installer"] == "pip"
    # A namespace package portion is named down to its regular package.
    assert regular["top_level"] == ["wt_demo", "wtns.sub"]
    paths = set(regular["files"])
    assert {"wt_demo/__init__.py", "wtns/sub/__init__.py"} <= paths

    editable = dist(info, "wt-editable")
    assert editable["editable"] is True
    assert editable["local"] is True
    assert editable["direct_url"]["dir_info"] == {"editable": True}
    # Its RECORD holds only a .pth; the names come from the directory the .pth adds.
    assert editable["top_level"] == ["wt_editable"]


def test_base_interpreter_has_no_prefix_tree():
    base_python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}"
    if not base_python.exists():
        pytest.skip("no base interpreter next to this venv")
    capture = capture_interpreter(str(base_python))
    assert capture.info["is_venv"] is False
    assert capture.prefix_tree is None


def test_venv_prefix_tree_is_listed_without_bytecode(demo_env: DemoEnv):
    capture = capture_interpreter(str(demo_env.python))
    assert capture.prefix_tree is not None
    paths = {e.path for e in capture.prefix_tree.entries}
    site_rel = demo_env.site.relative_to(demo_env.prefix).as_posix()
    assert "pyvenv.cfg" in paths
    assert f"{site_rel}/wt_demo/__init__.py" in paths
    assert not any("__pycache__" in p for p in paths)
    python = next(e for e in capture.prefix_tree.entries if e.path == "bin/python")
    assert python.kind == "symlink"


@pytest.mark.parametrize("minor", ["3.8", "3.9"])
def test_probe_runs_on_old_pythons(minor):
    candidates = glob.glob(f"/root/.pyenv/versions/{minor}*/bin/python{minor}")
    python = candidates[0] if candidates else None
    if python is None:
        pytest.skip(f"no Python {minor} here")
    info = probe_interpreter(python)
    assert ".".join(map(str, info["version"][:2])) == minor
    assert info["is_venv"] is False


def test_probe_source_is_stdlib_only_and_py38_syntax():
    source = PROBE_SCRIPT.read_text()
    tree = ast.parse(source, feature_version=(3, 8))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported - {"__future__"} <= set(sys.stdlib_module_names)
    assert not any(isinstance(node, ast.Match) for node in ast.walk(tree))


def test_probe_errors_are_clear(tmp_path):
    with pytest.raises(ProbeError, match="not found"):
        probe_interpreter(str(tmp_path / "nope" / "python"))
    failing = tmp_path / "python"
    failing.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    failing.chmod(0o755)
    with pytest.raises(ProbeError, match=r"exit 3.*broken"):
        probe_interpreter(str(failing))
    garbage = tmp_path / "python-garbage"
    garbage.write_text("#!/bin/sh\necho not-json\n")
    garbage.chmod(0o755)
    with pytest.raises(ProbeError, match="no valid JSON"):
        probe_interpreter(str(garbage))


def _fake_dist(site: Path, name: str, version: str) -> Path:
    meta = site / f"{name}-{version}.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (meta / "RECORD").write_text(f"{name}.py,,\n{meta.name}/METADATA,,\n")
    (site / f"{name}.py").write_text("")
    return meta


def test_a_second_probe_describes_only_changed_distributions(tmp_path, monkeypatch):
    # Given a venv with two distributions, probed once (its descriptions kept in the cache)
    monkeypatch.setenv("WESTTEK_CACHE_DIR", str(tmp_path / "cache"))
    python, site = make_venv(tmp_path / "venv")
    _fake_dist(site, "alpha", "1.0")
    old = _fake_dist(site, "beta", "1.0")
    probe_interpreter(str(python))
    # When one is upgraded (pip replaces its metadata directory) and the env probed again
    shutil.rmtree(old)
    _fake_dist(site, "beta", "2.0")
    raw = _run_probe(str(python), 60, ProbeCache(str(python)).known())
    info = probe_interpreter(str(python))
    # Then only the new one was read, and the report is the one a full probe gives
    reused = {d.get("reused", d.get("name")) for d in raw["distributions"]}
    assert reused == {str(site / "alpha-1.0.dist-info"), "beta"}
    full = _run_probe(str(python), 60, None)
    del full["metadata_stamps"]
    assert info == full
    assert [(d["name"], d["version"]) for d in info["distributions"]] == [
        ("alpha", "1.0"),
        ("beta", "2.0"),
    ]


def counting_interpreter(tmp_path: Path) -> tuple[Path, Path]:
    """An interpreter (this one, behind a script) that notes each run in a log; both paths."""
    log = tmp_path / "runs.log"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho run >> "{log}"\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return python, log


def test_probes_started_ahead_run_in_the_background_and_are_taken_once(tmp_path, monkeypatch):
    monkeypatch.setenv("WESTTEK_CACHE_DIR", str(tmp_path / "cache"))
    python, log = counting_interpreter(tmp_path)
    # Given an interpreter probed ahead of need,
    with probing_ahead([str(python)]):
        # then its probe runs while the caller does something else,
        deadline = time.monotonic() + 30
        while not log.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert log.read_text() == "run\n"
        # and the next probe of it takes that report: the one a probe gives,
        info = probe_interpreter(str(python))
        assert info["prefix"] == sys.prefix
        assert log.read_text() == "run\n"
        # once: the probe after it runs the interpreter again.
        assert probe_interpreter(str(python)) == info
        assert log.read_text() == "run\nrun\n"


def test_a_report_not_taken_is_dropped_when_probing_ahead_ends(tmp_path, monkeypatch):
    monkeypatch.setenv("WESTTEK_CACHE_DIR", str(tmp_path / "cache"))
    python, log = counting_interpreter(tmp_path)
    # Given an interpreter probed ahead but its report not taken (its run stopped or not),
    with probing_ahead([str(python)]):
        pass
    runs = log.read_text().count("run") if log.exists() else 0
    # when it is probed after the block, then it is run again (no stale report is taken).
    probe_interpreter(str(python))
    assert log.read_text().count("run") == runs + 1


def test_a_probe_not_taken_is_stopped_when_probing_ahead_ends(tmp_path):
    # Given an interpreter whose probe would run for a minute, probed ahead,
    pid_file = tmp_path / "pid"
    python = tmp_path / "python"
    python.write_text(
        f'#!/bin/sh\necho $$ > "{pid_file}.new"\nmv "{pid_file}.new" "{pid_file}"\nexec sleep 60\n'
    )
    python.chmod(0o755)
    with probing_ahead([str(python)]):
        deadline = time.monotonic() + 30
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = int(pid_file.read_text())
        assert Path(f"/proc/{pid}").exists()
    # when the block ends without its report taken, then its process is gone, reaped.
    assert not Path(f"/proc/{pid}").exists()
    assert not [t for t in threading.enumerate() if t.name == "westtek-probe"]


def test_a_probe_started_ahead_that_fails_fails_when_its_report_is_taken(tmp_path):
    missing = str(tmp_path / "nope" / "python")
    with probing_ahead([missing]), pytest.raises(ProbeError, match="not found"):
        probe_interpreter(missing)
