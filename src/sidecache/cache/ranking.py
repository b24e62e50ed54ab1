"""Which of several nearly equally similar cached prompts a semantic hit serves.

Cosine similarity ranks meaning, not wording. When a cache holds near-duplicates (the same
question asked twice with small edits, an answer stored under two phrasings), a new prompt often
lands within a hair of several of them, and which one wins is decided by noise in the embedding:
on GPTCache's own benchmark set, 32 of plain cosine's 39 wrong hits at cosine 0.90 have the right
entry in second place (16 of them are the very same text stored twice).

So candidates that passed the threshold (and the verifier) and are within :data:`NEAR_TIE` of
the best one count as tied on meaning, and the tie goes to the one whose *surface* is closest to
the new prompt: the Jaccard overlap of raw character 4-grams, case, punctuation and code quoting
kept, because identifiers, backticks and casing are what near-duplicate prompts differ in and
what the asker copied. Measured with ``benchmarks/vs_gptcache.py`` on ``gptcache_mock_data.json``
(verifier off, correct / wrong hits): at cosine 0.90 from 673 / 43 to 682 / 34, at 0.80 from
881 / 74 to 896 / 59, at 0.60 from 910 / 86 to 927 / 69. In an offline sweep, lower-cased 3-grams
or word overlap gained about half as much as raw 4-grams, 3- and 5-grams a little less.

Costs nothing in the common case of one candidate within the margin; otherwise a few sets of
4-grams (well under a millisecond for prompts of a few kilobytes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["NEAR_TIE", "choose", "surface_similarity"]

NEAR_TIE = 0.03
"""Cosine margin below the best accepted candidate within which candidates count as tied."""

_GRAM = 4


def _grams(text: str) -> set[str]:
    if len(text) <= _GRAM:
        return {text}
    return {text[i : i + _GRAM] for i in range(len(text) - _GRAM + 1)}


def surface_similarity(a: str, b: str) -> float:
    """Jaccard overlap of the character 4-grams of ``a`` and ``b``, as written (0.0 to 1.0)."""
    if a == b:
        return 1.0
    ga, gb = _grams(a), _grams(b)
    return len(ga & gb) / len(ga | gb)


def choose(similarities: Sequence[float], surface: Callable[[int], float]) -> int:
    """Index of the candidate to serve, from accepted candidates given best-cosine first.

    Those within :data:`NEAR_TIE` of the first are compared by ``surface(i)`` (for the gateway,
    :func:`surface_similarity` of the new prompt and candidate ``i``'s; the benchmarks pass
    precomputed values); the cosine breaks a tie of that too, so the first wins when nothing
    else differs. ``surface`` is only called when there is a tie to break.
    """
    if not similarities:
        raise ValueError("no candidates to choose from")
    floor = similarities[0] - NEAR_TIE
    tied = [i for i, s in enumerate(similarities) if s >= floor]
    if len(tied) == 1:
        return tied[0]
    return max(tied, key=lambda i: (surface(i), similarities[i]))
