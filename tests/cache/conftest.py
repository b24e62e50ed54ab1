"""Shared, real parts for the cache tests: the embedding models are loaded once per session.

``embedder`` is what the gateway serves by default: the int8 model shipped in the package. The
others need the torch extra (the suite's ``test`` extra installs it): the fp32 export, kept in a
stable directory, ``$SIDECACHE_TEST_ONNX_DIR`` or ``~/.cache/sidecache-test/onnx``, so only the
first run on a machine pays for it (a few seconds; the file name carries a hash of the model, so
a different model never reuses a stale export), and sentence-transformers itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sidecache.cache.embedder import Embedder, load_embedder
from sidecache.config import EmbedderConfig


def onnx_test_dir() -> Path:
    """Where the tests keep the exported ONNX model across runs."""
    default = Path.home() / ".cache" / "sidecache-test" / "onnx"
    return Path(os.environ.get("SIDECACHE_TEST_ONNX_DIR", default))


@pytest.fixture(scope="session")
def onnx_dir() -> Path:
    return onnx_test_dir()


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The production backend: the shipped int8 ONNX model (the default configuration)."""
    return load_embedder(EmbedderConfig(), tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def fp32_embedder(onnx_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The bundled weights exported to ONNX at start, not quantised (torch extra)."""
    cfg = EmbedderConfig(backend="onnx", onnx_dir=str(onnx_dir), quantize=False)
    return load_embedder(cfg, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def torch_embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The reference: sentence-transformers on torch."""
    return load_embedder(EmbedderConfig(backend="torch"), tmp_path_factory.mktemp("data"))
