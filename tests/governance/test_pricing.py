from __future__ import annotations

import msgspec
import pytest

from sidecache.config import Price
from sidecache.governance.pricing import (
    DEFAULT_PRICES,
    Pricing,
    estimate_prompt_tokens,
    estimate_tokens,
)


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("gpt-4.1", "gpt-4.1"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("o3-2025-04-16", "o3"),
        ("o4-mini", "o4-mini"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-opus-4-20250514", "claude-opus-4"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("GPT-4o-Mini", "gpt-4o-mini"),
    ],
)
def test_family_matching(model: str, family: str) -> None:
    p = Pricing().price(model)
    assert p is not None
    assert (p.input, p.output) == DEFAULT_PRICES[family]


def test_prefix_needs_a_separator() -> None:
    pricing = Pricing()
    assert pricing.price("gpt-4omega") is None
    assert pricing.price("o30") is None
    assert pricing.price("llama-3.1-8b") is None


def test_cost() -> None:
    pricing = Pricing()
    # gpt-4o-mini: 0.15 in, 0.60 out per million
    assert pricing.cost("gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)
    assert pricing.cost("gpt-4o-mini", 2000, 1000) == pytest.approx(0.0003 + 0.0006)
    assert pricing.cost("claude-sonnet-4-20250514", 1000, 1000) == pytest.approx(0.018)


def test_unknown_model_is_free_and_flagged() -> None:
    pricing = Pricing()
    assert pricing.cost("my-local-llama", 1000, 1000) == 0.0
    assert pricing.unknown == {"my-local-llama"}
    assert not pricing.is_known("my-local-llama")
    assert pricing.is_known("gpt-4o")


def test_config_overrides_and_extends() -> None:
    pricing = Pricing(
        {
            "gpt-4o": Price(input=1.0, output=2.0),
            "llama-3.1-8b": Price(input=0.05, output=0.08),
            "gpt-4o-mini": Price(input=0.15, output=0.60, cached_input=0.075),
        }
    )
    assert pricing.cost("gpt-4o-2024-08-06", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert pricing.cost("llama-3.1-8b-instant", 1_000_000, 0) == pytest.approx(0.05)
    # half the prompt came from the provider's prompt cache, at the cached rate
    assert pricing.cost("gpt-4o-mini", 1_000_000, 0, cached_prompt_tokens=500_000) == (
        pytest.approx(0.075 + 0.0375)
    )
    # the default table still answers for other names
    assert pricing.is_known("claude-3-haiku-20240307")


def test_estimate_tokens_is_in_the_right_range() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("hi") == 1
    prose = (
        "The quick brown fox jumps over the lazy dog. Caching the answers of a language model "
        "saves money when the same question comes back, phrased the same way or a little "
        "differently."
    )
    # a BPE tokenizer gives about 37 tokens for this sentence
    assert 30 <= estimate_tokens(prose) <= 46
    code = "def f(x: int) -> int:\n    return x * 2 + 1  # double and add one\n"
    assert 15 <= estimate_tokens(code) <= 30
    cjk = "日本語のテキストはトークンが多い"
    assert estimate_tokens(cjk) >= len(cjk) // 2
    long = "word " * 1000
    assert 900 <= estimate_tokens(long) <= 1400


class TextPart(msgspec.Struct):
    type: str
    text: str


class Msg(msgspec.Struct):
    role: str
    content: str | list[TextPart] | None


def test_estimate_prompt_tokens_dicts_and_structs() -> None:
    text = "Tell me about caching in three sentences please."
    dicts = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": [{"type": "text", "text": text}]},
    ]
    structs = [
        Msg(role="system", content="You are helpful."),
        Msg(role="user", content=[TextPart(type="text", text=text)]),
    ]
    a = estimate_prompt_tokens(dicts)
    assert a == estimate_prompt_tokens(structs)
    assert a == 3 + 4 + estimate_tokens("You are helpful.") + 4 + estimate_tokens(text)
    with_image = [
        *dicts,
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]},
    ]
    assert estimate_prompt_tokens(with_image) >= a + 700
    with_tools = estimate_prompt_tokens(
        dicts,
        tools=[
            {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
        ],
    )
    assert with_tools > a
    calls = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"function": {"name": "lookup", "arguments": '{"q": "cache"}'}}],
        }
    ]
    assert estimate_prompt_tokens(calls) > 3 + 4
