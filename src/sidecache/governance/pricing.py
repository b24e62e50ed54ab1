"""Prices per model and cheap token estimates.

Prices are USD per million input/output tokens, keyed by upstream model name. A bundled table
of public list prices is the base; ``[pricing]`` in the config overrides or extends it. Names
match exactly, else by the longest table name that is a ``-``-separated prefix, so dated
snapshots (``gpt-4o-mini-2024-07-18``, ``claude-sonnet-4-20250514``) find their family. An
unknown model costs 0.0 and is remembered in ``unknown`` so the operator can add a price.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
import orjson

from sidecache.config import Price

log = logging.getLogger("sidecache.pricing")

# Public list prices, USD per million tokens (input, output). Kept deliberately short: the
# operator's config is the place for anything else.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    # OpenAI
    "gpt-5": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.0),
    "gpt-4o-2024-05-13": (5.0, 15.0),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.0, 30.0),
    "gpt-4": (30.0, 60.0),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.0, 60.0),
    "o1-mini": (1.10, 4.40),
    "o3": (2.0, 8.0),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    "text-embedding-ada-002": (0.10, 0.0),
    # Anthropic
    "claude-opus-4": (15.0, 75.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-3-5-haiku": (0.80, 4.0),
    "claude-3-opus": (15.0, 75.0),
    "claude-3-haiku": (0.25, 1.25),
}

_MEMO_MAX = 4096


class Pricing:
    """Looks up prices and turns token counts into dollars."""

    def __init__(self, overrides: Mapping[str, Price] | None = None) -> None:
        table = {name: Price(input=i, output=o) for name, (i, o) in DEFAULT_PRICES.items()}
        for name, price in (overrides or {}).items():
            table[name.lower()] = price
        self._table = table
        self._memo: dict[str, Price | None] = {}
        self.unknown: set[str] = set()
        """Model names that had no price (their cost was reported as 0.0)."""

    def price(self, model: str) -> Price | None:
        """The price for ``model``, or ``None`` if neither an exact nor a prefix match exists."""
        try:
            return self._memo[model]
        except KeyError:
            pass
        found = self._match(model.lower())
        if found is None and "/" in model:  # "openai/gpt-4o", "models/..."
            found = self._match(model.rsplit("/", 1)[1].lower())
        if len(self._memo) < _MEMO_MAX:
            self._memo[model] = found
        return found

    def _match(self, name: str) -> Price | None:
        exact = self._table.get(name)
        if exact is not None:
            return exact
        best: str | None = None
        for candidate in self._table:
            if (
                name.startswith(candidate)
                and name[len(candidate) : len(candidate) + 1] in ("-", ":", "@")
                and (best is None or len(candidate) > len(best))
            ):
                best = candidate
        return self._table[best] if best is not None else None

    def is_known(self, model: str) -> bool:
        return self.price(model) is not None

    def cost(
        self,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cached_prompt_tokens: int = 0,
    ) -> float:
        """USD for one call; 0.0 (and ``model`` added to ``unknown``) without a price."""
        p = self.price(model)
        if p is None:
            if model not in self.unknown:
                self.unknown.add(model)
                log.warning("no price for model %r: its cost is counted as 0", model)
            return 0.0
        cached = min(max(cached_prompt_tokens, 0), prompt_tokens)
        cached_rate = p.cached_input if p.cached_input is not None else p.input
        return (
            (prompt_tokens - cached) * p.input + cached * cached_rate + completion_tokens * p.output
        ) / 1_000_000

    def expected_cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD a call is expected to cost, ``None`` when ``model`` has no price (routing by
        price must not take an unknown price for a free one)."""
        if self.price(model) is None:
            return None
        return self.cost(model, prompt_tokens, completion_tokens)


def estimate_tokens(text: str) -> int:
    """A cheap token estimate for BPE tokenisers (cl100k/o200k-like).

    English averages about four characters or three quarters of a word per token; averaging the
    two estimates is steadier across prose and code than either alone. Characters outside ASCII
    (CJK, emoji, accented text) usually cost about a token each, so they are counted apart.
    """
    if not text:
        return 0
    ascii_text = text.encode("ascii", "ignore")
    non_ascii = len(text) - len(ascii_text)
    words = len(ascii_text.split())
    by_chars = len(ascii_text) / 4.0
    by_words = words * 4.0 / 3.0
    return max(1, round((by_chars + by_words) / 2.0 + non_ascii * 0.8))


_IMAGE_TOKENS = 765  # OpenAI's figure for a 1024x1024 image at high detail
_PER_MESSAGE = 4
_REPLY_PRIMING = 3


def _field(obj: Any, name: str) -> Any:
    """Read a field from a JSON dict or a msgspec Struct alike."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _content_tokens(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return estimate_tokens(content)
    total = 0
    if isinstance(content, Iterable):
        for part in content:
            kind = _field(part, "type")
            if kind == "text":
                total += estimate_tokens(_field(part, "text") or "")
            elif kind in ("image_url", "input_image", "image"):
                total += _IMAGE_TOKENS
            else:
                total += estimate_tokens(str(_field(part, "text") or ""))
    return total


def estimate_prompt_tokens(messages: Iterable[Any], tools: Iterable[Any] | None = None) -> int:
    """Estimated prompt tokens of an OpenAI chat request (dict or Struct messages).

    Counts message content (strings and text parts; images at a fixed cost), names, tool call
    arguments and, if given, the tool definitions, plus the per-message framing tokens.
    """
    total = _REPLY_PRIMING
    for message in messages:
        total += _PER_MESSAGE + _content_tokens(_field(message, "content"))
        name = _field(message, "name")
        if isinstance(name, str):
            total += estimate_tokens(name)
        for call in _field(message, "tool_calls") or ():
            fn = _field(call, "function")
            if fn is not None:
                total += estimate_tokens(str(_field(fn, "name") or ""))
                total += estimate_tokens(str(_field(fn, "arguments") or ""))
    for tool in tools or ():
        raw = tool if isinstance(tool, Mapping) else msgspec.to_builtins(tool)
        total += estimate_tokens(orjson.dumps(raw).decode())
    return total


class CompletionEstimates:
    """How many completion tokens to hold budget for when a request does not say.

    A request's own ``max_completion_tokens`` or ``max_tokens`` is its ceiling. Without one,
    the estimate is the largest completion seen among the last ``window`` answers of that model
    alias (answers of one alias tend to be alike in length, and the largest errs towards
    refusing rather than overspending), and before any answer was seen, ``default``.
    """

    def __init__(self, default: int, window: int = 64) -> None:
        self.default = default
        self.window = window
        self._seen: dict[str, deque[int]] = {}

    def estimate(self, alias: str, body: Mapping[str, Any]) -> int:
        for name in ("max_completion_tokens", "max_tokens"):
            value = body.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        seen = self._seen.get(alias)
        return max(seen) if seen else self.default

    def observe(self, alias: str, completion_tokens: int) -> None:
        """Learn from a finished answer's real completion size."""
        if completion_tokens <= 0:
            return
        seen = self._seen.get(alias)
        if seen is None:
            if len(self._seen) >= _MEMO_MAX:  # aliases are configured: this bound never binds
                return
            seen = self._seen[alias] = deque(maxlen=self.window)
        seen.append(completion_tokens)
