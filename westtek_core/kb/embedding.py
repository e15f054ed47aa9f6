"""Text embeddings from a static model that ships inside its PyPI package, loaded offline.

WordLlama's ``l2_supercat`` (256 dimensions, a 16 MB weights file and its tokenizer inside
the ``wordllama`` wheel, ~45 MB installed with numpy, tokenizers and safetensors) gives one
vector per token. Its loader looks for the packaged tokenizer under the wrong directory name
and would then try Hugging Face, so the table and tokenizer are read here from the packaged
files directly: no network, ever.

A text's vector is the weighted mean of its tokens' vectors. Plain means (WordLlama's own
pooling) drown a passage's rare, telling tokens in the words every notebook uses; weighting
each token by how rare it is in the lab's own material (``frequency_weights``, the "smooth
inverse frequency" of Arora et al., ICLR 2017) keeps them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

MODEL = "l2_supercat"
DIMENSIONS = 256
MAX_TOKENS = 2048  # a text is embedded from its first 2,048 tokens
# SIF's a: a token as rare as 3 in a million keeps half its weight. bench/kb.py chose it
# with the BM25 share (index.py) on its first 120 questions and checked both on 40 more.
SMOOTHING = 3e-6

Vectors = npt.NDArray[np.float32]
TokenIds = npt.NDArray[np.int64]
Counts = npt.NDArray[np.int64]


def frequency_weights(counts: Counts) -> Vectors:
    """Each token's weight, ``a / (a + p)``, from its count ``p`` in the indexed material."""
    total = int(counts.sum())
    if total == 0:
        return np.ones(len(counts), dtype=np.float32)
    return (SMOOTHING / (SMOOTHING + counts / total)).astype(np.float32)


class StaticEmbedder:
    """Normalised text embeddings (cosine similarity is a dot product)."""

    dimensions = DIMENSIONS

    def __init__(self) -> None:
        import importlib.util

        from safetensors import safe_open
        from tokenizers import Tokenizer

        # only wordllama's packaged files are used: finding them costs no import (0.15 s)
        spec = importlib.util.find_spec("wordllama")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("wordllama is not installed: its packaged model is needed")
        package = Path(next(iter(spec.submodule_search_locations)))
        weights = package / "weights" / f"{MODEL}_{DIMENSIONS}.safetensors"
        tokenizer = package / "tokenizers" / f"{MODEL}_tokenizer_config.json"
        if not weights.exists() or not tokenizer.exists():
            raise RuntimeError(f"wordllama's packaged {MODEL} model is missing from {package}")
        with safe_open(str(weights), framework="np", device="cpu") as f:
            # kept as stored (half precision): a query converts its own few rows, not the
            # whole table (0.1 s of every cold `westtek kb search`)
            self._table: npt.NDArray[np.floating[Any]] = f.get_tensor("embedding.weight")
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.vocabulary = len(self._table)

    def tokens(self, texts: Sequence[str]) -> list[TokenIds]:
        """Each text's token ids (its first ``MAX_TOKENS``)."""
        encoded = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.int64) for e in encoded]

    def counts(self, tokens: Sequence[TokenIds]) -> Counts:
        """How often each vocabulary token occurs in ``tokens``."""
        if not tokens:
            return np.zeros(self.vocabulary, dtype=np.int64)
        return np.bincount(np.concatenate(tokens), minlength=self.vocabulary)

    def pool(self, tokens: Sequence[TokenIds], weights: Vectors | None = None) -> Vectors:
        """One unit-length row per token list: its tokens' vectors, weighted, summed.

        ``weights`` has one entry per vocabulary token (``frequency_weights``); without it,
        every token counts the same. A text of no token is the zero vector.
        """
        vectors = np.zeros((len(tokens), DIMENSIONS), dtype=np.float32)
        for row, ids in enumerate(tokens):
            if len(ids):  # a weights-by-vectors product per text: no padding, no copy of all
                vectors[row] = (
                    np.ones(len(ids), np.float32) if weights is None else weights[ids]
                ) @ self._table[ids].astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit: Vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        return unit

    def embed(self, texts: Sequence[str], weights: Vectors | None = None) -> Vectors:
        """One unit-length row per text (see ``pool``)."""
        return self.pool(self.tokens(texts), weights)


_shared: StaticEmbedder | None = None
_lock = threading.Lock()


def shared_embedder() -> StaticEmbedder:
    """The process's one embedder (loading takes ~0.5 s)."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = StaticEmbedder()
        return _shared
