"""Text embeddings from a static model that ships inside its PyPI package, loaded offline.

WordLlama's ``l2_supercat`` (256 dimensions, a 16 MB weights file and its tokenizer inside
the ``wordllama`` wheel, ~45 MB installed with numpy, tokenizers and safetensors) embeds
thousands of passages a second on one core. Its loader looks for the packaged tokenizer
under the wrong directory name and would then try Hugging Face, so the model is built
here from the packaged files directly: no network, ever.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

MODEL = "l2_supercat"
DIMENSIONS = 256

Vectors = npt.NDArray[np.float32]


class StaticEmbedder:
    """Normalised sentence embeddings (cosine similarity is a dot product)."""

    dimensions = DIMENSIONS

    def __init__(self) -> None:
        import wordllama
        from safetensors import safe_open
        from tokenizers import Tokenizer
        from wordllama.inference import WordLlamaInference

        package = Path(wordllama.__file__).parent
        weights = package / "weights" / f"{MODEL}_{DIMENSIONS}.safetensors"
        tokenizer = package / "tokenizers" / f"{MODEL}_tokenizer_config.json"
        if not weights.exists() or not tokenizer.exists():
            raise RuntimeError(f"wordllama's packaged {MODEL} model is missing from {package}")
        with safe_open(str(weights), framework="np", device="cpu") as f:
            table = f.get_tensor("embedding.weight")
        tokens = Tokenizer.from_file(str(tokenizer))
        # a batch is padded to its longest text: one huge chunk must not cost gigabytes
        tokens.enable_truncation(max_length=2048)
        self._model: Any = WordLlamaInference(table, tokens)

    def embed(self, texts: list[str]) -> Vectors:
        """One unit-length row per text."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        # a text of no known token has a zero vector, which normalising turns into NaNs
        with np.errstate(invalid="ignore", divide="ignore"):
            vectors = np.asarray(self._model.embed(texts, norm=True), dtype=np.float32)
        return np.nan_to_num(vectors, nan=0.0)


_shared: StaticEmbedder | None = None
_lock = threading.Lock()


def shared_embedder() -> StaticEmbedder:
    """The process's one embedder (loading takes ~0.5 s)."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = StaticEmbedder()
        return _shared
