"""The static embedder: offline token vectors, pooled with weights for how rare a token is."""

from __future__ import annotations

import numpy as np
import pytest

from westtek_core.kb.embedding import SMOOTHING, frequency_weights, shared_embedder


@pytest.fixture(scope="module")
def embedder():
    return shared_embedder()


def test_a_token_weighs_less_the_more_often_the_lab_uses_it():
    counts = np.array([0, 1, 1_000, 1_000_000 - 1_001], dtype=np.int64)
    weights = frequency_weights(counts)
    assert weights[0] == 1.0 and weights[1] > weights[2] > weights[3]
    # a token exactly SMOOTHING of the material keeps half its weight
    half = np.array([3, 1_000_000 - 3], dtype=np.int64)
    assert SMOOTHING == pytest.approx(3e-6)
    assert frequency_weights(half)[0] == pytest.approx(0.5)


def test_with_nothing_indexed_every_token_counts_the_same(embedder):
    weights = frequency_weights(np.zeros(embedder.vocabulary, dtype=np.int64))
    text = ["Kernel density estimation of a bimodal sample"]
    assert np.allclose(embedder.embed(text, weights), embedder.embed(text), atol=1e-6)


def test_weighting_pulls_a_text_towards_its_rare_tokens(embedder):
    common = "the model of the data in the notebook " * 20
    texts = [common + "heteroskedasticity", common + "cointegration", common]
    counts = embedder.counts(embedder.tokens(texts))
    weighted = embedder.embed(texts, frequency_weights(counts))
    plain = embedder.embed(texts)
    # unweighted, the shared boilerplate makes all three near-identical; weighted, the two
    # texts that differ in one rare word are told apart
    assert float(plain[0] @ plain[1]) > 0.98
    assert float(weighted[0] @ weighted[1]) < float(plain[0] @ plain[1]) - 0.1
    query = embedder.embed(["heteroskedasticity"], frequency_weights(counts))[0]
    assert float(weighted[0] @ query) > float(weighted[1] @ query)


def test_pooling_in_batches_gives_each_text_its_own_vector(embedder):
    # enough long and empty texts to span several pooling batches
    texts = [f"passage {i} " + "spatial autocorrelation " * (i % 7) * 40 for i in range(150)]
    texts[3] = texts[77] = ""
    counts = embedder.counts(embedder.tokens(texts))
    weights = frequency_weights(counts)
    together = embedder.embed(texts, weights)
    alone = np.vstack([embedder.embed([t], weights) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)
    assert not together[3].any() and not together[77].any()
    norms = np.linalg.norm(np.delete(together, [3, 77], axis=0), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5)
