"""Converting between a streamed answer (chat.completion.chunk) and a whole one (chat.completion).

A miss is streamed to the client as it arrives while a ``ChunkAccumulator`` rebuilds the whole
answer beside it, so the cache stores one canonical form. A hit served to a streaming client is
cut back into chunks by ``replay_chunks`` so the client cannot tell it from a live stream.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from sidecache.openai.ids import new_id


class ChunkAccumulator:
    """Folds streamed chunks into a chat.completion; tells whether the stream finished cleanly."""

    __slots__ = ("_choices", "created", "id", "model", "system_fingerprint", "usage")

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.created = 0
        self.system_fingerprint: str | None = None
        self.usage: dict[str, Any] | None = None
        self._choices: dict[int, dict[str, Any]] = {}

    def add(self, chunk: dict[str, Any]) -> None:
        if not self.id:
            self.id = chunk.get("id") or ""
            self.model = chunk.get("model") or ""
            self.created = chunk.get("created") or int(time.time())
        if chunk.get("system_fingerprint"):
            self.system_fingerprint = chunk["system_fingerprint"]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for c in chunk.get("choices") or ():
            idx = c.get("index", 0)
            acc = self._choices.get(idx)
            if acc is None:
                acc = self._choices[idx] = {
                    "role": "assistant",
                    "content": [],
                    "tool_calls": {},
                    "finish_reason": None,
                    "refusal": [],
                }
            delta = c.get("delta") or {}
            if delta.get("role"):
                acc["role"] = delta["role"]
            if delta.get("content"):
                acc["content"].append(delta["content"])
            if delta.get("refusal"):
                acc["refusal"].append(delta["refusal"])
            for tc in delta.get("tool_calls") or ():
                slot = acc["tool_calls"].setdefault(
                    tc.get("index", 0),
                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                )
                if tc.get("id"):
                    slot["id"] = tc["id"]
                fn = tc.get("function") or {}
                if fn.get("name"):
                    slot["function"]["name"] += fn["name"]
                if fn.get("arguments"):
                    slot["function"]["arguments"] += fn["arguments"]
            if c.get("finish_reason"):
                acc["finish_reason"] = c["finish_reason"]

    @property
    def finished(self) -> bool:
        """Every choice seen has a finish_reason: the answer is whole and may be stored."""
        return bool(self._choices) and all(c["finish_reason"] for c in self._choices.values())

    @property
    def text(self) -> str:
        first = self._choices.get(0)
        return "".join(first["content"]) if first else ""

    def completion(self) -> dict[str, Any]:
        choices = []
        for idx in sorted(self._choices):
            acc = self._choices[idx]
            message: dict[str, Any] = {"role": acc["role"], "content": "".join(acc["content"])}
            if acc["tool_calls"]:
                message["tool_calls"] = [acc["tool_calls"][i] for i in sorted(acc["tool_calls"])]
                if not message["content"]:
                    message["content"] = None
            if acc["refusal"]:
                message["refusal"] = "".join(acc["refusal"])
            choices.append(
                {
                    "index": idx,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": acc["finish_reason"],
                }
            )
        out: dict[str, Any] = {
            "id": self.id or new_id(),
            "object": "chat.completion",
            "created": self.created or int(time.time()),
            "model": self.model,
            "choices": choices,
        }
        if self.system_fingerprint:
            out["system_fingerprint"] = self.system_fingerprint
        if self.usage:
            out["usage"] = self.usage
        return out


def _split(text: str, size: int) -> Iterator[str]:
    """Cut text into pieces of about ``size`` characters, on word boundaries where possible."""
    start, n = 0, len(text)
    while start < n:
        end = min(n, start + size)
        if end < n:
            space = text.rfind(" ", start + 1, end + 1)
            if space > start:
                end = space
        yield text[start:end]
        start = end


def replay_chunks(
    completion: dict[str, Any], *, include_usage: bool, chunk_chars: int
) -> Iterator[dict[str, Any]]:
    """The chunks a live stream of ``completion`` would have sent, in OpenAI's order."""
    base = {
        "id": completion["id"],
        "object": "chat.completion.chunk",
        "created": completion["created"],
        "model": completion.get("model", ""),
    }
    if completion.get("system_fingerprint"):
        base["system_fingerprint"] = completion["system_fingerprint"]
    extra: dict[str, Any] = {"usage": None} if include_usage else {}

    def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {**base, "choices": choices, **extra}

    for choice in completion.get("choices") or ():
        idx = choice.get("index", 0)
        msg = choice.get("message") or {}
        yield chunk(
            [{"index": idx, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
        )
        content = msg.get("content") or ""
        for piece in _split(content, chunk_chars):
            yield chunk([{"index": idx, "delta": {"content": piece}, "finish_reason": None}])
        if msg.get("tool_calls"):
            calls = [{"index": i, **tc} for i, tc in enumerate(msg["tool_calls"])]
            yield chunk([{"index": idx, "delta": {"tool_calls": calls}, "finish_reason": None}])
        yield chunk([{"index": idx, "delta": {}, "finish_reason": choice.get("finish_reason")}])
    if include_usage and completion.get("usage"):
        yield {**base, "choices": [], "usage": completion["usage"]}
