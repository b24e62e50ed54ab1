"""The reference embedder: the sentence-transformers model run by torch on the CPU.

Slower than the ONNX models (see ``benchmarks/embedder_speed.py``) but it *is* the model the
ONNX backend imitates, so tests use it as the yardstick and it is the fallback when onnxruntime
is not wanted. Needs the torch extra (``pip install 'sidecache[torch]'``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sidecache.cache.embedder import require

if TYPE_CHECKING:
    import numpy.typing as npt

    from sidecache.config import EmbedderConfig


class TorchEmbedder:
    """``SentenceTransformer(path, device="cpu")`` with normalised output."""

    def __init__(self, model_path: Path, *, threads: int = 0) -> None:
        require("sentence_transformers", "sentence-transformers", "torch")
        import torch
        from sentence_transformers import SentenceTransformer

        if threads > 0:
            torch.set_num_threads(threads)
        self._model: Any = SentenceTransformer(str(model_path), device="cpu")
        self._model.eval()
        # sentence-transformers 5.x renamed get_sentence_embedding_dimension; accept both.
        get_dim = getattr(self._model, "get_embedding_dimension", None)
        dim: Any = (
            get_dim() if get_dim is not None else self._model.get_sentence_embedding_dimension()
        )
        self.dim: int = int(dim)
        self.name: str = f"torch:{model_path.name}"
        self.space: str = model_path.name
        # transformers' fast tokenizer re-applies its padding settings on every call, which
        # fails ("Already borrowed") when two batcher workers call at once: one call at a time.
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Encode in one forward pass per 64 texts; rows are unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._model.encode(
                texts,
                batch_size=64,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(out, dtype=np.float32)


def create(cfg: EmbedderConfig, model_path: Path, data_dir: Path) -> TorchEmbedder:
    """Registry factory (see ``embedder.BACKENDS``)."""
    del data_dir  # nothing to keep on disk
    return TorchEmbedder(model_path, threads=cfg.threads)
