"""Anthropic Messages API presented as OpenAI Chat Completions.

Translation is pure functions over dicts (``to_messages_request``, ``from_message``,
``ChunkTranslator``) so it can be tested without a network; ``Anthropic`` only moves bytes. The
mappings the inbound Messages API shares (stop reasons, usage, images, tool use) are in
``anthropic_wire``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from sidecache.config import ProviderConfig
from sidecache.errors import BadRequest, UpstreamError, UpstreamProtocolError, UpstreamTimeout
from sidecache.openai.ids import new_id
from sidecache.openai.schemas import message_text
from sidecache.openai.sse import iter_events
from sidecache.providers.anthropic_wire import (
    STOP_REASONS,
    chat_usage,
    image_block,
    tool_calls_of,
    tool_use_blocks,
)
from sidecache.providers.base import (
    CHAT_ENDPOINTS,
    describe,
    get_model_ids,
    post_json,
    status_error,
    upstream_errors,
)
from sidecache.providers.client import make_client

DEFAULT_MAX_TOKENS = 4096


def _content_blocks(content: Any) -> str | list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return content or ""
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            blocks.append(image_block(part))
    return blocks


def to_messages_request(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI chat request -> Anthropic Messages request."""
    system: list[str] = []
    messages: list[dict[str, Any]] = []

    def push(role: str, blocks: str | list[dict[str, Any]]) -> None:
        if isinstance(blocks, str):
            blocks = [{"type": "text", "text": blocks}] if blocks else []
        if messages and messages[-1]["role"] == role:  # Anthropic wants alternating turns
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": list(blocks)})

    for m in body.get("messages") or ():
        role = m.get("role")
        if role in ("system", "developer"):
            system.append(message_text(m.get("content")))
        elif role == "user":
            push("user", _content_blocks(m.get("content")))
        elif role == "assistant":
            blocks = _content_blocks(m.get("content"))
            if isinstance(blocks, str):
                blocks = [{"type": "text", "text": blocks}] if blocks else []
            push("assistant", blocks + tool_use_blocks(m.get("tool_calls") or []))
        elif role in ("tool", "function"):
            push(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": m.get("tool_call_id"),
                        "content": message_text(m.get("content")),
                    }
                ],
            )
    out: dict[str, Any] = {
        "model": body["model"],
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens")
        or body.get("max_tokens")
        or DEFAULT_MAX_TOKENS,
    }
    if system:
        out["system"] = "\n\n".join(system)
    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    if body.get("tools"):
        out["tools"] = [
            {
                "name": t["function"]["name"],
                "description": t["function"].get("description", ""),
                "input_schema": t["function"].get("parameters") or {"type": "object"},
            }
            for t in body["tools"]
            if t.get("type") == "function"
        ]
    if body.get("stream"):
        out["stream"] = True
    return out


def from_message(msg: dict[str, Any]) -> dict[str, Any]:
    """Anthropic message -> OpenAI chat.completion."""
    text = "".join(b.get("text", "") for b in msg.get("content") or () if b.get("type") == "text")
    tool_calls = tool_calls_of(msg.get("content") or [])
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    else:
        message["content"] = text
    usage = msg.get("usage") or {}
    return {
        "id": msg.get("id") or new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": msg.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": STOP_REASONS.get(msg.get("stop_reason") or "", "stop"),
            }
        ],
        "usage": chat_usage(usage.get("input_tokens", 0), usage.get("output_tokens", 0)),
    }


class ChunkTranslator:
    """Anthropic stream events -> OpenAI chunks, one event at a time."""

    def __init__(self) -> None:
        self.id = new_id()
        self.model = ""
        self.created = int(time.time())
        self.input_tokens = 0
        self.output_tokens = 0
        self._tools: dict[int, int] = {}  # content block index -> tool call index
        self.done = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def feed(self, event: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        kind = data.get("type", event)
        if kind == "message_start":
            msg = data.get("message") or {}
            self.id = msg.get("id") or self.id
            self.model = msg.get("model", "")
            usage = msg.get("usage") or {}
            self.input_tokens = usage.get("input_tokens", 0)
            self.output_tokens = usage.get("output_tokens", 0)
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                idx = self._tools[data.get("index", 0)] = len(self._tools)
                call = {
                    "index": idx,
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": ""},
                }
                return [self._chunk({"tool_calls": [call]})]
            return []
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta":
                idx = self._tools.get(data.get("index", 0), 0)
                args = {"index": idx, "function": {"arguments": delta.get("partial_json", "")}}
                return [self._chunk({"tool_calls": [args]})]
            return []
        if kind == "message_delta":
            usage = data.get("usage") or {}
            self.output_tokens = usage.get("output_tokens", self.output_tokens)
            reason = (data.get("delta") or {}).get("stop_reason") or "end_turn"
            return [self._chunk({}, STOP_REASONS.get(reason, "stop"))]
        if kind == "message_stop":
            self.done = True
            return [
                {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": chat_usage(self.input_tokens, self.output_tokens),
                }
            ]
        if kind == "error":
            err = data.get("error") or {}
            raise UpstreamError(f"anthropic stream error: {err.get('message', err)}")
        return []  # ping, content_block_stop, unknown future events


class Anthropic:
    """Adapter for ``POST {base_url}/v1/messages``."""

    endpoints = CHAT_ENDPOINTS

    def __init__(self, name: str, cfg: ProviderConfig) -> None:
        self.name = name
        self.label = describe(name, cfg.base_url)
        """How errors name this upstream: the provider and its host, never a key."""
        self.cfg = cfg
        base = cfg.base_url.rstrip("/")
        self._url = base + ("/messages" if base.endswith("/v1") else "/v1/messages")
        self._headers = {
            "content-type": "application/json",
            "x-api-key": cfg.api_key,
            "anthropic-version": cfg.anthropic_version,
        }
        self._client = make_client(cfg)

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        payload = orjson.dumps(to_messages_request({**body, "stream": False}))
        data = await post_json(
            self._client,
            self._url,
            payload,
            self._headers,
            provider=self.label,
            total=self.cfg.timeouts.total,
        )
        if not isinstance(data, dict) or data.get("type") != "message":
            raise UpstreamProtocolError(f"{self.label}: upstream answer is not a message")
        return from_message(data)

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        payload = orjson.dumps(to_messages_request({**body, "stream": True}))
        deadline = time.monotonic() + self.cfg.timeouts.total
        translator = ChunkTranslator()
        with upstream_errors(self.label):
            response = await self._client.send(
                "POST", self._url, content=payload, headers=self._headers, stream=True
            )
            try:
                if response.status_code >= 400:
                    raise status_error(self.label, response, await response.aread())
                async for event in iter_events(response.aiter_lines()):
                    if translator.done:
                        continue  # read to the end so the connection is reused
                    data = orjson.loads(event.data)
                    if not isinstance(data, dict):
                        raise UpstreamProtocolError(
                            f"{self.label}: upstream sent a non-object event"
                        )
                    for chunk in translator.feed(event.event, data):
                        yield chunk
                    if time.monotonic() > deadline:
                        raise UpstreamTimeout(f"{self.label}: upstream exceeded the total timeout")
            finally:
                await response.aclose()
        if not translator.done:
            raise UpstreamProtocolError(f"{self.label}: upstream stream ended before message_stop")

    async def embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        raise BadRequest(f"{self.label}: Anthropic has no embeddings API", param="model")

    async def models(self) -> list[str]:
        url = self._url.removesuffix("/messages") + "/models"
        return await get_model_ids(self._client, url, self._headers, provider=self.label)

    async def aclose(self) -> None:
        await self._client.aclose()
