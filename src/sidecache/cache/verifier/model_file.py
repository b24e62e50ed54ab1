"""The verifier's model file: one JSON document, arrays inside as base64 with dtype and shape.

``benchmarks/train_verifier.py`` writes it with the ``*_spec`` functions here and
:meth:`sidecache.cache.verifier.Verifier.from_spec` reads it back with the ``read_*`` ones, so
the format lives in one place. Top-level keys: ``version``, ``features`` (the feature order the
trees were trained on), ``vetoes`` (contradictions that refuse outright), ``lexical`` (rarity
weights and the int8 word-vector table), ``projection`` (float16 384 x 384), ``forest``,
``cutoff`` and ``meta`` (``vectors`` names the embedder the projection was trained for).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from sidecache.cache.verifier.features import EMPTY_LEXICAL, Lexical
from sidecache.cache.verifier.forest import NODE_FIELDS, Forest
from sidecache.errors import ConfigError

SHIPPED_MODEL = "verifier_model.json"
"""The model file shipped in this package (package data)."""
FORMAT_VERSION = 1


def encode_array(a: np.ndarray) -> dict[str, Any]:
    """A numpy array as JSON: dtype, shape and base64 bytes (little-endian)."""
    a = np.ascontiguousarray(a)
    return {
        "dtype": a.dtype.str,
        "shape": list(a.shape),
        "data": base64.b64encode(a.tobytes()).decode("ascii"),
    }


def decode_array(spec: dict[str, Any]) -> np.ndarray:
    """The array :func:`encode_array` wrote (a writable copy)."""
    raw = base64.b64decode(spec["data"])
    return np.frombuffer(raw, dtype=np.dtype(spec["dtype"])).reshape(spec["shape"]).copy()


def _decode_matrix(spec: dict[str, Any]) -> np.ndarray:
    """int8 word vectors with one scale -> unit-norm float32 rows."""
    q = decode_array(spec).astype(np.float32)
    norms = np.linalg.norm(q, axis=1, keepdims=True)
    return np.asarray(q / np.maximum(norms, 1e-6), dtype=np.float32)


# --- writing (the training script) ---------------------------------------------------------------


def forest_spec(baseline: float, trees: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pack per-tree node lists (feature, threshold, left, right, value, leaf, missing_left,
    and optionally depth) into the padded arrays :func:`read_forest` reads."""
    width = max(len(t["feature"]) for t in trees)
    cols: dict[str, np.ndarray] = {
        name: np.zeros((len(trees), width), dtype=dt) for name, dt in NODE_FIELDS
    }
    cols["flags"][:] = 1  # padding nodes are leaves with value 0
    depth = 0
    for i, t in enumerate(trees):
        n = len(t["feature"])
        cols["feature"][i, :n] = t["feature"]
        cols["threshold"][i, :n] = t["threshold"]
        cols["left"][i, :n] = t["left"]
        cols["right"][i, :n] = t["right"]
        cols["value"][i, :n] = t["value"]
        cols["flags"][i, :n] = np.asarray(t["leaf"], dtype=np.uint8) | (
            np.asarray(t["missing_left"], dtype=np.uint8) << 1
        )
        depth = max(depth, int(t.get("depth", n)))
    spec: dict[str, Any] = {"baseline": baseline, "max_depth": depth}
    spec.update({name: encode_array(a) for name, a in cols.items()})
    return spec


def projection_spec(w: np.ndarray) -> dict[str, Any]:
    """The sentence-vector projection, stored as float16 (half the size, same decisions)."""
    return encode_array(np.asarray(w).astype(np.float16))


def lexical_spec(
    idf: dict[str, float], default_idf: float, words: Sequence[str], vectors: np.ndarray
) -> dict[str, Any]:
    """Rarity weights and the word-vector table: one int8 row per word of ``words``.

    Rows are re-normalised on load, so the quantisation scale need not be stored.
    """
    if len(words) != len(vectors):
        raise ValueError(f"{len(words)} words but {len(vectors)} word vectors")
    return {
        "idf": idf,
        "default_idf": default_idf,
        "words": list(words),
        "vectors": encode_array(np.asarray(vectors, dtype=np.int8)),
    }


def write_model(spec: dict[str, Any], path: str | Path) -> None:
    """Write a model document (compact JSON)."""
    Path(path).write_bytes(json.dumps(spec, separators=(",", ":")).encode())


# --- reading (the gateway) -----------------------------------------------------------------------


def read_model_bytes(path: str | None = None) -> bytes:
    """The raw file; ``None`` or ``""`` means the one shipped in this package."""
    try:
        if path:
            return Path(path).read_bytes()
        return resources.files(__package__).joinpath(SHIPPED_MODEL).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read verifier model {path or SHIPPED_MODEL}: {exc}") from exc


def parse_model(data: bytes) -> dict[str, Any]:
    """The decoded JSON document (``orjson.JSONDecodeError`` when it is not JSON)."""
    spec = orjson.loads(data)
    if not isinstance(spec, dict):
        raise TypeError("a verifier model is a JSON object")
    return spec


def read_forest(spec: dict[str, Any]) -> Forest:
    """The trees of a ``forest`` section."""
    arrays = {name: decode_array(spec[name]) for name, _ in NODE_FIELDS}
    return Forest(
        baseline=float(spec["baseline"]),
        depth=int(spec["max_depth"]),
        **arrays,
    )


def read_projection(spec: dict[str, Any]) -> np.ndarray:
    """The projection matrix of a ``projection`` section, as float32."""
    return decode_array(spec).astype(np.float32)


def read_lexical(spec: dict[str, Any]) -> Lexical:
    """Rarity weights and unit-norm word vectors of a ``lexical`` section."""
    words = {w: i for i, w in enumerate(spec.get("words", []))}
    vectors = _decode_matrix(spec["vectors"]) if words else EMPTY_LEXICAL.vectors
    return Lexical(
        idf=dict(spec.get("idf", {})),
        default_idf=float(spec.get("default_idf", 1.0)),
        words=words,
        vectors=vectors,
    )
