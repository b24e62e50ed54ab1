"""The embedding model shipped inside the package: all-MiniLM-L6-v2, int8, ready for onnxruntime.

Why: exporting the sentence-transformers model at first start needed torch at run time (a
multi-GB install) and kept a fresh gateway busy for half a minute before its port opened; the
dynamic int8 quantisation it used also made a text's vector depend on its batch-mates. The
folder ``sidecache/cache/model/`` holds the finished artefact instead, built once by
``scripts/build_embedder.py`` (which needs the torch extra) and loaded with onnxruntime,
``tokenizers`` and numpy only:

- ``model.onnx``: the transformer with statically quantised int8 weights and activations (fixed
  activation scales, so a row's vector does not depend on the rows beside it);
- ``tokenizer.json``, ``sentence_bert_config.json`` (truncation) and ``1_Pooling/config.json``
  (mean pooling), read exactly as for a sentence-transformers folder;
- ``manifest.json``: where it came from (the sha256 of the source ``model.safetensors``), the
  sha256 of every file, the quantisation recipe and the build's check against torch;
- ``LICENSE``: the model's Apache-2.0 notice.

Nothing here is imported or read until an embedder is loaded.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import msgspec

from sidecache.errors import ConfigError

__all__ = ["MODEL_FILE", "FileEntry", "Manifest", "bundled_dir", "manifest"]

MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"


class FileEntry(msgspec.Struct, frozen=True):
    """One shipped file: its digest and size, so a build or a test can check it."""

    sha256: str
    bytes: int


class Manifest(msgspec.Struct, frozen=True):
    """The part of ``manifest.json`` the gateway reads; the rest documents the build.

    Unknown fields are accepted (unlike in the configuration): the build script records more
    than the runtime needs, and an older gateway must still read a newer manifest.
    """

    vectors: str
    """Names the vectors this model makes (``sidecache.cache.embedder.vectors_id``)."""
    dim: int
    files: dict[str, FileEntry] = {}


_decode_manifest = msgspec.json.Decoder(Manifest)


def bundled_dir() -> Path:
    """The folder of the shipped model (inside the installed package)."""
    return Path(str(resources.files("sidecache.cache").joinpath("model")))


@functools.cache
def manifest() -> Manifest:
    """The shipped model's manifest; a ``ConfigError`` when the package was built without it."""
    path = bundled_dir() / MANIFEST_FILE
    try:
        return _decode_manifest.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError) as exc:
        raise ConfigError(
            f"the bundled embedding model is missing or damaged ({path}: {exc}); reinstall "
            "sidecache, or rebuild it with scripts/build_embedder.py"
        ) from exc
