"""Two answers compared with the real embedder and the verifier's checks."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sidecache.cache.embedder import Embedder, load_embedder
from sidecache.config import EmbedderConfig
from sidecache.quality.compare import AnswerComparer

ONNX_DIR = Path(
    os.environ.get("SIDECACHE_TEST_ONNX_DIR") or Path.home() / ".cache" / "sidecache-test" / "onnx"
)


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    cfg = EmbedderConfig(backend="onnx", onnx_dir=str(ONNX_DIR), quantize=True)
    return load_embedder(cfg, tmp_path_factory.mktemp("data"))


def compare(embedder: Embedder | None, a: str, b: str, agree: float = 0.85):  # type: ignore[no-untyped-def]
    with ThreadPoolExecutor(1) as pool:
        comparer = AnswerComparer(pool)
        comparer.encode = embedder.encode if embedder is not None else None
        return asyncio.run(comparer.compare(a, b, agree))


def test_the_same_answer_reworded_agrees(embedder: Embedder) -> None:
    a = "Use the reverse() method: my_list.reverse() reverses the list in place."
    b = "Call my_list.reverse() to reverse the list in place, using the reverse() method."
    verdict = compare(embedder, a, b)
    assert verdict.agree and verdict.cosine is not None and verdict.cosine >= 0.85


def test_a_changed_number_negation_or_name_disagrees(embedder: Embedder) -> None:
    names = compare(embedder, "The capital of France is Paris.", "The capital of Spain is Madrid.")
    assert not names.agree and "entity" in names.contradictions
    base = "The meeting takes 30 minutes."
    number = compare(embedder, base, "The meeting takes 45 minutes.")
    assert not number.agree and "number" in number.contradictions
    negation = compare(embedder, "You can delete the file.", "You cannot delete the file.")
    assert not negation.agree and "negation" in negation.contradictions


def test_unrelated_answers_disagree_by_cosine(embedder: Embedder) -> None:
    verdict = compare(embedder, "Bake the bread for 40 minutes.", "Rust has no garbage collector.")
    assert not verdict.agree and verdict.cosine is not None and verdict.cosine < 0.5


def test_without_an_embedder_only_the_checks_decide() -> None:
    assert compare(None, "It is red.", "It is red.").agree
    verdict = compare(None, "It is red.", "It is blue.")
    assert verdict.agree and verdict.cosine is None
    assert not compare(None, "Wait 5 minutes.", "Wait 9 minutes.").agree
