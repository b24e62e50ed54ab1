"""Any OpenAI-compatible upstream: OpenAI, Azure-style proxies, vLLM, Ollama, llama.cpp, Groq...

The request body goes out as the client sent it (unknown fields included) with only ``model``
replaced. Streams always ask for usage so the gateway can account for them; ``pipeline`` drops
the usage chunk again for a client that did not ask for it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from sidecache.config import ProviderConfig
from sidecache.errors import UpstreamError, UpstreamProtocolError, UpstreamTimeout
from sidecache.openai.sse import iter_events
from sidecache.providers.base import (
    CHAT_ENDPOINTS,
    EMBEDDINGS,
    describe,
    get_model_ids,
    post_json,
    status_error,
    upstream_errors,
)
from sidecache.providers.client import make_client


class OpenAICompatible:
    """Adapter for ``POST {base_url}/chat/completions`` and ``POST {base_url}/embeddings``."""

    endpoints = CHAT_ENDPOINTS | {EMBEDDINGS}

    def __init__(self, name: str, cfg: ProviderConfig) -> None:
        self.name = name
        self.label = describe(name, cfg.base_url)
        """How errors name this upstream: the provider and its host, never a key."""
        self.cfg = cfg
        self._url = cfg.base_url.rstrip("/") + "/chat/completions"
        self._embeddings_url = cfg.base_url.rstrip("/") + "/embeddings"
        self._headers = {"content-type": "application/json"}
        if cfg.api_key:
            self._headers["authorization"] = f"Bearer {cfg.api_key}"
        self._client = make_client(cfg)

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        payload = orjson.dumps({**body, "stream": False})
        data = await post_json(
            self._client,
            self._url,
            payload,
            self._headers,
            provider=self.label,
            total=self.cfg.timeouts.total,
        )
        if not isinstance(data, dict) or "choices" not in data:
            raise UpstreamProtocolError(f"{self.label}: upstream answer has no choices")
        return data

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        opts = dict(body.get("stream_options") or {})
        opts["include_usage"] = True
        payload = orjson.dumps({**body, "stream": True, "stream_options": opts})
        deadline = time.monotonic() + self.cfg.timeouts.total
        with upstream_errors(self.label):
            response = await self._client.send(
                "POST", self._url, content=payload, headers=self._headers, stream=True
            )
            try:
                if response.status_code >= 400:
                    raise status_error(self.label, response, await response.aread())
                done = False
                async for event in iter_events(response.aiter_lines()):
                    # After [DONE], read on to the end of the body: a connection closed with
                    # unread bytes cannot go back to the pool, and a new one costs a millisecond.
                    if done or event.data == "[DONE]":
                        done = True
                        continue
                    chunk = orjson.loads(event.data)
                    if not isinstance(chunk, dict):
                        raise UpstreamProtocolError(
                            f"{self.label}: upstream sent a non-object chunk"
                        )
                    if "error" in chunk:
                        err = chunk["error"]
                        msg = err.get("message") if isinstance(err, dict) else str(err)
                        raise UpstreamError(f"{self.label}: upstream stream error: {msg}")
                    yield chunk
                    if time.monotonic() > deadline:
                        raise UpstreamTimeout(f"{self.label}: upstream exceeded the total timeout")
            finally:
                await response.aclose()

    async def embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        data = await post_json(
            self._client,
            self._embeddings_url,
            orjson.dumps(body),
            self._headers,
            provider=self.label,
            total=self.cfg.timeouts.total,
        )
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise UpstreamProtocolError(f"{self.label}: upstream answer has no embeddings")
        return data

    async def models(self) -> list[str]:
        url = self.cfg.base_url.rstrip("/") + "/models"
        return await get_model_ids(self._client, url, self._headers, provider=self.label)

    async def aclose(self) -> None:
        await self._client.aclose()
