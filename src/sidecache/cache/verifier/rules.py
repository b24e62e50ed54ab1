"""Contradiction rules: what differs between two prompts so that one answer cannot serve both.

A number, unit or date that changed, a negation that flipped, an antonym that replaced its
opposite, the two ends of a direction swapped, a language or framework or other named thing
replaced. Which of these refuse a hit outright is part of the model file (``vetoes``); all of them
are also features of the learned score.
"""

from __future__ import annotations

from collections.abc import Iterable

from sidecache.cache.verifier.analysis import PromptAnalysis
from sidecache.cache.verifier.lexicon import ANTONYMS

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


def edit_close(a: str, b: str) -> bool:
    """True for a likely typo or abbreviation of the same word (pyhton/python, dict/dictionary)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if min(la, lb) >= 3 and (a.startswith(b) or b.startswith(a)):
        return True
    if abs(la - lb) > 2 or min(la, lb) < 4:
        return False
    if sorted(a) == sorted(b):
        return True  # transposition
    # one edit away
    if la == lb:
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    s, t = (a, b) if la < lb else (b, a)
    i = 0
    while i < len(s) and s[i] == t[i]:
        i += 1
    return s[i:] == t[i + 1 :] or s[i:] == t[i + 2 :]


def unmatched(xs: Iterable[str], ys: frozenset[str]) -> list[str]:
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
    if (qa.negations % 2) != (ca.negations % 2):
        found.append("negation")
    a_only = qa.polar - ca.polar
    if a_only:
        b_only = ca.polar - qa.polar
        for w in a_only:
            opp = ANTONYMS.get(w)
            if opp and opp & b_only:
                found.append("antonym")
                break
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


def _direction_swapped(qa: PromptAnalysis, ca: PromptAnalysis) -> bool:
    """Something before a direction word on one side sits after it on the other, and back.

    "from London to New York" / "from New York to London", "Python slower than C++" /
    "C++ slower than Python", "port 80 to 8080" / "port 8080 to 80"; and, with no direction
    word, the two ends of a verb swapped: "the landlord pays the tenant" / "the tenant pays the
    landlord" (same words, no "and"/"vs" that would make the order free).
    """
    # the k-th occurrence of a cue against the k-th on the other side, when both have as many
    by_cue_a: dict[str, list[tuple[frozenset[str], frozenset[str]]]] = {}
    by_cue_b: dict[str, list[tuple[frozenset[str], frozenset[str]]]] = {}
    for cue, before, after in qa.cues:
        by_cue_a.setdefault(cue, []).append((before, after))
    for cue, before, after in ca.cues:
        by_cue_b.setdefault(cue, []).append((before, after))
    for cue, occ_a in by_cue_a.items():
        occ_b = by_cue_b.get(cue, [])
        if len(occ_a) != len(occ_b):
            continue
        for (before_a, after_a), (before_b, after_b) in zip(occ_a, occ_b, strict=True):
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
