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
    FRAME,
    NEGATING_PREFIXES,
    OPPOSED_PREFIXES,
    POLE_MATES,
    PREFIX_NOT_OPPOSITE,
    SYNONYMS,
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
    "swap",
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
        elif not set(qa.numbers or ca.numbers) <= {"1", "1st"} and (qa.units or ca.units):
            found.append("number")  # "5 minutes" against "minutes": a quantity appeared
    elif qa.quantities != ca.quantities and qa.quantities and ca.quantities:
        found.append("number")  # the same numbers on other units: "5% for 3 years"
    ua, ub = qa.units - ca.units, ca.units - qa.units
    if ua and ub:
        found.append("unit")
    da, db = qa.dates - ca.dates, ca.dates - qa.dates
    if da and db:
        found.append("date")
    negation = (
        (qa.negations % 2) != (ca.negations % 2)
        and not _same_negation(qa, ca)
        and _negates_shared(qa, ca)
    ) or _negation_moved(qa, ca)
    b_only = ca.polar - qa.polar
    opposed = [(w, x) for w in qa.polar - ca.polar for x in b_only if _opposed(w, x)]
    if opposed and all((w in qa.negated) != (x in ca.negated) for w, x in opposed):
        negation = False  # "not safe" / "unsafe", "don't include" / "exclude": the same ask
        opposed = []
    if negation:
        found.append("negation")
    if opposed:
        found.append("antonym")
    if _direction_swapped(qa, ca) or _to_from_flipped(qa, ca) or _to_from_flipped(ca, qa):
        found.append("direction")
    ta, tb = qa.tech - ca.tech, ca.tech - qa.tech
    if ta and tb and not any(edit_close(x, y) for x in ta for y in tb):
        found.append("tech")
    ea = unmatched(qa.entities - ca.entities - qa.tech, ca.entities | ca.content)
    eb = unmatched(ca.entities - qa.entities - ca.tech, qa.entities | qa.content)
    if ea and eb:
        found.append("entity")
    if _swapped_word(qa, ca):
        found.append("swap")
    return found


def _swapped_word(qa: PromptAnalysis, ca: PromptAnalysis) -> bool:
    """The same prompt with one or two content words replaced by others: "best car seat for a
    newborn" / "best stroller for a newborn", "plants that attract bees" / "... repel bees".

    A paraphrase written by someone else rewords more than one spot; a prompt that differs in
    exactly one place, by a word that is not the same word misspelt or shortened, most often
    asks about another thing (another food, city, part or action). Words that reappear
    elsewhere on the other side (a reordering) do not count.
    """
    sa = [w for w in qa.stems if w not in _FRAME]
    sb = [w for w in ca.stems if w not in _FRAME]
    n = min(len(sa), len(sb))
    p = 0
    while p < n and sa[p] == sb[p]:
        p += 1
    s = 0
    while s < n - p and sa[-1 - s] == sb[-1 - s]:
        s += 1
    block_a, block_b = sa[p : len(sa) - s], sb[p : len(sb) - s]
    if not (1 <= len(block_a) <= 2 and 1 <= len(block_b) <= 2):
        return False
    if p + s < max(1, max(len(sa), len(sb)) // 2):
        return False  # too little shared context to call the rest the same prompt
    if any(w in ca.content for w in block_a) or any(w in qa.content for w in block_b):
        return False
    names = qa.entities | ca.entities
    return not any(_related(x, y, names) for x in block_a for y in block_b)


def _related(x: str, y: str, names: frozenset[str]) -> bool:
    """One word spelt another way, shortened, or its opposite (which :func:`contradictions`
    judges with the negations: "not safe" / "unsafe" is no swap). Short names a letter apart
    are other names ("Ming" / "Qing", "Mali" / "Bali"), not typos."""
    if x in names and y in names and min(len(x), len(y)) < 5:
        return False
    if x in POLE_MATES.get(y, ()) or x in SYNONYMS.get(y, ()):
        return True  # one word said another way: "increase" / "raise", "kids" / "children"
    return edit_close(x, y) or _typo(x, y) or x.endswith(y) or y.endswith(x) or _opposed(x, y)


_FRAME = frozenset(stem(w) for w in FRAME)


def _typo(x: str, y: str) -> bool:
    """Short stems a letter apart ("vau"/"valu" from "vaues"/"values")."""
    if min(len(x), len(y)) < 3 or abs(len(x) - len(y)) > 1:
        return False
    s, t = (x, y) if len(x) <= len(y) else (y, x)
    return any(t[:i] + t[i + 1 :] == s for i in range(len(t))) if len(s) < len(t) else False


_ARTICLES = frozenset({"the", "a", "an"})


def _same_negation(qa: PromptAnalysis, ca: PromptAnalysis) -> bool:
    """Both sides negate the same words, and neither negates a word the other asserts: then a
    different count of negations is wording ("non-hashable" said twice), not a flip ("is it
    *not normal* ... not to talk" against "is it normal ... not to talk")."""
    if not (qa.negated & ca.negated):
        return False
    return not ((qa.negated - ca.negated) & ca.content or (ca.negated - qa.negated) & qa.content)


def _negates_shared(qa: PromptAnalysis, ca: PromptAnalysis) -> bool:
    """A negation negates something both prompts talk about, or nothing in particular.

    "list running containers" against "... the ones that are up, not the ones that exited",
    "banana bread recipe" against "banana bread, nothing fancy": the negated words are a detail
    the other prompt never mentions, so the negation adds a nuance and does not flip the ask.
    "run at startup" against "not run at startup", "eat with gout" against "should not eat
    with gout": the negated words are on both sides, a flip.
    """
    if not (qa.negated or ca.negated):
        return True  # "why is it forbidden?": nothing after the negation, so no scope to judge
    return _talks_about(qa.negated, ca.content) or _talks_about(ca.negated, qa.content)


def _talks_about(negated: frozenset[str], other: frozenset[str]) -> bool:
    """A negated word is on the other side, spelt alike or by a word of its own pole ("should
    *not eat*" against "*safe* to"): "foods babies should not eat" / "foods safe for babies"."""
    if len(unmatched(negated, other)) < len(negated):
        return True
    return any(POLE_MATES.get(w, frozenset()) & other for w in negated)


def _negation_moved(qa: PromptAnalysis, ca: PromptAnalysis) -> bool:
    """As many negations on both sides, but each negates what the other asserts: "continuous
    but not differentiable" / "differentiable but not continuous"."""
    if not (qa.negations and ca.negations) or qa.negations != ca.negations:
        return False
    a_only, b_only = qa.negated - ca.negated, ca.negated - qa.negated
    return bool(a_only & (ca.content - ca.negated)) and bool(b_only & (qa.content - qa.negated))


def _opposed(w: str, x: str) -> bool:
    """``w`` is the opposite of ``x``: listed (enable/disable, turn on/switch off) or by a
    negating prefix (unblock/block, irrational/rational)."""
    opp = ANTONYMS.get(w)
    return bool(opp and x in opp) or _prefixed(w, x) or _prefixed(x, w) or _counter_prefixed(w, x)


def _counter_prefixed(w: str, x: str) -> bool:
    """The same rest of four letters or more behind opposed prefixes (over-/under-, pre-/post-,
    up-/down-, in-/ex-, ...: :data:`OPPOSED_PREFIXES`)."""
    for p, q in OPPOSED_PREFIXES:
        for a, b in ((w, x), (x, w)):
            rest = a[len(p) :]
            if a.startswith(p) and b.startswith(q) and len(rest) >= 4 and rest == b[len(q) :]:
                return True
    return False


_NOT_OPPOSITE = frozenset(stem(w) for w in PREFIX_NOT_OPPOSITE)
_ADJECTIVE_ENDINGS = tuple(
    sorted({*ADJECTIVE_ENDINGS, *(stem("xxxx" + e)[4:] for e in ADJECTIVE_ENDINGS)})
)
"""The endings as written and as stemmed ("effective" is compared as "effectiv")."""


def _prefixed(neg: str, base: str) -> bool:
    if len(base) < 4 or not neg.endswith(base) or neg in _NOT_OPPOSITE:
        return False
    prefix = neg[: -len(base)]
    if prefix not in NEGATING_PREFIXES:
        return False
    return prefix in ("un", "non", "dis") or base.endswith(_ADJECTIVE_ENDINGS)


def _to_from_flipped(qa: PromptAnalysis, ca: PromptAnalysis) -> bool:
    """The same end reached "to" on one side and left "from" on the other: "upload photos *to*
    the cloud" / "... *from* the cloud", "migrate to Postgres" / "migrate from Postgres"."""
    cues_a, cues_b = {c for c, _, _ in qa.cues}, {c for c, _, _ in ca.cues}
    if "to" not in cues_a or "from" in cues_a or "from" not in cues_b or "to" in cues_b:
        return False  # "from A to B" on either side: the two ends are compared elsewhere
    for _, before_a, after_a in (c for c in qa.cues if c[0] == "to"):
        for _, before_b, after_b in (c for c in ca.cues if c[0] == "from"):
            if before_a & before_b and after_a & after_b:
                return True  # the same act ("upload photos") towards and away from one end
    return False


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
