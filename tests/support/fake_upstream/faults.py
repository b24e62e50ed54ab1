"""Misbehaviour on request: directives inside a prompt, and the server-wide control."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

DIRECTIVE = re.compile(
    r"\[\[(status|delay|chunk_delay|hang|cut|malformed|error_event|fail_on|slow_on)"
    r"((?::[^\]]*)?)\]\]"
)


class Cut(Exception):
    """Raised after a partial response so uvicorn drops the connection mid-body."""


# ---------------------------------------------------------------------------------------------
# Faults: per-request directives and the server-wide control.


@dataclass(slots=True)
class Faults:
    """What to do wrong for one request; directives and the server control both fill it."""

    status: int | None = None
    retry_after: str | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    hang: bool = False
    cut: int | None = None
    malformed: bool = False
    error_event: bool = False


def _fmt_seconds(value: float | str) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


def _status_args(args: list[str], faults: Faults) -> None:
    """``STATUS[:retry_after=X]`` (also used by ``fail_on:NAME:...``)."""
    faults.status = 500
    for arg in args:
        if arg.startswith("retry_after="):
            faults.retry_after = _fmt_seconds(arg.partition("=")[2])
        elif arg.strip().isdigit():
            faults.status = int(arg)


def parse_directives(text: str, name: str) -> tuple[str, Faults]:
    """Strip ``[[...]]`` directives from ``text``; return the clean text and the faults asked."""
    faults = Faults()
    if "[[" not in text:
        return text, faults
    for m in DIRECTIVE.finditer(text):
        kind = m.group(1)
        args = m.group(2)[1:].split(":") if m.group(2) else []
        if kind == "status":
            _status_args(args, faults)
        elif kind == "delay" and args:
            faults.delay += float(args[0]) / 1000
        elif kind == "chunk_delay" and args:
            faults.chunk_delay = float(args[0]) / 1000
        elif kind == "hang":
            faults.hang = True
        elif kind == "cut":
            faults.cut = int(args[0]) if args and args[0] else 0
        elif kind == "malformed":
            faults.malformed = True
        elif kind == "error_event":
            faults.error_event = True
        elif kind == "fail_on" and args and args[0] == name:
            _status_args(args[1:], faults)
        elif kind == "slow_on" and len(args) >= 2 and args[0] == name:
            faults.delay += float(args[1]) / 1000
    return DIRECTIVE.sub(" ", text), faults


@dataclass(slots=True)
class Control:
    """Server-wide misbehaviour set by ``POST /_control``; ``count`` limits how many requests.

    ``fail_rate`` (0..1) makes only that share of requests fail, at random (seeded, so a run
    repeats), with ``fail_status`` (default 500).
    """

    fail_status: int | None = None
    retry_after: float | None = None
    hang: bool = False
    delay_ms: float = 0.0
    count: int | None = None
    fail_rate: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(20240601))

    @property
    def active(self) -> bool:
        return self.fail_status is not None or self.hang or self.delay_ms > 0 or self.fail_rate > 0

    def apply(self, faults: Faults) -> None:
        faults.hang = faults.hang or self.hang
        faults.delay += self.delay_ms / 1000
        failing = self.fail_status is not None
        if self.fail_rate > 0:
            failing = self.rng.random() < self.fail_rate
        if failing and faults.status is None:
            faults.status = self.fail_status or 500
            if self.retry_after is not None:
                faults.retry_after = _fmt_seconds(self.retry_after)
