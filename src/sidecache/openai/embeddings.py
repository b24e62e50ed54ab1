"""OpenAI's Embeddings API (``POST /v1/embeddings``): the request Struct, the inputs of a
request, and vectors in and out of the wire's two encodings.

A vector is kept as little-endian float32 bytes, which is what ``encoding_format: "base64"``
carries (the ``openai`` SDK asks for it by default) and what OpenAI's models produce; a
``"float"`` answer is the same values as JSON numbers. So a vector served from the cache is the
one the upstream sent, in either encoding.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import numpy as np
from msgspec import Meta

from sidecache.errors import BadRequest
from sidecache.openai.decoding import convert
from sidecache.openai.schemas import Loose

__all__ = [
    "MAX_INPUTS",
    "EmbeddingsRequest",
    "Input",
    "decode_vector",
    "encode_vector",
    "inputs_of",
    "validate_embeddings",
]

MAX_INPUTS = 2048
"""OpenAI's limit on inputs in one request."""

Input = str | tuple[int, ...]
"""One input: a string, or a token array (kept as a tuple so it can key a dict)."""


class EmbeddingsRequest(Loose):
    model: Annotated[str, Meta(min_length=1)]
    input: str | list[Any]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, Meta(ge=1, le=65_536)] | None = None
    user: str | None = None


def validate_embeddings(body: object) -> EmbeddingsRequest:
    return convert(body, EmbeddingsRequest)


def _tokens(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value
    )


def inputs_of(req: EmbeddingsRequest) -> list[Input]:
    """The request's inputs in order: a string, a list of strings, a token array or a list of
    token arrays. Empty inputs are refused, as OpenAI refuses them."""
    raw = req.input
    if isinstance(raw, str):
        items: list[Any] = [raw]
    elif raw and _tokens(raw):
        items = [raw]
    else:
        items = raw
    if not items:
        raise BadRequest("`input` must not be empty", param="input")
    if len(items) > MAX_INPUTS:
        raise BadRequest(f"`input` holds {len(items)} items; at most {MAX_INPUTS}", param="input")
    out: list[Input] = []
    for i, item in enumerate(items):
        if isinstance(item, str) and item:
            out.append(item)
        elif item and _tokens(item):
            out.append(tuple(item))
        else:
            raise BadRequest(
                "each input must be a non-empty string or a non-empty array of token ids",
                param=f"input[{i}]",
            )
    return out


def wire_input(item: Input) -> str | list[int]:
    return item if isinstance(item, str) else list(item)


def decode_vector(value: Any) -> bytes:
    """An embedding as the upstream sent it (a list of numbers, or base64 float32) as float32
    bytes."""
    if isinstance(value, str):
        raw = base64.b64decode(value)
        if len(raw) % 4:
            raise ValueError("a base64 embedding is not a whole number of float32 values")
        return raw
    if isinstance(value, list):
        return np.asarray(value, dtype="<f4").tobytes()
    raise ValueError("an embedding must be a list of numbers or a base64 string")


def encode_vector(vector: bytes, encoding_format: str | None) -> str | list[float]:
    """float32 bytes as the client asked: base64, or a list of numbers (the default)."""
    if encoding_format == "base64":
        return base64.b64encode(vector).decode("ascii")
    values: list[float] = np.frombuffer(vector, dtype="<f4").tolist()
    return values
