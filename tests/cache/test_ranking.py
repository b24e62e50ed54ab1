"""Near ties between cached prompts go to the closest wording."""

from __future__ import annotations

import pytest

from sidecache.cache.ranking import NEAR_TIE, choose, surface_similarity


def test_surface_similarity_keeps_case_and_quoting() -> None:
    q = "Load a dataset with `AudioFolder` via `data_dir`."
    assert surface_similarity(q, q) == 1.0
    assert surface_similarity("abc", "xyz") == 0.0
    same_case = surface_similarity(q, "Load a dataset with `AudioFolder` using `data_dir`.")
    other_case = surface_similarity(q, "Load a dataset with audiofolder using data_dir.")
    assert 0.0 < other_case < same_case < 1.0
    assert surface_similarity("ab", "ab ") == 0.0  # shorter than a 4-gram: whole-text compare


def test_choose_breaks_only_near_ties() -> None:
    q = "How do I rename a column in pandas?"
    texts = ["How can one rename columns with pandas?", "How do I rename a column in pandas ?"]

    def surface(i: int) -> float:
        return surface_similarity(q, texts[i])

    # within the margin: the closer wording wins even with the lower cosine
    assert choose([0.95, 0.95 - NEAR_TIE / 2], surface) == 1
    # beyond it: cosine order stands, and the wording is never looked at
    assert choose([0.95, 0.95 - 2 * NEAR_TIE], lambda i: 1 / 0) == 0
    assert choose([0.5], lambda i: 1 / 0) == 0
    # equal wording: the better cosine
    assert choose([0.92, 0.91], lambda i: 0.5) == 0
    with pytest.raises(ValueError):
        choose([], surface)
