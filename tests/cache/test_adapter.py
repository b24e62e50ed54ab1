"""The embedder adapter: merged into the real model's weights, reused, refused when it does not
fit; and entries embedded by another model never share a scope with this model's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sidecache.cache.adapter import Adapter, adapted_model
from sidecache.cache.bundled import manifest
from sidecache.cache.embedder import (
    load_embedder,
    resolve_adapter,
    resolve_model_path,
    vectors_id,
)
from sidecache.cache.policy import decide
from sidecache.config import CacheConfig, EmbedderConfig
from sidecache.errors import ConfigError

LAYERS = ("encoder.layer.0.attention.self.query", "encoder.layer.5.intermediate.dense")
SHAPES = {LAYERS[0]: (384, 384), LAYERS[1]: (1536, 384)}
TEXTS = ["How do I reset my password?", "What is the capital of France?"]


def write_adapter(path: Path, scale_b: float, rank: int = 4, shapes: dict | None = None) -> Path:
    rng = np.random.default_rng(5)
    arrays: dict[str, np.ndarray] = {}
    for layer, (out_dim, in_dim) in (shapes or SHAPES).items():
        arrays[f"{layer}.lora_A"] = rng.normal(0, 0.1, (rank, in_dim)).astype(np.float16)
        arrays[f"{layer}.lora_B"] = (scale_b * rng.normal(0, 1, (out_dim, rank))).astype(np.float16)
    meta = {"rank": rank, "alpha": 2 * rank, "base_model": "all-MiniLM-L6-v2"}
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def torch_cfg(adapter: str) -> EmbedderConfig:
    return EmbedderConfig(backend="torch", adapter=adapter)


def test_a_zero_adapter_changes_nothing_and_its_folder_is_reused(tmp_path: Path) -> None:
    adapter = write_adapter(tmp_path / "zero.npz", scale_b=0.0)
    base = load_embedder(torch_cfg("none"), tmp_path)
    tuned = load_embedder(torch_cfg(str(adapter)), tmp_path)
    np.testing.assert_allclose(tuned.encode(TEXTS), base.encode(TEXTS), atol=1e-6)
    folders = [f for f in (tmp_path / "onnx").iterdir() if f.is_dir()]
    assert len(folders) == 1 and "-adapted-" in folders[0].name
    assert json.loads((folders[0] / "ADAPTER.json").read_text())["rank"] == 4
    stamp = (folders[0] / "model.safetensors").stat().st_mtime_ns
    again = adapted_model(resolve_model_path(torch_cfg("none")), adapter, tmp_path / "onnx")
    assert again == folders[0]
    assert (again / "model.safetensors").stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert getattr(tuned, "space") != getattr(base, "space")  # noqa: B009


def test_an_adapter_moves_the_vectors(tmp_path: Path) -> None:
    adapter = write_adapter(tmp_path / "a.npz", scale_b=0.5)
    base = load_embedder(torch_cfg("none"), tmp_path).encode(TEXTS)
    tuned = load_embedder(torch_cfg(str(adapter)), tmp_path).encode(TEXTS)
    cos = (base * tuned).sum(axis=1)
    assert cos.max() < 0.9999
    np.testing.assert_allclose(np.linalg.norm(tuned, axis=1), 1.0, atol=1e-5)


def test_an_adapter_is_merged_and_exported_for_the_onnx_backend(tmp_path: Path) -> None:
    """With the torch extra, an adapter on the default backend builds its own int8 export (the
    shipped model cannot carry it); a zero adapter gives the bundled model's vectors back."""
    adapter = write_adapter(tmp_path / "zero.npz", scale_b=0.0)
    tuned = load_embedder(EmbedderConfig(adapter=str(adapter)), tmp_path)
    shipped = load_embedder(EmbedderConfig(adapter="none"), tmp_path)
    assert list((tmp_path / "onnx").glob("*-adapted-*-int8.onnx"))
    cos = (tuned.encode(TEXTS) * shipped.encode(TEXTS)).sum(axis=1)
    assert cos.min() > 0.98  # two int8 recipes of the same weights
    assert getattr(tuned, "space") != getattr(shipped, "space")  # noqa: B009


def test_merge_is_w_plus_scaled_b_a(tmp_path: Path) -> None:
    adapter = Adapter.load(write_adapter(tmp_path / "a.npz", scale_b=1.0))
    state = {f"{layer}.weight": np.ones(shape, dtype=np.float32) for layer, shape in SHAPES.items()}
    state["untouched.weight"] = np.zeros(3, dtype=np.float32)
    merged = adapter.merge(state)
    for layer in LAYERS:
        want = 1.0 + 2.0 * (adapter.mats[f"{layer}.lora_B"] @ adapter.mats[f"{layer}.lora_A"])
        np.testing.assert_allclose(merged[f"{layer}.weight"], want, rtol=1e-6)
    assert merged["untouched.weight"] is state["untouched.weight"]


def test_adapters_that_do_not_fit_are_config_errors(tmp_path: Path) -> None:
    model = resolve_model_path(torch_cfg("none"))
    wrong = write_adapter(tmp_path / "w.npz", 1.0, shapes={LAYERS[0]: (384, 512)})
    with pytest.raises(ConfigError, match="does not fit"):
        adapted_model(model, wrong, tmp_path / "models")
    absent = write_adapter(tmp_path / "x.npz", 1.0, shapes={"encoder.layer.9.output.dense": (4, 4)})
    with pytest.raises(ConfigError, match="does not fit"):
        adapted_model(model, absent, tmp_path / "models")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="cannot read the embedder adapter"):
        adapted_model(model, tmp_path / "junk.npz", tmp_path / "models")
    with pytest.raises(ConfigError, match="no adapter file"):
        resolve_adapter(torch_cfg(str(tmp_path / "missing.npz")))
    assert not any((tmp_path / "models").iterdir())  # nothing half-written is left behind


def test_auto_uses_the_shipped_adapter_with_the_bundled_model_only(tmp_path: Path) -> None:
    assert resolve_adapter(EmbedderConfig(adapter="none")) is None
    custom = EmbedderConfig(adapter="auto", model_path=str(tmp_path))
    assert resolve_adapter(custom) is None
    shipped = resolve_adapter(EmbedderConfig(adapter="auto"))
    assert shipped is None or shipped.name == "embedder_adapter.npz"


def test_the_embedding_space_is_part_of_the_scope() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}
    cfg = CacheConfig()

    def scope(space: str) -> tuple[str, str]:
        d = decide(
            body, tenant="t", alias="m", namespace=None, cache_control=None, cfg=cfg, space=space
        )
        return d.scope, d.key_hash

    assert scope("model-a") != scope("model-b")
    assert scope("model-a") == scope("model-a")
    assert scope("") != scope("model-a")


def test_vectors_id_names_the_model_and_the_adapter(tmp_path: Path) -> None:
    bundled = manifest().vectors
    assert vectors_id(EmbedderConfig(adapter="none")) == bundled
    one = write_adapter(tmp_path / "one.npz", 1.0)
    two = write_adapter(tmp_path / "two.npz", 2.0)
    with_one = vectors_id(EmbedderConfig(adapter=str(one)))
    assert with_one.startswith(f"{bundled}+adapter:")
    assert with_one != vectors_id(EmbedderConfig(adapter=str(two)))
    assert with_one == vectors_id(EmbedderConfig(adapter=str(one)))  # content, not path
    own = resolve_model_path(EmbedderConfig(adapter="none"))
    assert vectors_id(EmbedderConfig(model_path=str(own))) == f"model:{own.name}"
