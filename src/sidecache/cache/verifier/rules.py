"""Contradiction rules: what differs between two prompts so that one answer cannot serve both.

A number, unit or date that changed, a negation that flipped, an antonym that replaced its
opposite, the two ends of a direction swapped, a language or framework or other named thing
replaced. Which of these refuse a hit outright is part of the model file (``vetoes``); all of them
are also features of the learned score.
"""

from __future__ import annotations

from collections.abc import Iterable

from sidecache.cache.verifier.analysis import PromptAnalysis
from sidecache.cache.verifier.lexicon import (
    ADJECTIVE_ENDINGS,
    ANTONYMS,
    NEGATING_PREFIXES,
    PREFIX_NOT_OPPOSITE,
    edit_close,
    stem,
)

VETOES = (
    "number",
    "unit",
    "date",
    "negation",
    "antonym",
    "direction",
    "tech",
    "entity",
)
"""The contradiction checks, in the order :func:`contradictions` reports them."""


def unmatched(xs: Iterable[str], ys: frozenset[str]) -> list[str]:
    """The words of ``xs`` with no counterpart in ``ys``, by spelling or by a near miss."""
    return [x for x in xs if x not in ys and not any(edit_close(x, y) for y in ys)]


def contradictions(qa: PromptAnalysis, ca: PromptAnalysis) -> list[str]:
    """Names of the hard contradictions between two prompts (empty when none is seen)."""
    found: list[str] = []
    if qa.numbers != ca.numbers:
        if qa.numbers and ca.numbers:
            found.append("number")
        elif (qa.numbers or ca.numbers) not in (("1",), ("1st",)) and (qa.units or ca.units):
            found.append("number")  # "5 minutes" against "minutes": a quantity appeared
    elif qa.quantities != ca.quantities and qa.quantities and ca.quantities:
        found.append("number")  # the same numbers on other units: "5% for 3 years"
    ua, ub = qa.units - ca.units, ca.units - qa.units
    if ua and ub:
        found.append("unit")
    da, db = qa.dates - ca.dates, ca.dates - qa.dates
    if da and db:
        found.append("date")
    negation = (qa.negations % 2) != (ca.negations % 2) and not _same_negation(qa, ca)
    b_only = ca.polar - qa.polar
    opposed = [(w, x) for w in qa.polar - ca.polar for x in b_only if _opposed(w, x)]
    if opposed and all((w in qa.negated) != (x in ca.negated) for w, x in opposed):
        negation = False  # "not safe" / "unsafe", "don't include" / "exclude": the same ask
        opposed = []
    if negation:
        found.append("negation")
    if opposed:
        found.append("antonym")
    if _direction_swapped(qa, ca):
        found.append("direction")
    ta, tb = qa.tech - ca.tech, ca.tech - qa.tech
    if ta and tb and not any(edit_close(x, y) for x in ta for y in tb):
        found.append("tech")
    ea = unmatched(qa.entities - ca.entities - qa.tech, ca.entities | ca.content)
    eb = unmatched(ca.entities - qa.entities - ca.tech, qa.entities | qa.content)
    if ea and eb:
        found.append("entity")
    return found


_ARTICLES = frozenset({"the", "a", "an"})


def _same_negation(qa: PromptAnalysis, ca: PromptAnalysis) -> bool:
    """Both sides negate the same words, and neither negates a word the other asserts: then a
    different count of negations is wording ("non-hashable" said twice), not a flip ("is it
    *not normal* ... not to talk" against "is it normal ... not to talk")."""
    if not (qa.negated & ca.negated):
        return False
    return not ((qa.negated - ca.negated) & ca.content or (ca.negated - qa.negated) & qa.content)


def _opposed(w: str, x: str) -> bool:
    """``w`` is the opposite of ``x``: listed (enable/disable, turn on/switch off) or by a
    negating prefix (unblock/block, irrational/rational)."""
    opp = ANTONYMS.get(w)
    return bool(opp and x in opp) or _prefixed(w, x) or _prefixed(x, w)


_NOT_OPPOSITE = frozenset(stem(w) for w in PREFIX_NOT_OPPOSITE)
_ADJECTIVE_ENDINGS = tuple({*ADJECTIVE_ENDINGS, *(stem("x" + e)[1:] for e in ADJECTIVE_ENDINGS)})


def _prefixed(neg: str, base: str) -> bool:
    if len(base) < 4 or not neg.endswith(base) or neg in _NOT_OPPOSITE:
        return False
    prefix = neg[: -len(base)]
    if prefix not in NEGATING_PREFIXES:
        return False
    return prefix in ("un", "non", "dis") or base.endswith(_ADJECTIVE_ENDINGS)


def _direction_swapped(qa: PromptAnalysis, ca: PromptAnalysis) -> bool:
    """Something before a direction word on one side sits after it on the other, and back.

    "from London to New York" / "from New York to London", "Python slower than C++" /
    "C++ slower than Python", "port 80 to 8080" / "port 8080 to 80"; and, with no direction
    word, the two ends of a verb swapped: "the landlord pays the tenant" / "the tenant pays the
    landlord" (same words, no "and"/"vs" that would make the order free).
    """
    if "far" in qa.tokens and "far" in ca.tokens:
        return False  # "how far is A from B" asks the same both ways
    # the k-th occurrence of a cue against the k-th on the other side; in short prompts, any
    # against any (a reworded prompt adds or drops a "to"), which in long texts finds chance
    # crossings
    short = len(qa.stems) <= 16 and len(ca.stems) <= 16
    for cue in {c for c, _, _ in qa.cues}:
        occ_a = [(b, a) for c, b, a in qa.cues if c == cue]
        occ_b = [(b, a) for c, b, a in ca.cues if c == cue]
        if short:
            candidates = [(x, y) for x in occ_a for y in occ_b]
        elif len(occ_a) == len(occ_b):
            candidates = list(zip(occ_a, occ_b, strict=True))
        else:
            continue
        for (before_a, after_a), (before_b, after_b) in candidates:
            if ((before_a & after_b) - before_b) and ((after_a & before_b) - before_a):
                return True
    if qa.symmetric or ca.symmetric or qa.content != ca.content or qa.stems == ca.stems:
        return False
    if qa.passive or ca.passive:
        return False  # "no alternative is mentioned" / "the document mentions no alternative"
    if not (_ARTICLES & set(qa.tokens) and _ARTICLES & set(ca.tokens)):
        return False  # keyword-style queries ("python image resize") reorder freely
    sa, sb = qa.stems, ca.stems
    if len(sa) > 16 or len(sb) > 16:
        return False
    for i, pivot in enumerate(sa):
        if pivot not in sb:
            continue
        j = sb.index(pivot)
        a_before, a_after = set(sa[:i]), set(sa[i + 1 :])
        b_before, b_after = set(sb[:j]), set(sb[j + 1 :])
        if (
            a_before
            and b_before
            and a_before <= b_after
            and b_before <= a_after
            and not (a_before & b_before)
        ):
            return True
    return False
