"""Real research environments for the rollback tests: a snapshot, then drift to undo."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.core.conftest import build_wheel, pip_install
from tests.core.drift.test_detect import common, pip  # noqa: F401 - `common`: the CLI options fixture
from westtek_core.capture import capture_environment
from westtek_core.snapshot import create_snapshot, load_snapshot
from westtek_core.store import Repository


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
