"""Pair features: the numbers the learned score sees for one (query, cached prompt) pair.

Word, stem and character overlap weighted by rarity, unmatched content words and how well the
distilled word vectors explain them, question-word and first-word agreement, length ratios, the
contradiction flags and the projected cosine of the sentence vectors. The order is
:data:`FEATURE_NAMES`; a model file trained on another order is refused at load.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

import numpy as np

from sidecache.cache.verifier.analysis import PromptAnalysis
from sidecache.cache.verifier.lexicon import DEICTIC, FILLER, PERSONS, STOP, edit_close
from sidecache.cache.verifier.rules import VETOES, contradictions, unmatched

FEATURE_NAMES = (
    "cosine",
    "jaccard_stems",
    "overlap_min",
    "unmatched_min",
    "unmatched_max",
    "unmatched_idf_min",
    "unmatched_idf_max",
    "idf_overlap",
    "char3_jaccard",
    "len_ratio_chars",
    "len_ratio_stems",
    "n_stems_min",
    "n_stems_max",
    "same_first",
    "qwords_equal",
    "qwords_disjoint",
    "num_mismatch",
    "num_one_side",
    "neg_diff",
    "filler_only_diff",
    "vec_unmatched_min_sim",
    "vec_unmatched_mean_sim",
    "vec_unexplained_a",
    "vec_unexplained_b",
    "vec_diff_cos",
    "order_inversions",
    "token_seq_ratio",
    "deictic_any",
    "deictic_both",
    "person_diff",
    "same_last",
    "raw_unmatched_max",
    "proj_cosine",
    "edit_spans",
    *(f"veto_{v}" for v in VETOES),
)


def _person(tokens: Sequence[str]) -> tuple[bool, ...]:
    ts = set(tokens)
    return tuple(bool(ts & p) for p in PERSONS)


@dataclass(frozen=True, slots=True)
class Lexical:
    """Rarity weights and distilled word vectors learned at training time (may be empty)."""

    idf: dict[str, float]
    default_idf: float
    words: dict[str, int]
    vectors: np.ndarray  # (n_words, dim) float32, rows unit-normalised

    def weight(self, stem: str) -> float:
        return self.idf.get(stem, self.default_idf)

    def vec(self, stem: str) -> np.ndarray | None:
        i = self.words.get(stem)
        return None if i is None else self.vectors[i]


EMPTY_LEXICAL = Lexical({}, 1.0, {}, np.zeros((0, 1), dtype=np.float32))


def _inversions(a: Sequence[str], b: Sequence[str]) -> int:
    pos = {w: i for i, w in enumerate(b)}
    seq = [pos[w] for w in dict.fromkeys(a) if w in pos]
    return sum(1 for i in range(len(seq)) for j in range(i + 1, len(seq)) if seq[i] > seq[j])


def _edit_spans(a: Sequence[str], b: Sequence[str]) -> int:
    """In how many places the content words differ: a minimal edit ("chicken" -> "chickpeas")
    differs in one, a prompt reworded by someone else in several."""
    ops = SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    return sum(1 for op, *_ in ops if op != "equal")


def pair_features(
    qa: PromptAnalysis,
    ca: PromptAnalysis,
    similarity: float,
    lex: Lexical = EMPTY_LEXICAL,
    vetoes: Sequence[str] | None = None,
    proj_cosine: float = math.nan,
) -> np.ndarray:
    """The feature vector for one pair, in :data:`FEATURE_NAMES` order (symmetric in a, b).

    ``proj_cosine`` is the cosine of the two sentence vectors after the learned projection
    (NaN when the caller has no vectors; the trees were trained to cope with that).
    """
    if vetoes is None:
        vetoes = contradictions(qa, ca)
    B = ca.content
    # spell A's words the way B does where they are a typo or abbreviation apart (pyhton/python)
    fix = {x: y for x in qa.content - B for y in B - qa.content if edit_close(x, y)}
    A = frozenset(fix.get(x, x) for x in qa.content)
    inter = A & B
    union = A | B
    a_un = unmatched(A - B, B)
    b_un = unmatched(B - A, A)
    w = lex.weight
    idf_a = sum(w(x) for x in a_un)
    idf_b = sum(w(x) for x in b_un)
    idf_inter = sum(w(x) for x in inter)
    idf_union = idf_inter + sum(w(x) for x in (A ^ B))
    nq, nc = len(qa.stems), len(ca.stems)
    # distilled word vectors: how well is each unmatched word explained by the other side?
    sims: list[float] = []
    unexplained = [0.0, 0.0]
    diff_cos = 0.0
    if lex.words and (a_un or b_un):
        diffs = []
        for side, (xs, other) in enumerate(((a_un, B), (b_un, A))):
            ov = [v for v in (lex.vec(y) for y in other) if v is not None]
            acc = np.zeros(lex.vectors.shape[1], dtype=np.float32)
            for x in xs:
                v = lex.vec(x)
                if v is None:
                    unexplained[side] += w(x)
                    continue
                acc += w(x) * v
                s = float(max(float(v @ o) for o in ov)) if ov else 0.0
                sims.append(s)
                unexplained[side] += w(x) * (1.0 - s)
            diffs.append(acc)
        na, nb = float(np.linalg.norm(diffs[0])), float(np.linalg.norm(diffs[1]))
        if na > 0 and nb > 0:
            diff_cos = float(diffs[0] @ diffs[1]) / (na * nb)
    filler_a = {t for t in qa.tokens if t not in ca.tokens}
    filler_b = {t for t in ca.tokens if t not in qa.tokens}
    filler_only = float(
        not a_un and not b_un and all(t in FILLER or t in STOP for t in filler_a | filler_b)
    )
    f = [
        similarity,
        len(inter) / len(union) if union else 1.0,
        len(inter) / min(len(A), len(B)) if A and B else float(A == B),
        float(min(len(a_un), len(b_un))),
        float(max(len(a_un), len(b_un))),
        min(idf_a, idf_b),
        max(idf_a, idf_b),
        idf_inter / idf_union if idf_union else 1.0,
        len(qa.chars & ca.chars) / len(qa.chars | ca.chars) if qa.chars or ca.chars else 1.0,
        min(qa.n_chars, ca.n_chars) / max(qa.n_chars, ca.n_chars, 1),
        min(nq, nc) / max(nq, nc, 1),
        float(min(nq, nc)),
        float(max(nq, nc)),
        float(qa.first == ca.first),
        float(qa.qwords == ca.qwords),
        float(bool(qa.qwords) and bool(ca.qwords) and not (qa.qwords & ca.qwords)),
        float(bool(qa.numbers) and bool(ca.numbers) and qa.numbers != ca.numbers),
        float(bool(qa.numbers) != bool(ca.numbers)),
        float((qa.negations % 2) != (ca.negations % 2)),
        filler_only,
        min(sims) if sims else 1.0,
        sum(sims) / len(sims) if sims else 1.0,
        min(unexplained),
        max(unexplained),
        diff_cos,
        float(_inversions(qa.stems, ca.stems)),
        SequenceMatcher(None, qa.tokens, ca.tokens, autojunk=False).ratio(),
        float(bool(DEICTIC & set(qa.tokens)) or bool(DEICTIC & set(ca.tokens))),
        float(bool(DEICTIC & set(qa.tokens)) and bool(DEICTIC & set(ca.tokens))),
        float(_person(qa.tokens) != _person(ca.tokens)),
        float(
            bool(qa.stems)
            and bool(ca.stems)
            and fix.get(qa.stems[-1], qa.stems[-1]) == ca.stems[-1]
        ),
        float(max(len(set(qa.tokens) - set(ca.tokens)), len(set(ca.tokens) - set(qa.tokens)))),
        proj_cosine,
        float(_edit_spans([fix.get(x, x) for x in qa.stems], list(ca.stems))),
        *(float(v in vetoes) for v in VETOES),
    ]
    return np.asarray(f, dtype=np.float64)
