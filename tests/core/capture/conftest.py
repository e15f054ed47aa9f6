"""Fixtures for capture tests: throwaway venvs and an isolated Jupyter."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

# Tests run in the project's venv: its site-packages lends hatchling to build backends.
LENDER_SITE = sysconfig.get_paths()["purelib"]

WHEEL_PROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "WT.Demo"
version = "1.2.3"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["wt_demo", "wtns"]
"""

EDITABLE_PROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "wt-editable"
version = "0.1.0"

[tool.hatch.build.targets.wheel]
packages = ["wt_editable"]
"""


@dataclass
class DemoEnv:
    """A venv holding a regular local install and an editable install of tiny projects."""

    base: Path
    prefix: Path
    python: Path
    site: Path


def make_venv(prefix: Path) -> tuple[Path, Path]:
    """Create a venv without pip (fast); return its python and site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    python = prefix / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return python, Path(site)


@pytest.fixture(scope="session")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> DemoEnv:
    base = tmp_path_factory.mktemp("demo")
    python, site = make_venv(base / "venv")
    wheel_proj = base / "wt-demo"
    (wheel_proj / "wt_demo").mkdir(parents=True)
    (wheel_proj / "wt_demo" / "__init__.py").write_text("X = 1\n")
    (wheel_proj / "wtns" / "sub").mkdir(parents=True)  # a namespace package portion
    (wheel_proj / "wtns" / "sub" / "__init__.py").write_text("Y = 2\n")
    (wheel_proj / "pyproject.toml").write_text(WHEEL_PROJECT)
    editable_proj = base / "wt-editable"
    (editable_proj / "wt_editable").mkdir(parents=True)
    (editable_proj / "wt_editable" / "__init__.py").write_text("Z = 3\n")
    (editable_proj / "pyproject.toml").write_text(EDITABLE_PROJECT)
    # Offline install without build isolation: lend hatchling through a .pth while pip
    # runs in the target interpreter, then take it back.
    lender = site / "_lend_build_backend.pth"
    lender.write_text(LENDER_SITE + "\n")
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(python),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-build-isolation",
                "--no-index",
                "--no-deps",
                str(wheel_proj),
                "-e",
                str(editable_proj),
            ],
            check=True,
            capture_output=True,
        )
    finally:
        lender.unlink()
    return DemoEnv(base=base, prefix=base / "venv", python=python, site=site)


@dataclass
class JupyterDirs:
    """Isolated Jupyter config/data/runtime directories."""

    config: Path
    data: Path
    runtime: Path


@pytest.fixture
def jupyter_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> JupyterDirs:
    dirs = JupyterDirs(tmp_path / "jconfig", tmp_path / "jdata", tmp_path / "jruntime")
    for path in (dirs.config, dirs.data, dirs.runtime):
        path.mkdir()
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(dirs.config))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(dirs.data))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(dirs.runtime))
    for name in (
        "JUPYTER_PATH",
        "JUPYTER_CONFIG_PATH",
        "JUPYTERLAB_SETTINGS_DIR",
        "JUPYTERLAB_WORKSPACES_DIR",
        "JUPYTERLAB_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    return dirs
