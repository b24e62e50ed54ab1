"""Deterministic answers: ``"Answer to: " + <last user text>``, so that a cached answer
equals a fresh one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from support.fake_upstream.faults import DIRECTIVE

# ---------------------------------------------------------------------------------------------
# Answers.


def text_of(content: Any) -> str:
    """String content as is; a list of parts: the text parts joined with a space."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p["text"]
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        ]
        return " ".join(parts)
    return ""


def label_key(text: str) -> str:
    """How a prompt is looked up in a labelled-answers file: case and spaces do not count."""
    return " ".join(text.lower().split())


def load_labels(path: str) -> dict[str, str]:
    """A labelled-answers file: a JSON object ``{prompt: what the answer is about}``.

    With one, the upstream answers ``"Answer to: " + labels[prompt]`` for a listed prompt, so
    prompts with the same label (duplicates) get the same answer and the others different ones;
    unlisted prompts are answered as usual.
    """
    import json

    with open(path, encoding="utf-8") as fh:
        raw = json.load(fh)
    return {label_key(k): str(v) for k, v in raw.items()}


def word_count(text: str) -> int:
    return len(DIRECTIVE.sub(" ", text).split()) if "[[" in text else len(text.split())


@dataclass(slots=True)
class Answer:
    """The deterministic completion: its words, why it stopped, and the token counts."""

    words: list[str]
    finish: str  # "stop" | "length" | "stop_sequence"
    stop_sequence: str | None
    prompt_tokens: int

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def completion_tokens(self) -> int:
        return len(self.words)


def make_answer(
    last_user: str, prompt_tokens: int, max_tokens: int | None, stops: Iterable[str]
) -> Answer:
    """``"Answer to: " + text``, cut at the first stop sequence, then at ``max_tokens`` words."""
    text = " ".join(("Answer to: " + last_user).split())
    finish, matched = "stop", None
    best = len(text)
    for s in stops:
        if s:
            i = text.find(s)
            if 0 <= i < best:
                best, matched = i, s
    if matched is not None:
        text = text[:best]
        finish = "stop_sequence"
    words = text.split()
    if max_tokens is not None and 0 <= max_tokens < len(words):
        words = words[:max_tokens]
        finish, matched = "length", None
    return Answer(words, finish, matched, prompt_tokens)


def stops(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for s in value if isinstance(s, str)]
    return []
