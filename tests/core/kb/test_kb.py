"""The knowledge base on real notebooks: ingest, hybrid search, citations, redaction, labs."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from westtek_core.kb import KnowledgeBase
from westtek_core.kb.chunking import CHILD_TOKENS, PARENT_TOKENS, chunk_document, count_tokens
from westtek_core.kb.documents import notebook_document
from westtek_core.kb.embedding import StaticEmbedder


@pytest.fixture(scope="module")
def lab_workspace(example_notebooks, tmp_path_factory) -> Path:
    """A lab's workspace: the real notebooks plus an experiment log."""
    root = tmp_path_factory.mktemp("lab") / "workspace"
    shutil.copytree(example_notebooks, root / "notebooks", ignore=shutil.ignore_patterns(".*"))
    (root / "experiments").mkdir()
    (root / "experiments" / "2026-03-run.md").write_text(
        "# Run of 2026-03\n\nscipy is pinned to 1.10 because 1.11 changed the sparse "
        "matrix API our solver uses.\nContact: alice@vault13.org\n"
    )
    (root / "experiments" / "fig3.json").write_text(
        json.dumps({"figure": 3, "notebook": "notebooks/kernel_density.ipynb", "seed": 42})
    )
    return root


@pytest.fixture(scope="module")
def kb(lab_workspace, tmp_path_factory):
    base = KnowledgeBase(tmp_path_factory.mktemp("index") / "vault-13.sqlite")
    report = base.ingest_workspace(lab_workspace)
    assert not report.failed and len(report.ingested) >= 80
    yield base
    base.close()


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("kernel density estimation of a univariate sample", "kernel_density.ipynb"),
        ("generalized estimating equations GEE", "gee_"),
        ("robust linear models with Huber's T norm", "robust_models"),
        ("exponential smoothing ETS model", "ets.ipynb"),
        ("why is scipy pinned?", "experiments/2026-03-run.md"),
        ("which notebook makes figure 3", "experiments/fig3.json"),
    ],
)
def test_search_finds_the_notebook_a_question_is_about(kb, question, expected):
    results = kb.search(question, k=5)
    assert any(expected in r.source for r in results), [r.source for r in results]


def test_a_citation_resolves_to_the_cell_it_quotes(kb, lab_workspace):
    (best, *_) = kb.search("seasonal ARIMA SARIMAX Stata example", k=1)
    assert best.kind == "notebook" and best.locator.startswith("cell ")
    notebook = nbformat.read(lab_workspace / best.source, as_version=4)
    cell = notebook.cells[int(best.locator.split()[1])]
    first_line = next(line for line in cell.source.splitlines() if line.strip())
    assert first_line.strip() in best.text


def test_results_are_one_per_parent_and_best_first(kb):
    results = kb.search("regression", k=10)
    assert len(results) == 10
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    assert len({(r.source, r.text) for r in results}) == 10


def test_hierarchical_chunks_respect_their_sizes(example_notebooks):
    document = notebook_document(
        example_notebooks / "statespace_sarimax_stata.ipynb", "statespace_sarimax_stata.ipynb"
    )
    parents = chunk_document(document)
    assert len(parents) > 1
    for parent in parents:
        assert count_tokens(parent.text) <= PARENT_TOKENS + CHILD_TOKENS
        for child in parent.children:
            assert child.locator.startswith("cell ")
            assert count_tokens(child.text) <= CHILD_TOKENS * 1.5  # a cut line may run over
    # every cell is somewhere, in order
    locators = [int(c.locator.split()[1]) for p in parents for c in p.children]
    assert locators == sorted(locators)


def test_reingestion_is_incremental(lab_workspace, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(lab_workspace, root)
    base = KnowledgeBase(tmp_path / "index.sqlite")
    first = base.ingest_workspace(root)
    again = base.ingest_workspace(root)
    assert again.ingested == [] and again.unchanged == len(first.ingested)

    edited = root / "notebooks" / "ets.ipynb"
    notebook = nbformat.read(edited, as_version=4)
    notebook.cells.append(nbformat.v4.new_markdown_cell("Zanzibar quokka calibration note"))
    nbformat.write(notebook, edited)
    (root / "notebooks" / "kernel_density.ipynb").unlink()

    third = base.ingest_workspace(root)
    assert third.ingested == ["notebooks/ets.ipynb"]
    assert third.removed == ["notebooks/kernel_density.ipynb"]
    assert base.search("Zanzibar quokka calibration", k=1)[0].source == "notebooks/ets.ipynb"
    assert all("kernel_density" not in r.source for r in base.search("kernel density", k=10))
    base.close()


def _few_notebooks(example_notebooks: Path, dest: Path, count: int) -> Path:
    dest.mkdir(parents=True)
    for notebook in sorted(example_notebooks.glob("*.ipynb"))[:count]:
        shutil.copy(notebook, dest / notebook.name)
    return dest


def _token_counts(index: Path) -> dict[int, int]:
    with sqlite3.connect(index) as db:
        return dict(db.execute("SELECT token, count FROM token_counts WHERE count > 0"))


def test_the_token_counts_the_weights_come_from_follow_every_change(tmp_path, example_notebooks):
    root = _few_notebooks(example_notebooks, tmp_path / "ws", 8)
    base = KnowledgeBase(tmp_path / "index.sqlite")
    base.ingest_workspace(root)
    for notebook in sorted(root.glob("*.ipynb"))[:5]:
        notebook.unlink()
    edited = sorted(root.glob("*.ipynb"))[0]
    notebook = nbformat.read(edited, as_version=4)
    notebook.cells.append(nbformat.v4.new_markdown_cell("Zanzibar quokka calibration note"))
    nbformat.write(notebook, edited)
    assert len(base.ingest_workspace(root).removed) == 5
    base.close()

    fresh = KnowledgeBase(tmp_path / "fresh.sqlite")
    fresh.ingest_workspace(root)
    fresh.close()
    assert _token_counts(tmp_path / "index.sqlite") == _token_counts(tmp_path / "fresh.sqlite")


def test_two_processes_writing_one_index_keep_its_counts_and_see_each_other(
    tmp_path, example_notebooks
):
    # a notebook server and `westtek kb ingest` in a terminal, on one lab's index
    notebooks = _few_notebooks(example_notebooks, tmp_path / "all", 6)
    first = tmp_path / "first"
    first.mkdir()
    for notebook in sorted(notebooks.glob("*.ipynb"))[:3]:
        shutil.copy(notebook, first)
    server = KnowledgeBase(tmp_path / "index.sqlite")
    terminal = KnowledgeBase(tmp_path / "index.sqlite")
    server.ingest_workspace(first)
    server.search("warm-up")  # loads its vectors before the terminal writes
    assert len(terminal.ingest_workspace(notebooks).ingested) == 3  # the other three
    newcomer = sorted(notebooks.glob("*.ipynb"))[-1].name
    found = server.search(newcomer.removesuffix(".ipynb").replace("_", " "), mode="embedding")
    assert newcomer in [r.source for r in found]
    server.close(), terminal.close()

    fresh = KnowledgeBase(tmp_path / "fresh.sqlite")
    fresh.ingest_workspace(notebooks)
    fresh.close()
    assert _token_counts(tmp_path / "index.sqlite") == _token_counts(tmp_path / "fresh.sqlite")


def test_an_index_made_before_the_weighting_is_weighed_on_open(tmp_path, example_notebooks):
    root = _few_notebooks(example_notebooks, tmp_path / "ws", 12)
    path = tmp_path / "index.sqlite"
    base = KnowledgeBase(path)
    base.ingest_workspace(root)
    question = "kernel density estimation with a chosen bandwidth"
    expected = [(r.source, r.locator) for r in base.search(question, k=5, mode="embedding")]
    base.close()
    with sqlite3.connect(path) as db:  # as an earlier version left it: plain vectors
        db.execute("DELETE FROM settings")
        db.execute("DELETE FROM token_counts")
        db.execute("UPDATE children SET embedding = zeroblob(1024)")

    reopened = KnowledgeBase(path)
    assert [(r.source, r.locator) for r in reopened.search(question, k=5, mode="embedding")] == (
        expected
    )
    reopened.close()


def test_pii_and_credentials_never_reach_the_index(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            f'aws_secret_access_key = "{secret_key}"\n'
            'key_id = "AKIAIOSFODNN7EXAMPLE"\n'
            "# ask carol.jones@vault101.org or call +1 555-867-5309\n"
            'token = "ghp_' + "a1" * 18 + '"\n'
            "import boto3"
        )
    ]
    nbformat.write(notebook, root / "cloud.ipynb")
    index = tmp_path / "index.sqlite"
    base = KnowledgeBase(index)
    report = base.ingest_workspace(root)
    assert report.redactions >= 5
    (hit,) = base.search("boto3 secret access key", k=1)
    assert "[redacted" in hit.text
    base.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("index.sqlite*"))
    for secret in (secret_key, "AKIAIOSFODNN7EXAMPLE", "vault101.org", "867-5309", "a1a1a1a1a1"):
        assert secret.encode() not in stored, secret


def test_broken_notebooks_are_skipped_and_reported(tmp_path, example_notebooks):
    root = tmp_path / "ws"
    root.mkdir()
    shutil.copy(example_notebooks / "ets.ipynb", root / "good.ipynb")
    (root / "not-json.ipynb").write_text("{ this is not json")
    good = (example_notebooks / "gls.ipynb").read_bytes()
    (root / "truncated.ipynb").write_bytes(good[: len(good) // 2])
    (root / "binary.ipynb").write_bytes(b"\xff\xfe\x00garbage")
    base = KnowledgeBase(tmp_path / "index.sqlite")
    report = base.ingest_workspace(root)
    assert report.ingested == ["good.ipynb"]
    assert sorted(f["source"] for f in report.failed) == [
        "binary.ipynb",
        "not-json.ipynb",
        "truncated.ipynb",
    ]
    assert all(f["error"].startswith("cannot convert") for f in report.failed)
    base.close()


def test_each_lab_retrieves_only_its_own_material(tmp_path, example_notebooks):
    lab_a, lab_b = tmp_path / "a", tmp_path / "b"
    (lab_a / "nb").mkdir(parents=True)
    (lab_b / "nb").mkdir(parents=True)
    for name in ("kernel_density.ipynb", "ets.ipynb"):
        shutil.copy(example_notebooks / name, lab_a / "nb" / name)
    for name in ("gls.ipynb", "glm.ipynb"):
        shutil.copy(example_notebooks / name, lab_b / "nb" / name)
    a = KnowledgeBase(tmp_path / "vault-13.sqlite")
    b = KnowledgeBase(tmp_path / "vault-101.sqlite")
    a.ingest_workspace(lab_a)
    b.ingest_workspace(lab_b)
    for question in ("kernel density", "exponential smoothing", "ets", "bandwidth"):
        assert {r.source for r in b.search(question, k=20)} <= {"nb/gls.ipynb", "nb/glm.ipynb"}
    a.close()
    b.close()


def test_snapshots_and_install_history_are_searchable_with_line_citations(tmp_path):
    manifest = {
        "id": "ab12" * 16,
        "environment_id": "alice@vault-13",
        "timestamp": "2026-11-20T10:00:00+00:00",
        "created_by": "alice",
        "notes": "before the figure 3 rerun",
        "labels": {"paper": "fig3"},
        "interpreters": [
            {
                "label": "env0",
                "path": "/opt/env/bin/python",
                "version": "3.11.7",
                "packages": [
                    {"name": "scipy", "version": "1.10.1", "installer": "pip", "requested": True},
                    {"name": "numpy", "version": "1.26.4", "installer": "pip"},
                ],
            }
        ],
        "kernels": [{"name": "research", "spec": {"display_name": "Research", "argv": ["py"]}}],
        "metadata": {"notebook_count": 1, "configuration_files": []},
    }
    base = KnowledgeBase(tmp_path / "index.sqlite")
    base.ingest_snapshot(
        manifest,
        [{"path": "fig3.ipynb", "kernel": "research", "imports": ["scipy.optimize"],
          "data_files": ["data/runs.csv"]}],
    )  # fmt: skip
    base.ingest_install_history(
        [{"time": 1_790_000_000, "environment_id": "alice@vault-13", "package": "scipy",
          "change": "upgraded", "before": "1.10.1", "after": "1.11.0", "notebook": "fit.ipynb"}]
    )  # fmt: skip
    (line,) = base.search("scipy version installed", k=1, kinds={"manifest"})
    assert line.source == f"snapshot:{manifest['id']}" and line.locator.startswith("line ")
    assert "scipy==1.10.1" in line.text
    (summary,) = base.search("which notebook reads data/runs.csv", k=1, kinds={"summary"})
    assert "fig3.ipynb" in summary.text and "scipy 1.10.1" in summary.text
    (history,) = base.search("when was scipy upgraded", k=1, kinds={"install-history"})
    assert "1.10.1 to 1.11.0" in history.text and "fit.ipynb" in history.text
    base.close()


def test_the_embedder_loads_with_the_network_cut(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    vectors = StaticEmbedder().embed(["scipy is pinned", ""])
    assert vectors.shape == (2, 256)
    assert abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-4
    assert (vectors[1] == 0).all()  # no token at all: a zero vector, not NaN


def test_cli_ingests_and_searches_with_the_json_contract(tmp_path, lab_workspace):
    index = tmp_path / "cli.sqlite"
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    cli = [sys.executable, "-m", "westtek_core.cli"]
    ingest = subprocess.run(
        [*cli, "kb", "ingest", str(lab_workspace), "--index", str(index), "--json",
         "--store", str(tmp_path / "no-store")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr
    assert len(json.loads(ingest.stdout)["ingested"]) >= 80
    search = subprocess.run(
        [*cli, "kb", "search", "kernel density", "-k", "3", "--index", str(index), "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    results = json.loads(search.stdout)["results"]
    assert len(results) == 3
    assert set(results[0]) >= {"source", "locator", "score", "text"}
    missing = subprocess.run(
        [*cli, "kb", "search", "x", "--index", str(tmp_path / "none.sqlite")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 1
    assert missing.stderr.strip().startswith("westtek: error: no knowledge base at")
