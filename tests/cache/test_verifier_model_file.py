"""The verifier package's public surface and its model file format.

The training script writes the shipped file only through ``sidecache.cache.verifier.model_file``;
these tests check that what it writes is what the gateway reads back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sidecache.cache.verifier as verifier_pkg
from sidecache.cache.verifier import FEATURE_NAMES, VETOES, Verifier, model_file
from sidecache.errors import ConfigError


def test_public_surface() -> None:
    assert sorted(verifier_pkg.__all__) == sorted(
        [
            "FEATURE_NAMES",
            "VETOES",
            "PromptAnalysis",
            "Verifier",
            "analyse",
            "contradictions",
            "pair_features",
        ]
    )
    for name in verifier_pkg.__all__:
        assert getattr(verifier_pkg, name) is not None


def test_shipped_file_is_package_data() -> None:
    """The model file sits next to the code that reads it (pyproject ships ``**/*.json``)."""
    here = Path(model_file.__file__).parent
    assert (here / model_file.SHIPPED_MODEL).is_file()
    assert model_file.read_model_bytes() == (here / model_file.SHIPPED_MODEL).read_bytes()


def test_arrays_round_trip() -> None:
    rng = np.random.default_rng(3)
    for a in (
        rng.normal(size=(3, 4)).astype(np.float16),
        rng.integers(-127, 127, size=(5, 2)).astype(np.int8),
        np.arange(7, dtype=np.int16),
    ):
        b = model_file.decode_array(model_file.encode_array(a))
        assert b.dtype == a.dtype and b.shape == a.shape
        np.testing.assert_array_equal(a, b)


def _stump(feature: int, threshold: float, lo: float, hi: float) -> dict[str, list[float]]:
    """A one-split tree in the node-list shape the training script exports."""
    return {
        "feature": [feature, 0, 0],
        "threshold": [threshold, 0.0, 0.0],
        "left": [1, 0, 0],
        "right": [2, 0, 0],
        "value": [0.0, lo, hi],
        "leaf": [0, 1, 1],
        "missing_left": [1, 0, 0],
    }


def test_written_model_is_read_back(tmp_path: Path) -> None:
    """A model built with the ``*_spec`` writers loads and scores as its trees say."""
    words = ["quick", "fast", "madrid"]
    vectors = np.array([[100, 0], [90, 10], [0, 127]], dtype=np.int8)
    col = FEATURE_NAMES.index("cosine")
    spec = {
        "version": model_file.FORMAT_VERSION,
        "features": list(FEATURE_NAMES),
        "vetoes": [v for v in VETOES if v != "entity"],
        "lexical": model_file.lexical_spec({"quick": 2.0}, 3.0, words, vectors),
        "projection": model_file.projection_spec(np.eye(384, dtype=np.float32)),
        "forest": model_file.forest_spec(
            0.0, [_stump(col, 0.8, -3.0, 3.0), _stump(col, 0.9, -1.0, 1.0)]
        ),
        "cutoff": 0.5,
    }
    path = tmp_path / "model.json"
    model_file.write_model(spec, path)
    ver = Verifier.load(str(path))
    assert ver.forest is not None and ver.forest.n_trees == 2
    assert ver.lexical.words == {"quick": 0, "fast": 1, "madrid": 2}
    assert ver.lexical.weight("quick") == 2.0 and ver.lexical.weight("other") == 3.0
    np.testing.assert_allclose(np.linalg.norm(ver.lexical.vectors, axis=1), 1.0, rtol=1e-6)
    assert ver.projection is not None and ver.projection.dtype == np.float32
    x = np.zeros((3, len(FEATURE_NAMES)))
    x[:, col] = [0.5, 0.85, 0.95]
    np.testing.assert_array_equal(ver.forest.predict_raw(x), [-4.0, 2.0, 4.0])
    np.testing.assert_array_equal(ver.forest.predict_raw_reference(x), [-4.0, 2.0, 4.0])
    a, b = "How do I sort a list?", "how to sort a list"
    assert ver.check(a, b, 0.95) and not ver.check(a, b, 0.5)


def test_lexical_spec_rejects_mismatched_rows() -> None:
    with pytest.raises(ValueError):
        model_file.lexical_spec({}, 1.0, ["a", "b"], np.zeros((3, 2), dtype=np.int8))


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        model_file.read_model_bytes(str(tmp_path / "missing.json"))
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ConfigError):
        Verifier.load(str(tmp_path / "list.json"))
