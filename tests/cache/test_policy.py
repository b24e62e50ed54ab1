"""Cache policy: what may be read or written, and which requests share a scope."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sidecache.cache.policy import Decision, decide, normalise_key
from sidecache.config import CacheConfig

CFG = CacheConfig()


def body(last: str = "How do I reset my password?", **extra: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "model": "gpt",
        "messages": [
            {"role": "system", "content": "You are a helpful support agent."},
            {"role": "user", "content": "Hi, I have a problem with my account."},
            {"role": "assistant", "content": "Sure, what is the problem?"},
            {"role": "user", "content": last},
        ],
        "temperature": 0.2,
    }
    b.update(extra)
    return b


def run(b: dict[str, Any], cfg: CacheConfig = CFG, **kw: Any) -> Decision:
    args: dict[str, Any] = {"tenant": "acme", "alias": "gpt", "namespace": None}
    args.update(kw)
    return decide(b, cache_control=args.pop("cache_control", None), cfg=cfg, **args)


def test_plain_request_is_cacheable() -> None:
    d = run(body())
    assert d.read and d.write and d.reason == ""
    assert d.key_text == "How do I reset my password?"
    assert len(d.scope) == 64 and len(d.key_hash) == 64


def test_paraphrase_of_last_turn_keeps_scope_changes_key() -> None:
    a, b = run(body()), run(body("How can I change my password?"))
    assert a.scope == b.scope
    assert a.key_hash != b.key_hash


def test_normalised_last_turn_gives_the_same_key() -> None:
    a = run(body("How do I reset my password?"))
    b = run(body("  how do I   RESET my password ?! "))
    assert a.key_hash == b.key_hash
    assert normalise_key("Ｈｅｌｌｏ\u3000World…") == "hello world"
    assert normalise_key("explain C#") != normalise_key("explain C")


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["messages"][0].update(content="You are a pirate."),  # system prompt
        lambda b: b["messages"][1].update(content="Hi, I have a billing question."),  # earlier
        lambda b: b["messages"][2].update(content="Okay."),  # earlier assistant turn
        lambda b: b["messages"].insert(0, {"role": "developer", "content": "Be brief."}),
        lambda b: b.update(temperature=0.9),
        lambda b: b.update(max_tokens=10),
        lambda b: b.update(seed=7),
        lambda b: b.update(response_format={"type": "json_object"}),
        lambda b: b.update(tools=[{"type": "function", "function": {"name": "f"}}]),
        lambda b: b.update(tool_choice="none"),
        lambda b: b.update(some_future_param=True),  # unknown fields count
        lambda b: b["messages"][3].update(name="bob"),
    ],
)
def test_changes_that_change_the_scope(change: Any) -> None:
    b = body()
    change(b)
    assert run(b).scope != run(body()).scope


@pytest.mark.parametrize("kw", [{"tenant": "other"}, {"alias": "claude"}, {"namespace": "docs"}])
def test_tenant_alias_namespace_change_the_scope(kw: dict[str, Any]) -> None:
    assert run(body(), **kw).scope != run(body()).scope


@pytest.mark.parametrize(
    "extra",
    [
        {"stream": True, "stream_options": {"include_usage": True}},
        {"user": "u-42", "metadata": {"trace": "x"}, "store": True},
        {"n": 1},
        {"top_p": None},
        {"model": "gpt-4o-2024"},  # the alias is what counts
    ],
)
def test_fields_that_do_not_change_the_answer(extra: dict[str, Any]) -> None:
    assert run(body(**extra)).scope == run(body()).scope


def test_text_parts_and_strings_share_a_scope() -> None:
    b = body()
    b["messages"][1]["content"] = [
        {"type": "text", "text": "Hi, I have a problem with my account."}
    ]
    b["messages"][3]["content"] = [
        {"type": "text", "text": "How do I reset"},
        {"type": "text", "text": "my password?"},
    ]
    d = run(b)
    assert d.scope == run(body()).scope
    assert d.key_text == "How do I reset\nmy password?"


@pytest.mark.parametrize(
    ("part", "reason"),
    [
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}, "image"),
        ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}, "audio"),
        ({"type": "file", "file": {"file_id": "f1"}}, "file"),
    ],
)
def test_media_is_not_cached_unless_configured(part: dict[str, Any], reason: str) -> None:
    b = body()
    b["messages"][3]["content"] = [{"type": "text", "text": "What is this?"}, part]
    d = run(b)
    assert d.bypass and d.reason == reason
    allowed = run(b, CacheConfig(cache_images=True))
    assert allowed.read and allowed.write and allowed.key_text == "What is this?"
    other = copy.deepcopy(b)
    other["messages"][3]["content"][1] = {"type": "image_url", "image_url": {"url": "x"}}
    assert run(other, CacheConfig(cache_images=True)).scope != allowed.scope  # media in scope


def test_tool_results_are_not_cached_unless_configured() -> None:
    b = body()
    b["messages"] += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    d = run(b)
    assert d.bypass and d.reason == "tool-result"
    allowed = run(b, CacheConfig(cache_tool_results=True))
    assert allowed.read and allowed.write
    b2 = copy.deepcopy(b)
    b2["messages"][-1]["content"] = "43"  # a different tool result after the last user turn
    assert run(b2, CacheConfig(cache_tool_results=True)).scope != allowed.scope


def test_n_greater_than_one_bypasses() -> None:
    d = run(body(n=3))
    assert d.bypass and d.reason == "n>1"


def test_no_user_message_bypasses() -> None:
    d = run({"model": "gpt", "messages": [{"role": "system", "content": "x"}]})
    assert d.bypass and d.reason == "no-user-message"
    assert run({"model": "gpt"}).reason == "unsupported"


def test_disabled() -> None:
    assert run(body(), CacheConfig(enabled=False)).reason == "disabled"


@pytest.mark.parametrize(
    ("header", "read", "write", "reason"),
    [
        ("no-cache", False, True, "no-cache"),
        ("No-Store", True, False, "no-store"),
        ("no-cache, no-store", False, False, "no-cache,no-store"),
        ("max-age=0", True, True, ""),
    ],
)
def test_cache_control(header: str, read: bool, write: bool, reason: str) -> None:
    d = run(body(), cache_control=header)
    assert (d.read, d.write, d.reason) == (read, write, reason)
    if read or write:
        assert d.key_hash == run(body()).key_hash
