import json
from pathlib import Path

import pytest

from westtek_core.capture import (
    REDACTION_MARKER,
    Capture,
    ProbeError,
    capture_environment,
    environment,
)

from .conftest import JupyterDirs, make_venv


@pytest.fixture
def workspace_with_env(tmp_path: Path) -> tuple[Path, Path]:
    # Given a workspace holding notebooks, a secret and the venv its kernel uses.
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "notebooks" / "analysis.ipynb").write_text("{}")
    (root / ".env").write_text("API_KEY=1")
    python, _ = make_venv(root / "env")
    return root, python


def test_capture_environment_end_to_end(jupyter_dirs: JupyterDirs, workspace_with_env):
    root, python = workspace_with_env
    # A config dir inside the env: its redacted copy is the only one that may be stored.
    env_config = root / "env" / "etc" / "jupyter"
    env_config.mkdir(parents=True)
    (env_config / "jupyter_server_config.py").write_text("c.ServerApp.token = 'tok'\n")
    other = {"JUPYTER_CONFIG_PATH": str(env_config)}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in other.items():
            mp.setenv(key, value)
        (jupyter_dirs.runtime / "kernel-1.json").write_text('{"key": "hmac"}')
        capture = capture_environment([str(python)], root)

    assert isinstance(capture, Capture)
    [interp] = capture.interpreters
    assert interp.python == str(python)
    assert interp.info["is_venv"] is True
    assert interp.prefix_tree is not None
    prefix_paths = {e.path for e in interp.prefix_tree.entries}
    assert "pyvenv.cfg" in prefix_paths
    assert "etc/jupyter/jupyter_server_config.py" not in prefix_paths
    assert {(s.path, s.reason) for s in interp.prefix_tree.skipped} >= {
        ("etc/jupyter/jupyter_server_config.py", "redacted-elsewhere")
    }
    [env_cfg] = [c for c in capture.config if c.dir == str(env_config)]
    assert env_cfg.redacted["jupyter_server_config.py"] == (
        f"c.ServerApp.token = {REDACTION_MARKER!r}\n".encode()
    )

    # The env is captured as an interpreter, so not again as workspace data.
    ws = [e.path for e in capture.workspace.entries]
    assert ws == ["notebooks", "notebooks/analysis.ipynb"]
    assert capture.workspace.root == root

    kinds = {(s.area, s.path, s.action) for s in capture.secrets}
    assert ("workspace", ".env", "excluded") in kinds
    assert (f"config:{env_config}", "jupyter_server_config.py", "redacted") in kinds

    assert capture.jupyter["jupyter_core"]
    assert isinstance(capture.labextensions, list)
    assert capture.warnings == []
    json.dumps([e.to_json() for e in capture.workspace.entries])


def test_include_secrets_turns_everything_off(jupyter_dirs: JupyterDirs, workspace_with_env):
    root, python = workspace_with_env
    (jupyter_dirs.config / "jupyter_server_config.py").write_text("c.ServerApp.token = 't'\n")
    capture = capture_environment([str(python)], root, include_secrets=True)
    assert capture.secrets == []
    assert ".env" in [e.path for e in capture.workspace.entries]
    assert all(c.redacted == {} for c in capture.config)


def test_runtime_dir_and_extra_exclusions_stay_out(jupyter_dirs, tmp_path, monkeypatch):
    root = tmp_path / "home"
    runtime = root / ".local" / "share" / "jupyter" / "runtime"
    runtime.mkdir(parents=True)
    (runtime / "jpserver-1.json").write_text('{"token": "t"}')
    (root / "store").mkdir()
    (root / "store" / "blob").write_text("x")
    (root / "nb.ipynb").write_text("{}")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    python, _ = make_venv(tmp_path / "env")
    capture = capture_environment([str(python)], root, exclude=[root / "store"])
    assert [e.path for e in capture.workspace.entries] == [
        ".local",
        ".local/share",
        ".local/share/jupyter",
        "nb.ipynb",
    ]


def test_a_jupyter_config_dir_in_the_workspace_is_config_not_data(
    jupyter_dirs, tmp_path, monkeypatch
):
    # Given a home as the workspace, with JupyterLab's settings in its ~/.jupyter
    root = tmp_path / "home"
    settings = root / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    (root / "nb.ipynb").write_text("{}")
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(root / ".jupyter"))
    python, _ = make_venv(tmp_path / "env")
    capture = capture_environment([str(python)], root)
    # then the settings file is captured once, as config
    assert [e.path for e in capture.workspace.entries] == ["nb.ipynb"]
    config = [e.path for c in capture.config for e in c.tree.entries]
    assert any(p.endswith("notification.jupyterlab-settings") for p in config)


def test_named_interpreter_that_fails_is_an_error(jupyter_dirs, tmp_path):
    with pytest.raises(ProbeError):
        capture_environment([str(tmp_path / "no-python")], tmp_path)


def test_default_interpreter_that_fails_is_a_warning(jupyter_dirs, tmp_path, monkeypatch):
    broken = tmp_path / "bin" / "python"
    broken.parent.mkdir()
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(environment, "default_interpreters", lambda: [str(broken)])
    (tmp_path / "ws").mkdir()
    capture = capture_environment(None, tmp_path / "ws")
    assert capture.interpreters == []
    assert len(capture.warnings) == 1 and "exit 1" in capture.warnings[0]
