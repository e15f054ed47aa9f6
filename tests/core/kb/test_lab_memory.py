"""A lab's memory: built from the lab's stored snapshots, keyed by environment, cited.

Each test stores real snapshots (workspace files in a real store) and reads them back
through the lab memory as the hub service does; nothing comes from a live workspace.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.store_contents import store_snapshot
from westtek_core.kb.lab_memory import LabMemory
from westtek_core.store import Repository


def notebook(*cells: str) -> bytes:
    """A v4 notebook of code cells."""
    return json.dumps(
        {
            "cells": [
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "metadata": {},
                    "outputs": [],
                    "source": source,
                }
                for source in cells
            ],  # fmt: skip
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    ).encode()


BOB_ANALYSIS = notebook(
    "import pandas as pd\nfrom scipy.optimize import curve_fit",
    "df = pd.read_csv('data/beam_currents.csv')\n# figure 3: the fitted decay of the beam",
)
CAROL_ANALYSIS = notebook(
    "import numpy as np",
    "spectra = np.load('data/spectrometer_runs.npy')\n# histogram of the spectrometer peaks",
)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "stores" / "vault-13"


@pytest.fixture
def memory(tmp_path: Path):
    opened = LabMemory(tmp_path / "service" / "kb", "vault-13")
    yield opened
    opened.close()


def add(memory: LabMemory, store: Path, snapshot_id: str, environment: str, who: str):
    with Repository.open(str(store), cache_dir=store.parent / "cache") as repo:
        return memory.add_snapshot(repo, snapshot_id, environment, who)


def test_two_researchers_notebooks_of_one_name_are_found_apart_and_cited(memory, store):
    # Given bob's and carol's snapshots, each with its own analysis.ipynb and a log
    log = b"# run 7\nbeam at 3 mA\n"
    bob = store_snapshot(
        store, "bob", {"analysis.ipynb": BOB_ANALYSIS, "experiments/run-7.md": log}
    )
    carol = store_snapshot(store, "carol", {"analysis.ipynb": CAROL_ANALYSIS})
    report = add(memory, store, bob, "bob", "bob")
    assert sorted(report.ingested) == ["bob/analysis.ipynb", "bob/experiments/run-7.md",
                                       f"snapshot:{bob}", f"snapshot:{bob}"]  # fmt: skip
    add(memory, store, carol, "carol", "carol")

    # When a successor asks about figure 3
    (best, cited), *_ = memory.search("which notebook makes figure 3 from the beam data?")
    # Then bob's notebook answers, cited to its cell in bob's snapshot
    assert best.source == "bob/analysis.ipynb"
    assert (cited.environment_id, cited.researcher, cited.snapshot_id, cited.path) == (
        "bob", "bob", bob, "analysis.ipynb",
    )  # fmt: skip
    assert cited.locator.startswith("cell ") and "figure 3" in best.text
    # and carol's notebook of the same name answers for the spectrometer
    (best, cited), *_ = memory.search("spectrometer peaks histogram")
    assert (best.source, cited.environment_id, cited.snapshot_id) == (
        "carol/analysis.ipynb", "carol", carol,
    )  # fmt: skip
    # and the experiment log and the snapshot's summary are there too
    (best, cited), *_ = memory.search("beam at 3 mA run 7")
    assert cited.path == "experiments/run-7.md" and cited.locator.startswith("line ")
    summaries = [c for r, c in memory.search("summary of snapshot notebooks imports", k=10)
                 if r.kind == "summary"]  # fmt: skip
    assert {c.environment_id for c in summaries} == {"bob", "carol"}


def test_an_unchanged_notebook_is_not_read_again_and_keeps_its_snapshot(memory, store):
    first = store_snapshot(store, "bob", {"analysis.ipynb": BOB_ANALYSIS})
    add(memory, store, first, "bob", "bob")
    # When bob snapshots again with the notebook unchanged and a new one
    fit = notebook("# the exponential fit")
    second = store_snapshot(store, "bob", {"analysis.ipynb": BOB_ANALYSIS, "fit.ipynb": fit})
    report = add(memory, store, second, "bob", "bob")
    # Then only the new notebook (and the new snapshot's documents) are indexed
    assert "bob/analysis.ipynb" not in report.ingested and report.unchanged >= 1
    assert "bob/fit.ipynb" in report.ingested
    # and the old notebook's citation stays on the snapshot that holds exactly those bytes
    (_, cited), *_ = memory.search("figure 3 fitted decay")
    assert cited.snapshot_id == first


def test_the_memory_outlives_the_store_handle_and_the_researchers_server(tmp_path, store):
    # Given bob's snapshot indexed by one service process
    bob = store_snapshot(store, "bob", {"analysis.ipynb": BOB_ANALYSIS})
    memory = LabMemory(tmp_path / "service" / "kb", "vault-13")
    add(memory, store, bob, "bob", "bob")
    memory.add_install_history("bob", "bob", [
        {"time": 1_790_000_000, "environment_id": "bob", "package": "scipy",
         "change": "downgraded", "before": "1.11.0", "after": "1.10.1"}])  # fmt: skip
    memory.close()
    # When the service restarts (bob's server and workspace long gone)
    reopened = LabMemory(tmp_path / "service" / "kb", "vault-13")
    try:
        (best, cited), *_ = reopened.search("figure 3 beam currents")
        assert cited.environment_id == "bob" and best.source == "bob/analysis.ipynb"
        (best, cited), *_ = reopened.search("why was scipy downgraded to 1.10.1")
        assert (best.kind, cited.environment_id) == ("install-history", "bob")
        # and a search limited to other environments (what a share gives) finds none of it
        assert reopened.search("figure 3 beam currents", environments={"carol"}) == []
    finally:
        reopened.close()


def test_each_lab_has_its_own_files(tmp_path):
    # ids that differ only where a file name would collapse them never share a file
    a = LabMemory(tmp_path, "vault/13")
    b = LabMemory(tmp_path, "vault_13")
    try:
        assert a.kb.index_path != b.kb.index_path
        assert a.kb.index_path.parent == tmp_path
    finally:
        a.close()
        b.close()
