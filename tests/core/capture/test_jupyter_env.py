import json
import logging
import sys
from pathlib import Path

from westtek_core.capture import (
    REDACTION_MARKER,
    capture_config,
    capture_kernels,
    capture_labextensions,
    default_interpreters,
    jupyter_versions,
    kernel_interpreter,
)

from .conftest import DemoEnv, JupyterDirs


def add_kernel(data: Path, name: str, argv: list[str], **extra) -> Path:
    resource_dir = data / "kernels" / name
    resource_dir.mkdir(parents=True)
    spec = {"argv": argv, "display_name": name, "language": "python", **extra}
    (resource_dir / "kernel.json").write_text(json.dumps(spec))
    (resource_dir / "logo-32x32.png").write_bytes(b"\x89PNG")
    return resource_dir


def test_kernel_interpreter_resolution(tmp_path):
    major, minor = sys.version_info[:2]
    for bare in ("python", f"python{major}", f"python{major}.{minor}"):
        # jupyter_client runs these with its own sys.executable, so do we.
        assert kernel_interpreter([bare, "-m", "ipykernel_launcher"]) == sys.executable
    assert kernel_interpreter(["/opt/env/bin/python3.9", "-m", "x"]) == "/opt/env/bin/python3.9"
    assert kernel_interpreter(["R", "--slave"]) is None
    assert kernel_interpreter(["conda", "run", "python"]) is None
    assert kernel_interpreter([]) is None


def test_kernels_and_default_interpreters(jupyter_dirs: JupyterDirs, demo_env: DemoEnv, caplog):
    demo = str(demo_env.python)
    add_kernel(jupyter_dirs.data, "a-demo", [demo, "-m", "ipykernel_launcher"])
    add_kernel(jupyter_dirs.data, "a2-demo-alias", [str(demo_env.prefix / "bin" / "python3")])
    add_kernel(jupyter_dirs.data, "b-current", ["python3", "-m", "ipykernel_launcher"])
    add_kernel(jupyter_dirs.data, "c-missing", ["/nonexistent/bin/python3", "-m", "x"])
    add_kernel(jupyter_dirs.data, "d-r", ["R", "--slave"], language="R")
    add_kernel(
        jupyter_dirs.data,
        "e-env",
        [demo],
        env={"HF_TOKEN": "hf_secret", "OMP_NUM_THREADS": "4", "EMPTY_TOKEN": ""},
    )

    with caplog.at_level(logging.WARNING):
        pythons = default_interpreters()
        kernels = {k.name: k for k in capture_kernels()}

    # One per prefix (the alias and the current-python kernels collapse), missing dropped.
    assert pythons == [demo, sys.executable]
    assert "/nonexistent/bin/python3 does not exist" in caplog.text

    assert kernels["a-demo"].interpreter == demo
    assert kernels["b-current"].interpreter == sys.executable
    assert kernels["c-missing"].interpreter is None
    assert kernels["d-r"].interpreter is None
    a_demo = kernels["a-demo"]
    assert a_demo.resource_dir == str(jupyter_dirs.data / "kernels" / "a-demo")
    assert [e.path for e in a_demo.tree.entries] == ["kernel.json", "logo-32x32.png"]
    assert a_demo.spec["display_name"] == "a-demo"
    assert a_demo.redacted == {} and a_demo.secrets == []

    env_kernel = kernels["e-env"]
    assert env_kernel.spec["env"] == {
        "HF_TOKEN": REDACTION_MARKER,
        "OMP_NUM_THREADS": "4",
        "EMPTY_TOKEN": "",
    }
    stored = json.loads(env_kernel.redacted["kernel.json"])
    assert stored["env"]["HF_TOKEN"] == REDACTION_MARKER
    assert [(s.area, s.path, s.action, s.detail) for s in env_kernel.secrets] == [
        ("kernel:e-env", "kernel.json", "redacted", "env.HF_TOKEN")
    ]
    raw = {k.name: k for k in capture_kernels(include_secrets=True)}["e-env"]
    assert raw.spec["env"]["HF_TOKEN"] == "hf_secret" and raw.redacted == {}


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_config_capture_selects_and_redacts(jupyter_dirs: JupyterDirs):
    cfg = jupyter_dirs.config
    write(cfg, "jupyter_server_config.py", "c.ServerApp.token = 'tok'\nc.ServerApp.port = 1\n")
    write(cfg, "jupyter_server_config.json", '{"IdentityProvider": {"token": "jt"}}')
    write(cfg, "jupyter_lab_config.py", "c.LabApp.collaborative = True\n")
    write(cfg, "jupyter_server_config.d/ext.json", '{"ServerApp": {"jpserver_extensions": {}}}')
    write(cfg, "nbconfig/notebook.json", "{}")
    write(cfg, "labconfig/page_config.json", '{"disabledExtensions": {}}')
    write(cfg, "custom/custom.css", "body {}")
    write(
        cfg,
        "lab/user-settings/@jupyterlab/apputils-extension/themes.jupyterlab-settings",
        '{\n  // comment\n  "theme": "JupyterLab Dark"\n}\n',
    )
    write(cfg, "lab/workspaces/default-37a8.jupyterlab-workspace", '{"data": {}}')
    write(cfg, "lab/other-cache/huge.bin", "x" * 1000)
    write(cfg, "migrated", "2024")
    write(cfg, "random-notes.txt", "unrelated")
    write(cfg, "broken/jupyter_server_config.py", "c.ServerApp.token = 'x")  # not selected

    captures = {c.dir: c for c in capture_config()}
    ours = captures[str(cfg)]

    assert ours.role == "config"
    assert [e.path for e in ours.tree.entries if e.kind == "file"] == [
        "custom/custom.css",
        "jupyter_lab_config.py",
        "jupyter_server_config.d/ext.json",
        "jupyter_server_config.json",
        "jupyter_server_config.py",
        "lab/user-settings/@jupyterlab/apputils-extension/themes.jupyterlab-settings",
        "labconfig/page_config.json",
        "nbconfig/notebook.json",
    ]
    assert set(ours.redacted) == {"jupyter_server_config.py", "jupyter_server_config.json"}
    assert ours.redacted["jupyter_server_config.py"] == (
        f"c.ServerApp.token = {REDACTION_MARKER!r}\nc.ServerApp.port = 1\n".encode()
    )
    assert json.loads(ours.redacted["jupyter_server_config.json"]) == {
        "IdentityProvider": {"token": REDACTION_MARKER}
    }
    assert sorted((s.path, s.kind, s.action) for s in ours.secrets) == [
        ("jupyter_server_config.json", "token", "redacted"),
        ("jupyter_server_config.py", "token", "redacted"),
    ]
    assert {s.area for s in ours.secrets} == {f"config:{cfg}"}

    raw = {c.dir: c for c in capture_config(include_secrets=True)}[str(cfg)]
    assert raw.redacted == {} and raw.secrets == []


def test_config_that_cannot_be_redacted_is_excluded(jupyter_dirs: JupyterDirs):
    write(jupyter_dirs.config, "jupyter_notebook_config.py", "c.NotebookApp.password = 'oops\n")
    ours = {c.dir: c for c in capture_config()}[str(jupyter_dirs.config)]
    assert ours.tree.entries == []
    assert [(s.path, s.reason) for s in ours.tree.skipped] == [
        ("jupyter_notebook_config.py", "ignored-secret")
    ]
    assert [(s.kind, s.action) for s in ours.secrets] == [("unparsable-secret", "excluded")]


def test_moved_lab_settings_and_app_settings(jupyter_dirs, tmp_path, monkeypatch):
    settings = tmp_path / "settings-elsewhere"
    write(settings, "@jupyterlab/notebook-extension/tracker.jupyterlab-settings", "{}")
    app_dir = tmp_path / "app"
    write(app_dir, "settings/overrides.json", '{"a": {"b": 1}}')
    write(app_dir, "settings/build.log", "noise")
    monkeypatch.setenv("JUPYTERLAB_SETTINGS_DIR", str(settings))
    monkeypatch.setenv("JUPYTERLAB_DIR", str(app_dir))
    captures = {c.role: c for c in capture_config() if c.role != "config"}
    assert [e.path for e in captures["lab-user-settings"].tree.entries if e.kind == "file"] == [
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings"
    ]
    assert [e.path for e in captures["lab-app-settings"].tree.entries] == ["overrides.json"]


def test_labextensions(jupyter_dirs: JupyterDirs):
    ext_root = jupyter_dirs.data / "labextensions"
    build = {"load": "static/remoteEntry.js", "extension": "./extension"}
    write(
        ext_root,
        "plain-ext/package.json",
        json.dumps({"name": "plain-ext", "version": "1.0.0", "jupyterlab": {"_build": build}}),
    )
    write(
        ext_root,
        "@scope/scoped/package.json",
        json.dumps(
            {
                "name": "@scope/scoped",
                "version": "2.1.0",
                "jupyterlab": {"_build": {"load": "x", "mimeExtension": "./mime"}},
            }
        ),
    )
    write(
        ext_root,
        "@scope/scoped/install.json",
        json.dumps({"packageManager": "python", "packageName": "scoped"}),
    )
    write(ext_root, "not-an-extension/readme.txt", "")
    write(
        jupyter_dirs.config,
        "labconfig/page_config.json",
        json.dumps({"disabledExtensions": {"plain-ext": True, "@scope/scoped:plugin-a": True}}),
    )

    found = {e["name"]: e for e in capture_labextensions() if e["data_dir"] == str(ext_root)}

    assert set(found) == {"plain-ext", "@scope/scoped"}
    plain = found["plain-ext"]
    assert plain["version"] == "1.0.0"
    assert plain["source_dir"] == str(ext_root / "plain-ext")
    assert plain["disabled"] is True and plain["extension"] is True
    assert plain["install"] is None and plain["linked_to"] is None
    scoped = found["@scope/scoped"]
    assert scoped["disabled"] is False
    assert scoped["disabled_plugins"] == ["@scope/scoped:plugin-a"]
    assert scoped["mime_extension"] is True and scoped["extension"] is False
    assert scoped["install"] == {"packageManager": "python", "packageName": "scoped"}


def test_jupyter_versions_come_from_this_process():
    versions = jupyter_versions()
    import jupyter_server

    assert versions["jupyter_server"] == jupyter_server.__version__
    assert "notebook" in versions
