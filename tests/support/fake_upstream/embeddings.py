"""``POST /v1/embeddings`` (OpenAI kind): deterministic vectors, so a cached one equals a fresh one.

A vector is a function of the model name and the input alone: standard normal values seeded by
their SHA-256, ``FULL_DIMS`` of them, cut to ``dimensions`` when asked and scaled to unit length
(as OpenAI's ``text-embedding-3`` models do), sent as float32 numbers or base64 as asked. Usage
counts one token a word (a token array: its length). Directives in any string input apply to the
request as in chat (``[[status:503]]``, ``[[delay:MS]]``), and the server-wide control too.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response

from support.fake_upstream.answers import word_count
from support.fake_upstream.faults import Faults, parse_directives
from support.fake_upstream.state import UpstreamState, record

FULL_DIMS = 64


def vector(model: str, item: str | list[int], dimensions: int | None) -> np.ndarray:
    key = item if isinstance(item, str) else orjson.dumps(item).decode()
    seed = int.from_bytes(hashlib.sha256(f"{model}\0{key}".encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(FULL_DIMS)
    if dimensions is not None:
        v = v[:dimensions]
    return (v / np.linalg.norm(v)).astype("<f4")


def _error(status: int, message: str, retry_after: str | None = None) -> Response:
    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    }
    headers = {"retry-after": retry_after} if retry_after else None
    return Response(orjson.dumps(body), status, media_type="application/json", headers=headers)


def embeddings_endpoint(state: UpstreamState) -> Any:
    async def embeddings(request: Request) -> Response:
        raw = await request.body()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        record(state, request.scope, raw, body)
        state.stats.requests += 1
        if not isinstance(body, dict) or "model" not in body or "input" not in body:
            return _error(400, "Missing required parameter: 'model' or 'input'.")
        items = body["input"]
        if isinstance(items, str) or (items and isinstance(items[0], int)):
            items = [items]
        faults = Faults()
        for item in items:
            if isinstance(item, str) and "[[" in item:
                faults = parse_directives(item, state.name)[1]
                break
        state.take_control(faults)
        if faults.delay:
            await asyncio.sleep(faults.delay)
        if faults.status is not None:
            state.stats.errors_injected += 1
            return _error(
                faults.status, f"fake upstream {state.name}: injected status", faults.retry_after
            )
        dims = body.get("dimensions")
        model = str(body["model"])
        base64_out = body.get("encoding_format") == "base64"
        data = []
        tokens = 0
        for k, item in enumerate(items):
            v = vector(model, item, dims if isinstance(dims, int) else None)
            out: Any = base64.b64encode(v.tobytes()).decode() if base64_out else v.tolist()
            data.append({"object": "embedding", "index": k, "embedding": out})
            tokens += word_count(item) if isinstance(item, str) else len(item)
        state.stats.inputs_embedded += len(items)
        answer = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return Response(orjson.dumps(answer), media_type="application/json")

    return embeddings
