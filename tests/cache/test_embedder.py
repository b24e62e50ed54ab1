"""The embedder backends: the ONNX export must agree with the sentence-transformers model."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import numpy as np
import pytest

from sidecache.cache.embedder import Embedder, load_embedder, resolve_model_path
from sidecache.cache.onnx_embedder import export_onnx, model_key
from sidecache.config import EmbedderConfig
from sidecache.errors import ConfigError

PROMPTS = [
    "How do I reset my password?",
    "What is the capital of France?",
    "hi",
    "Explain quantum entanglement to a five year old, with an example about socks and dice.",
    "Write a Python function that returns the nth Fibonacci number using memoization.",
    "Translate 'good morning' into German.",
    "Summarize the plot of Hamlet in three sentences.",
    "what's the weather like in Paris tomorrow",
    "Can you recommend a good book about the history of Rome?",
    "Why does my Docker container exit immediately with code 137?",
    "List three differences between TCP and UDP.",
    "Give me a recipe for vegan chocolate chip cookies without nuts.",
    "What does HTTP status 429 mean and how should a client react?",
    "Compose a haiku about autumn leaves falling on a quiet pond.",
    "Is it safe to eat raw cookie dough?",
    "Convert 72 degrees Fahrenheit to Celsius.",
    "Quelle est la meilleure façon d'apprendre le français rapidement ?",
    "SELECT name FROM users WHERE age > 30 ORDER BY name; -- what does this query return?",
    "My cat keeps scratching the sofa, what can I do about it?",
    "Describe the water cycle for a middle-school science class.",
]


def _check_rows(vecs: np.ndarray, n: int, dim: int) -> None:
    assert vecs.shape == (n, dim)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_backends_agree_with_sentence_transformers(
    embedder: Embedder, fp32_embedder: Embedder, torch_embedder: Embedder
) -> None:
    ref = torch_embedder.encode(PROMPTS)
    int8 = embedder.encode(PROMPTS)
    fp32 = fp32_embedder.encode(PROMPTS)
    for vecs in (ref, int8, fp32):
        _check_rows(vecs, len(PROMPTS), 384)
    fp32_cos = (fp32 * ref).sum(axis=1)
    int8_cos = (int8 * ref).sum(axis=1)
    assert fp32_cos.min() > 0.9999  # same weights, same pooling: the same vectors
    assert int8_cos.mean() >= 0.97, int8_cos
    assert int8_cos.min() >= 0.93, int8_cos


def test_paraphrase_scores_above_unrelated(embedder: Embedder, torch_embedder: Embedder) -> None:
    texts = [
        "How do I reset my password?",
        "How can I change my password, I forgot it?",
        "What is the best pizza topping?",
    ]
    for e in (embedder, torch_embedder):
        v = e.encode(texts)
        paraphrase, unrelated = float(v[0] @ v[1]), float(v[0] @ v[2])
        assert paraphrase > 0.7
        assert unrelated < 0.3
        assert paraphrase > unrelated + 0.4


def test_padding_and_truncation_do_not_change_vectors(
    embedder: Embedder, fp32_embedder: Embedder, torch_embedder: Embedder
) -> None:
    long_text = " ".join(["the quick brown fox jumps over the lazy dog"] * 60)  # > 256 tokens
    batch = ["hi", PROMPTS[3], long_text]
    alone = np.vstack([fp32_embedder.encode([t]) for t in batch])
    np.testing.assert_allclose(fp32_embedder.encode(batch), alone, atol=1e-5)
    # int8 quantises activations per tensor, over the whole batch: batch-mates move a vector a
    # little (measured: cosine 0.98-1.0 to the same text encoded alone).
    int8_alone = np.vstack([embedder.encode([t]) for t in batch])
    assert (embedder.encode(batch) * int8_alone).sum(axis=1).min() > 0.97
    ref_long = torch_embedder.encode([long_text])[0]
    assert float(alone[2] @ ref_long) > 0.9999  # both truncate at the model's 256 tokens


def test_mixed_lengths_run_in_groups_and_keep_their_order(fp32_embedder: Embedder) -> None:
    rng = np.random.default_rng(3)
    texts = [
        " ".join(["word"] * int(n)) + f" number {i}" for i, n in enumerate(rng.integers(1, 60, 24))
    ]
    alone = np.vstack([fp32_embedder.encode([t]) for t in texts])
    np.testing.assert_allclose(fp32_embedder.encode(texts), alone, atol=1e-5)


def test_length_groups_cover_every_index_once() -> None:
    from sidecache.cache.onnx_embedder import _MIN_GROUP, _length_groups

    lengths = [5, 40, 7, 6, 39, 8, 41, 5, 12, 6, 38, 7, 250, 9]
    groups = _length_groups(lengths)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert len(groups) > 1  # short and long prompts are not padded together
    for g in groups[:-1]:
        assert len(g) >= _MIN_GROUP
    spans = [(min(lengths[i] for i in g), max(lengths[i] for i in g)) for g in groups]
    assert spans == sorted(spans)
    assert _length_groups([]) == []
    assert _length_groups([3]) == [[0]]


def test_empty_input(embedder: Embedder) -> None:
    assert embedder.encode([]).shape == (0, 384)


def test_export_is_reused(onnx_dir: Path, embedder: Embedder) -> None:
    model = resolve_model_path(EmbedderConfig())
    path = export_onnx(model, onnx_dir, quantize=True)
    mtime = path.stat().st_mtime_ns
    t0 = time.perf_counter()
    assert export_onnx(model, onnx_dir, quantize=True) == path
    assert time.perf_counter() - t0 < 0.5
    assert path.stat().st_mtime_ns == mtime
    assert not list(onnx_dir.glob(".*.tmp"))
    assert model_key(model) in path.name


def test_a_different_model_gets_its_own_export_name(tmp_path: Path) -> None:
    model = resolve_model_path(EmbedderConfig())
    other = tmp_path / "other-model"
    other.mkdir()
    for f in model.iterdir():
        (other / f.name).symlink_to(f)
    assert model_key(other) != model_key(model)


def test_unknown_backend_is_a_config_error(tmp_path: Path) -> None:
    cfg = msgspec.structs.replace(EmbedderConfig(), backend="tensorflow")
    with pytest.raises(ConfigError, match="unknown"):
        load_embedder(cfg, tmp_path)


def test_missing_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_embedder(EmbedderConfig(model_path=str(tmp_path / "nope")), tmp_path)
