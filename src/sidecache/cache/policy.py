"""Cache policy: may this request read or write the cache, and under which scope and key?

Pure functions over the OpenAI request body (a plain dict), so the rules are easy to test and the
HTTP layer stays out of the cache.

*Scope*: everything that must match exactly for a stored answer to be reusable: tenant, model
alias, namespace, every message except the last user turn's text (system prompt, earlier turns,
tool calls, anything after that turn), and every body field that can change the answer (tools,
response_format, sampling parameters, unknown fields too: when in doubt, a field is part of the
scope). Only ``NEUTRAL_FIELDS`` are left out.

*Key*: the text of the last user turn. Its normalised form hashed with the scope is the exact
layer's key; its embedding searched within the scope is the semantic layer's.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection
from typing import Any

import msgspec
import orjson

from sidecache.config import CacheConfig

__all__ = ["NEUTRAL_FIELDS", "Decision", "decide", "key_text_of", "normalise_key"]

NEUTRAL_FIELDS = frozenset(
    {
        "model",  # the alias goes into the scope instead
        "messages",  # handled message by message
        "stream",
        "stream_options",
        "user",
        "metadata",
        "store",
        "service_tier",
        "prompt_cache_key",
        "safety_identifier",
    }
)
"""Body fields that do not change the answer, so requests differing only there share a scope."""

_TEXT_PARTS = frozenset({"text", "input_text"})
_MEDIA_REASON = {
    "image_url": "image",
    "image": "image",
    "input_image": "image",
    "input_audio": "audio",
    "audio": "audio",
    "file": "file",
    "input_file": "file",
}
_TOOL_ROLES = frozenset({"tool", "function"})
_SPACES = re.compile(r"\s+")
_TRAILING = ".?!,;:\u2026\u3002\uff1f\uff01\uff0c\uff1b\uff1a "
"""Sentence-ending punctuation only: stripping every punctuation mark would make "explain C#"
and "explain C" the same exact key."""


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """What the cache may do with one request. ``reason`` says why it may not (empty if it may)."""

    read: bool
    write: bool
    reason: str = ""
    scope: str = ""
    key_text: str = ""
    key_hash: str = ""

    @property
    def bypass(self) -> bool:
        return not (self.read or self.write)


def _bypass(reason: str) -> Decision:
    return Decision(read=False, write=False, reason=reason)


def normalise_key(text: str) -> str:
    """NFKC, lower case, whitespace collapsed, trailing sentence punctuation dropped."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip().rstrip(_TRAILING)


def _text_of(content: Any) -> str | None:
    """The text of a message content: a string, or its text parts joined; None if not text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            p.get("text", "")
            for p in content
            if isinstance(p, dict) and p.get("type") in _TEXT_PARTS
        ]
        if texts and len(texts) == len(content):
            return "\n".join(str(t) for t in texts)
    return None


def key_text_of(message: dict[str, Any]) -> str:
    """The text parts of a user message (the semantic key)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") in _TEXT_PARTS
        )
    return ""


def _canonical_message(message: dict[str, Any], *, drop_text: bool = False) -> dict[str, Any]:
    """A message as it enters the scope: text-only content lists become plain strings (so
    ``"hi"`` and ``[{"type": "text", "text": "hi"}]`` share a scope); with ``drop_text`` the
    text is removed (it is the key) but any other part, such as an image, stays."""
    out = {k: v for k, v in message.items() if k != "content"}
    content = message.get("content")
    if drop_text:
        if isinstance(content, list):
            rest = [
                p for p in content if not (isinstance(p, dict) and p.get("type") in _TEXT_PARTS)
            ]
            if rest:
                out["content"] = rest
        return out
    text = _text_of(content)
    out["content"] = text if text is not None else content
    return out


def _media_reason(messages: list[Any]) -> str:
    for m in messages:
        if not isinstance(m, dict):
            continue
        if m.get("audio") is not None and m.get("role") == "assistant":
            return "audio"
        content = m.get("content")
        if isinstance(content, list):
            for p in content:
                if isinstance(p, dict) and p.get("type") not in _TEXT_PARTS:
                    return _MEDIA_REASON.get(str(p.get("type")), "media")
    return ""


def _directives(cache_control: str | None) -> set[str]:
    if not cache_control:
        return set()
    return {d.strip().split("=", 1)[0].lower() for d in cache_control.split(",") if d.strip()}


def decide(
    body: dict[str, Any],
    *,
    tenant: str,
    alias: str,
    namespace: str | None,
    cache_control: str | None,
    cfg: CacheConfig,
    space: str = "",
    regions: Collection[str] | None = None,
    variant: str = "",
) -> Decision:
    """Decide read/write, and compute the scope and key of a chat completion request.

    ``space`` names the embedding model the cache's vectors come from: it is part of the
    scope, so entries embedded by another model (a new adapter, another ``model_path``) are
    never compared with this model's vectors; they simply age out. ``regions`` (the regions a
    pinned request may be served from) and ``variant`` (its A/B variant) are part of the scope
    too: an answer made in one region set never crosses into another, and the variants of a
    split never answer for each other.
    """
    if not cfg.enabled:
        return _bypass("disabled")
    directives = _directives(cache_control)
    read = "no-cache" not in directives
    write = "no-store" not in directives
    if not (read or write):
        return _bypass("no-cache,no-store")
    n = body.get("n")
    if n is not None and n != 1:
        return _bypass("n>1")
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return _bypass("unsupported")
    if not cfg.cache_images and (reason := _media_reason(messages)):
        return _bypass(reason)
    if not cfg.cache_tool_results and any(m.get("role") in _TOOL_ROLES for m in messages):
        return _bypass("tool-result")
    last_user = next(
        (i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "user"), -1
    )
    if last_user < 0:
        return _bypass("no-user-message")

    key_text = key_text_of(messages[last_user])
    params = {
        k: v for k, v in body.items() if k not in NEUTRAL_FIELDS and k != "n" and v is not None
    }
    scope_doc = {
        "tenant": tenant,
        "alias": alias,
        "namespace": namespace or "",
        "before": [_canonical_message(m) for m in messages[:last_user]],
        "turn": _canonical_message(messages[last_user], drop_text=True),
        "after": [_canonical_message(m) for m in messages[last_user + 1 :]],
        "params": params,
    }
    if space:
        scope_doc["space"] = space
    if regions is not None:
        scope_doc["regions"] = sorted(regions)
    if variant:
        scope_doc["variant"] = variant
    try:
        canonical = orjson.dumps(scope_doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return _bypass("unsupported")
    scope = hashlib.sha256(canonical).hexdigest()
    key_hash = hashlib.sha256(f"{scope}\0{normalise_key(key_text)}".encode()).hexdigest()
    reason = "" if read and write else ("no-cache" if not read else "no-store")
    return Decision(
        read=read, write=write, reason=reason, scope=scope, key_text=key_text, key_hash=key_hash
    )
