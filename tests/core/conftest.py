"""A real throwaway venv with a real package pip-installed into it, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest


def build_wheel(
    tmp: Path,
    name: str,
    version: str,
    module: str | None = None,
    extra_modules: Mapping[str, str] | None = None,
) -> Path:
    """Build a tiny pure-Python wheel with the test venv's hatchling, offline; its folder.

    ``module`` is the import name when it differs from the distribution's name;
    ``extra_modules`` (file name → source) go into the package beside its ``__init__.py``.
    """
    module = module or name
    project = tmp / f"{name}-{version}-src"
    package = project / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f'VERSION = "{version}"\n')
    for file_name, source in (extra_modules or {}).items():
        (package / file_name).write_text(source)
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"
            [project]
            name = "{name}"
            version = "{version}"
            [tool.hatch.build.targets.wheel]
            packages = ["{module}"]
            """
        )
    )
    return pip_wheel(project, tmp / "wheels")


def pip_wheel(project: Path, wheels: Path) -> Path:
    """Build ``project``'s wheel into ``wheels`` with the test venv's own build backend."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(project)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return wheels


def pip_install(python: Path, wheels: Path, *requirements: str) -> None:
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--find-links",
            str(wheels),
            "--disable-pip-version-check",
            *requirements,
        ],
        check=True,
        capture_output=True,
    )


def build_wheelhouse(tmp: Path) -> Path:
    """The probe, unused and yaml packages at 1.0.0, 1.1.0 and 2.0.0, built offline."""
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        wheels = build_wheel(tmp, "westtek_probe_pkg", version)
        build_wheel(tmp, "westtek_unused_pkg", version)
        build_wheel(tmp, "westtek-yaml-dist", version, module="wtyaml")
    return wheels


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    return build_wheelhouse(tmp_path_factory.mktemp("wheels"))


def build_research_env(
    tmp_path: Path, wheelhouse: Path, setenv: Callable[[str, str], None]
) -> dict[str, Path]:
    """A venv with westtek_probe_pkg 1.0.0, a kernelspec running it and a workspace.

    ``setenv`` sets the Jupyter and XDG variables that point at them (``monkeypatch.setenv``
    in tests, ``os.environ.__setitem__`` in a benchmark).
    """
    venv = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip_install(
        python,
        wheelhouse,
        "westtek_probe_pkg==1.0.0",
        "westtek_unused_pkg==1.0.0",
        "westtek-yaml-dist==1.0.0",
    )

    jupyter_data = tmp_path / "jupyter-data"
    kernel = jupyter_data / "kernels" / "research"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Research",
                "language": "python",
            }
        )
    )
    jupyter_config = tmp_path / "jupyter-config"
    jupyter_config.mkdir()
    (jupyter_config / "jupyter_server_config.py").write_text(
        "c = get_config()\nc.ServerApp.token = 'super-secret-token'\nc.ServerApp.port = 9999\n"
    )
    for key, value in {
        "JUPYTER_DATA_DIR": jupyter_data,
        "JUPYTER_CONFIG_DIR": jupyter_config,
        "JUPYTER_PATH": jupyter_data,
        "JUPYTER_CONFIG_PATH": jupyter_config,
        "JUPYTER_PREFER_ENV_PATH": "0",
        "JUPYTER_PLATFORM_DIRS": "0",
        "XDG_DATA_HOME": tmp_path / "data-home",  # baselines, event log, analysis cache
    }.items():
        setenv(key, str(value))

    workspace = tmp_path / "workspace"
    (workspace / "data").mkdir(parents=True)
    (workspace / "analysis.ipynb").write_text(
        json.dumps(
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "metadata": {},
                        "outputs": [],
                        "execution_count": None,
                        "source": "import westtek_probe_pkg\n"
                        "import wtyaml\n"
                        "%pip install westtek_probe_pkg\n"
                        "rows = open('data/measurements.csv').read()\n"
                        "print(westtek_probe_pkg.VERSION)",
                    }
                ],
                "metadata": {"kernelspec": {"name": "research", "display_name": "Research"}},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )
    (workspace / "data" / "measurements.csv").write_text(
        "t,x\n" + "".join(f"{i},{i * i}\n" for i in range(5000))
    )
    (workspace / "data" / "blob.bin").write_bytes(bytes(range(256)) * 4096)
    (workspace / ".env").write_text("AWS_SECRET_ACCESS_KEY=abc123\n")
    return {"python": python, "venv": venv, "workspace": workspace, "tmp": tmp_path}


@pytest.fixture
def research_env(tmp_path, wheelhouse, monkeypatch):
    """A venv with westtek_probe_pkg 1.0.0, a kernelspec running it and a workspace."""
    return build_research_env(tmp_path, wheelhouse, monkeypatch.setenv)


# The store suite's loopback moto server and bucket, for snapshots into s3://.
from tests.core.store.conftest import (  # noqa: E402, F401
    moto_endpoint,
    s3_bucket,
    s3_endpoint,
    thawing_held,
)


def research_kernel(env: Mapping[str, Path], name: str = "research-kernel") -> str:
    """A kernelspec whose kernel imports from ``env``'s venv first; its name.

    The venv has no ipykernel (a snapshot of it stays small): the kernel is the test
    venv's, with the research venv's site-packages ahead on its path.
    """
    site = next((env["venv"] / "lib").glob("python*/site-packages"))
    spec = Path(os.environ["JUPYTER_PATH"]) / "kernels" / name
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Research (kernel)",
                "language": "python",
                "env": {"PYTHONPATH": str(site)},
            }
        )
    )
    return name
