"""Are two answers the same answer? The comparison behind shadow figures and audits.

Two signals, both already in the process: the cosine of the two answers' sentence embeddings
(the cache's own embedder), and the hit verifier's public contradiction checks run on the
answers instead of the prompts: a number, a negation or a named thing that one answer has and
the other contradicts. The answers agree when the cosine reaches the alias's ``audit_agree``
and none of those checks fires.

Embedding runs on the side lane's own worker thread (one, so side traffic never takes more than
one core from the requests), never on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from sidecache.cache.verifier import analyse, contradictions

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["ANSWER_CHECKS", "Agreement", "AnswerComparer"]

ANSWER_CHECKS = ("number", "negation", "entity")
"""The verifier's contradiction checks that also separate two answers (the issue's list: a
changed number, a flipped negation, another named thing)."""

Encode = Callable[[list[str]], "npt.NDArray[np.float32]"]


class Agreement(msgspec.Struct, frozen=True):
    """The verdict on two answers, with its reasons."""

    agree: bool
    cosine: float | None
    """None when no embedder is loaded (the cache is off): then only the checks decide."""
    contradictions: tuple[str, ...] = ()


class AnswerComparer:
    """Compares answers; ``encode`` is the cache's embedder (set once the cache is loaded)."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.encode: Encode | None = None

    def _compare(self, a: str, b: str, agree_at: float) -> Agreement:
        if a == b:
            return Agreement(True, 1.0 if self.encode is not None else None)
        found = tuple(v for v in contradictions(analyse(a), analyse(b)) if v in ANSWER_CHECKS)
        cosine = None
        if self.encode is not None and a.strip() and b.strip():
            va, vb = self.encode([a, b])
            cosine = float(np.dot(va, vb))
        elif self.encode is not None:
            cosine = 0.0  # one answer is empty and the other is not
        agree = not found and (cosine is None or cosine >= agree_at)
        return Agreement(agree, cosine, found)

    async def compare(self, a: str, b: str, agree_at: float) -> Agreement:
        """Compare two answer texts off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self._compare, a, b, agree_at)
