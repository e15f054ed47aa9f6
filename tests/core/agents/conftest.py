"""A realistic lab for the agents: the research venv, notebooks, logs, pins and snapshots."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.core.conftest import pip_install, pip_wheel
from westtek_core.agents.tools import ToolContext
from westtek_core.capture import capture_environment
from westtek_core.drift.events import EventLog
from westtek_core.environment_service import EnvironmentService
from westtek_core.kb import KnowledgeBase
from westtek_core.snapshot import create_snapshot, load_snapshot

ENVIRONMENT = "alice@vault-13"

# Two versions of a package whose public API differs the way real upgrades do.
API_V1 = {
    "__init__.py": '''
        """Data loading and models."""
        from .io import load, old_helper
        from .model import Model

        __all__ = ["load", "old_helper", "Model", "stats"]
        ''',
    "io.py": '''
        def load(path, sep=",", header=True):
            """Read a table."""
            return [path, sep, header]

        def old_helper(x):
            return x

        def _private(y):
            return y
        ''',
    "model.py": """
        class Model:
            def __init__(self, order, damping=0.5):
                self.order = order

            def fit(self, x):
                return self

            def predict(self, x, steps=1):
                return x

            @property
            def params(self):
                return []
        """,
    "stats.py": """
        def ttest(a, b, equal_var=True):
            return 0.0

        def describe(a):
            return {}
        """,
}
API_V2 = {
    "__init__.py": '''
        """Data loading and models."""
        from .io import load, old_helper, new_reader
        from .model import Model

        __all__ = ["load", "old_helper", "new_reader", "Model", "stats", "testing"]
        ''',
    "io.py": '''
        import warnings

        def load(path, *, sep=",", header=True, encoding="utf-8"):
            """Read a table."""
            return [path, sep, header]

        def old_helper(x):
            warnings.warn("old_helper is deprecated", DeprecationWarning, stacklevel=2)
            return x

        def new_reader(path):
            return path
        ''',
    "model.py": """
        class Model:
            def __init__(self, order, damping=0.5):
                self.order = order

            def fit(self, x, y):
                return self

            def predict(self, x, steps=1):
                return x

            @property
            def params(self):
                return []
        """,
    "stats.py": """
        def describe(a):
            return {}
        """,
    "testing.py": """
        def ttest(a, b, equal_var=True):
            return 0.0
        """,
}


def build_api_wheel(tmp: Path, version: str, files: dict[str, str]) -> Path:
    """Build ``westtek_api_pkg`` at ``version`` with these module sources, offline."""
    project = tmp / f"api-{version}"
    package = project / "westtek_api_pkg"
    package.mkdir(parents=True)
    for name, text in files.items():
        (package / name).write_text(textwrap.dedent(text).lstrip())
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"
            [project]
            name = "westtek-api-pkg"
            version = "{version}"
            requires-python = "{">=3.8" if version.startswith("1") else ">=3.10"}"
            dependencies = {'["pip>=20"]' if version.startswith("2") else "[]"}
            [tool.hatch.build.targets.wheel]
            packages = ["westtek_api_pkg"]
            """
        )
    )
    return pip_wheel(project, tmp / "wheels")


def build_api_wheels(tmp: Path) -> Path:
    """``westtek_api_pkg`` 1.0.0 and 2.0.0 (API_V1, API_V2) in one wheel directory."""
    build_api_wheel(tmp, "1.0.0", API_V1)
    return build_api_wheel(tmp, "2.0.0", API_V2)


@pytest.fixture(scope="session")
def api_wheels(tmp_path_factory) -> Path:
    return build_api_wheels(tmp_path_factory.mktemp("api-wheels"))


def notebook(cells: list[tuple[str, str]], kernel: str = "research") -> str:
    """An nbformat-4 notebook of (cell_type, source) cells."""
    return json.dumps(
        {
            "cells": [
                {"cell_type": kind, "metadata": {}, "source": source}
                | ({"outputs": [], "execution_count": None} if kind == "code" else {})
                for kind, source in cells
            ],
            "metadata": {"kernelspec": {"name": kernel, "display_name": "Research"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def write_lab_material(workspace: Path) -> None:
    """Notebooks, an experiment log and pinned requirements, as a real lab leaves them."""
    (workspace / "figures.ipynb").write_text(
        notebook(
            [
                ("markdown", "# Figures for the paper\nFigure 3 shows the decay fit."),
                ("code", "import westtek_api_pkg as ap\nfrom westtek_api_pkg.stats import ttest"),
                ("code", "table = ap.load('data/measurements.csv', ';')"),
                ("code", "m = ap.Model(3)\nm.fit(table)\nprint(m.predict(table))"),
                ("code", "p = ttest(table, table)"),
                ("code", "import matplotlib\nplt.savefig('figures/figure3.png')"),
            ]
        )
    )
    (workspace / "requirements.txt").write_text(
        "# scipy 1.11 changed the default of curve_fit bounds; results drifted\n"
        "westtek_probe_pkg==1.0.0  # pinned: 2.0 renamed VERSION handling, see experiments\n"
        "westtek-api-pkg==1.0.0\n"
    )
    experiments = workspace / "experiments"
    experiments.mkdir()
    (experiments / "run-42.md").write_text(
        "# Run 42\n\nDecay fit for figure 3 uses data/measurements.csv.\n"
        "We pinned westtek_probe_pkg to 1.0.0 because 2.0.0 changed the calibration.\n"
    )


def build_lab(research_env: dict[str, Any], api_wheels: Path, tmp: Path) -> dict[str, Any]:
    """The research environment with lab material, the API package and a baseline snapshot.

    The caller stops ``service`` and closes ``events`` when done.
    """
    pip_install(research_env["python"], api_wheels, "westtek-api-pkg==1.0.0")
    workspace = research_env["workspace"]
    write_lab_material(workspace)
    events = EventLog(tmp / "events.sqlite")
    service = EnvironmentService(
        store=str(tmp / "store"),
        key_file=tmp / "store.key",
        root=workspace,
        pythons=[str(research_env["python"])],
        environment_id=ENVIRONMENT,
        event_log=events,
    )
    repo = service.repo(create=True)
    first = create_snapshot(
        repo,
        capture_environment([str(research_env["python"])], workspace),
        note="baseline before the paper runs",
        environment_id=ENVIRONMENT,
        created_by="alice",
    )
    return {
        **research_env,
        "service": service,
        "repo": repo,
        "events": events,
        "baseline": first.id,
        "ctx": ToolContext(service),
        "api_wheels": api_wheels,
    }


def build_knowledge_base(lab: dict[str, Any], path: Path) -> KnowledgeBase:
    """The lab's knowledge base at ``path``: workspace, snapshots and install history."""
    kb = KnowledgeBase(path)
    manifests = [load_snapshot(lab["repo"], i) for i in lab["repo"].list_manifests()]
    kb.ingest_everything(lab["workspace"], manifests, lab["events"].install_history())
    return kb


@pytest.fixture
def lab(research_env, api_wheels, tmp_path):
    """The research environment with lab material, the API package and a baseline snapshot."""
    built = build_lab(research_env, api_wheels, tmp_path)
    yield built
    built["service"].stop()
    built["events"].close()


def snapshot(lab, note: str) -> str:
    """Snapshot the lab's environment now; returns the id."""
    return create_snapshot(
        lab["repo"],
        capture_environment([str(lab["python"])], lab["workspace"]),
        note=note,
        environment_id=ENVIRONMENT,
        created_by="alice",
    ).id


@pytest.fixture
def kb_lab(lab, tmp_path):
    """The lab with its knowledge base ingested (workspace, snapshots, install history)."""
    path = tmp_path / "kb" / "lab-a.sqlite"
    kb = build_knowledge_base(lab, path)
    yield {**lab, "kb": kb, "kb_path": path}
    kb.close()


@pytest.fixture
def light_ctx(tmp_path, monkeypatch):
    """A context over an empty workspace, no store and no venv: for checks that stop early."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    workspace = tmp_path / "light"
    workspace.mkdir()
    events = EventLog(tmp_path / "light-events.sqlite")
    service = EnvironmentService(
        store=str(tmp_path / "light-store"),
        key_file=tmp_path / "light.key",
        root=workspace,
        pythons=[sys.executable],
        environment_id=ENVIRONMENT,
        event_log=events,
    )
    yield ToolContext(service)
    events.close()
