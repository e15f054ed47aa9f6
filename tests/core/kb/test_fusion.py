"""How the hybrid index blends BM25 and cosine scores (``westtek_core.kb.index.fuse``)."""

from __future__ import annotations

from westtek_core.kb.index import fuse

COSINES = {1: 0.10, 2: 0.90, 3: 0.50, 4: 0.20}


def test_a_lone_bm25_match_outranks_what_only_the_embeddings_find():
    # a rare word only one passage holds: BM25 finds that one alone
    ranked = fuse([(1, 21.6)], [(2, 0.9), (3, 0.5)], COSINES.__getitem__, 0.9)
    assert [c for c, _ in ranked] == [1, 2, 3]


def test_the_embeddings_reorder_close_bm25_scores():
    # BM25 barely prefers 4 over 3; the embeddings find 3 much closer to the question
    ranked = fuse([(4, 10.0), (3, 9.9), (1, 2.0)], [(2, 0.9)], COSINES.__getitem__, 0.9)
    assert [c for c, _ in ranked][:2] == [3, 4]
    assert ranked[0][1] > ranked[1][1] > ranked[-1][1]


def test_without_bm25_matches_the_cosine_decides():
    ranked = fuse([], [(2, 0.9), (3, 0.5), (4, 0.2)], COSINES.__getitem__, 0.9)
    assert [c for c, _ in ranked] == [2, 3, 4]
    assert fuse([], [], COSINES.__getitem__, 0.9) == []
