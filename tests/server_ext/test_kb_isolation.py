"""Lab isolation of the knowledge base: no query on lab B's server returns a chunk of lab A.

Both labs' indexes sit in the same data directory (as on a shared machine or volume). Lab
A's notebooks carry distinctive words; lab B's server (``lab_id`` vault-101) is then asked,
through ``GET kb/search`` and the Knowledge Transfer agent's ``POST chat``, every phrase of
every one of lab A's passages and some generic questions. Lab B's own notebook must be
found (the search works), and nothing of lab A may come back. Lab ids that differ only in
characters the file name cannot hold must not share an index either.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.server_ext.test_schemathesis import westtek_traits as tiny_env_traits  # noqa: F401
from westtek_core.kb import KnowledgeBase, default_index_path

LAB_A, LAB_B = "vault-13", "vault-101"
MARK_A = "zirconium"  # in every one of lab A's notebooks, in no notebook of lab B


def notebook(*cells: str) -> str:
    return json.dumps({
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": c} for c in cells],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    })  # fmt: skip


LAB_A_NOTEBOOKS = {
    "cryo/zirconium-anneal.ipynb": notebook(
        "# Zirconium annealing schedule",
        "We anneal the zirconium samples at 450 C for six hours before the cryo run.",
        "Confidential: supplier Halvorsen Metals, batch ZR-7781, grant WT-2291.",
    ),
    "cryo/phase-fit.ipynb": notebook(
        "# Phase diagram fit for zirconium hydride",
        "The hydride phase boundary is fitted with a cubic spline over 40 temperatures.",
    ),
}
LAB_B_NOTEBOOKS = {
    "genomics/variant-calls.ipynb": notebook(
        "# Variant calling on the sequencing run",
        "Reads are aligned with bwa and variants called per sample with a quality filter.",
    ),
}


def ingest(index: Path, root: Path, notebooks: dict[str, str]) -> list[str]:
    for relative, content in notebooks.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(content)
    kb = KnowledgeBase(index)
    try:
        kb.ingest_workspace(root)
        texts = [r.text for r in kb.search(MARK_A, 50)] if notebooks is LAB_A_NOTEBOOKS else []
    finally:
        kb.close()
    return texts


@pytest.fixture
def lab_a_passages(tmp_path, monkeypatch) -> list[str]:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    passages = ingest(default_index_path(LAB_A), tmp_path / "lab-a", LAB_A_NOTEBOOKS)
    assert passages, "lab A's index holds nothing"
    return passages


@pytest.fixture
def westtek_traits(tiny_env_traits, lab_a_passages, tmp_path):  # noqa: F811
    """Lab B's server, its workspace ingested into lab B's index (same data directory)."""
    workspace = Path(tiny_env_traits["workspace"])
    ingest(default_index_path(LAB_B), workspace, LAB_B_NOTEBOOKS)
    return tiny_env_traits | {"lab_id": LAB_B, "environment_id": "carol@vault-101"}


def queries(passages: list[str]) -> list[str]:
    found = {MARK_A, "zirconium hydride phase", "Halvorsen Metals", "ZR-7781", "annealing",
             "what did the other lab do", "supplier batch grant", "cryo run schedule"}  # fmt: skip
    for text in passages:
        words = text.split()
        found.update(" ".join(words[i : i + 6]) for i in range(0, len(words), 6))
    return sorted(q for q in found if q.strip())


async def test_lab_b_never_gets_lab_a_passages(jp_fetch, lab_a_passages):
    # lab B's search works: its own notebook is found
    response = await jp_fetch("westtek", "api", "kb", "search", params={"q": "variant calling"})
    own = json.loads(response.body)["results"]
    assert own and own[0]["source"] == "genomics/variant-calls.ipynb"
    asked = queries(lab_a_passages)
    assert len(asked) >= 10
    for query in asked:
        response = await jp_fetch("westtek", "api", "kb", "search", params={"q": query, "k": "50"})
        for result in json.loads(response.body)["results"]:
            assert result["source"] not in LAB_A_NOTEBOOKS, (query, result)
            assert MARK_A not in result["text"].lower(), (query, result)
    # the Knowledge Transfer agent answers from the same index: no lab A citation either
    for question in ("What do we know about zirconium annealing?", "Who supplied batch ZR-7781?"):
        response = await jp_fetch(
            "westtek", "api", "chat", method="POST",
            body=json.dumps({"agent": "transfer", "question": question}),
        )  # fmt: skip
        chunks = [json.loads(line) for line in response.body.decode().splitlines() if line]
        text = json.dumps(chunks)
        assert "zirconium-anneal" not in text and "Halvorsen" not in text, text[:2000]


@pytest.mark.parametrize(("one", "other"), [("vault/13", "vault_13"), ("lab a", "lab%20a")])
def test_lab_ids_that_differ_get_different_indexes(one, other, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_index_path(one) != default_index_path(other)
    for lab in (one, other):
        path = default_index_path(lab)
        assert path.parent == tmp_path / "westtek" / "kb", path  # never outside the kb folder
