"""Text analysis: one prompt turned into what the verifier compares (:class:`PromptAnalysis`).

Tokens with contractions expanded, content stems, numbers and the units that follow them, dates,
negations, question words, named things and the words around direction cues. Computed once per
prompt and memoised (:class:`AnalysisMemo`), since cached prompts come back again and again.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from sidecache.cache.verifier.lexicon import (
    BE,
    CURRENCY_SIGNS,
    DIRECTION_CUES,
    IRREGULAR_PARTICIPLES,
    MONTH_ABBR,
    MONTHS,
    NEGATION_IDIOMS,
    NEGATIONS,
    NUMBER_WORDS,
    PRONOUN_ONE_AFTER,
    QWORDS,
    RELATIVE_TIME,
    ROMAN,
    STOP,
    SYMMETRIC_CUES,
    TECH,
    TECH_ALIASES,
    UNIT_ALIASES,
    UNITS,
    WEEKDAYS,
    edit_close,
    stem,
    word_stem,
)

_TOKEN_RE = re.compile(
    r"(?i:c\+\+|c#|f#|asp\.net|\.net|objective-c)|[$€£¥₹]|->|=>|&|%"
    r"|(?<![\w-])--?[A-Za-z][\w-]*"
    r"|(?<![\w,.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w,])"  # 19,000 is one number, not 19 and 0
    r"|[A-Za-z0-9_]+(?:[.'’][A-Za-z0-9_]+)*(?:\(\))?"
)
_DIMENSION_RE = re.compile(r"(\d)[x×](\d)")
_COMPOUND_RE = re.compile(
    r"\b(check|log|sign|opt|turn|switch|zoom|scale|speed|slow|power|plug|set|roll|back|tak)"
    r"(?:e|s|es|ed|ing|ged|ging|ting|ped|ping|en)?[\s-](in|out|on|off|up|down|back)\b",
    re.IGNORECASE,
)
"""Phrasal verbs made one word, in any form: "turning down" -> "turndown", "logged in"."""
_ENUMERATOR_RE = re.compile(r"(?:^|(?<=\s))\(?\d{1,2}[).](?=\s)")
"""List markers ("1) download, 2) build"): they count items, they are not quantities."""
_INTERJECTION_RE = re.compile(r"^\s*(?:no|yes|yeah|nope|sure|ok|okay)\s*[,.!:;]\s*", re.IGNORECASE)
"""An answer-style "No, ..." opening restates, it does not negate the rest."""
_FREE_OF = (
    "gluten|sugar|dairy|lactose|fat|nut|egg|meat|alcohol|caffeine|salt|soy|wheat|grain|carb|"
    "calorie|cruelty|smoke|tax|duty|rent|interest|risk|stress|pain|hassle|error|bug|ads?|"
    "wrinkle|plastic|fragrance|oil|cost|crash|cash|paper|hands|lock|latency|debt|commission"
)
"""Words that "free" negates even without a hyphen ("sugar free"), unlike "feel free"."""
_REWRITES = tuple(
    (re.compile(pattern, re.IGNORECASE), replacement)
    for pattern, replacement in (
        (r"\bw/o\b", " without "),
        (r"\bw/(?=\s)", " with "),
        (r"\b(how|ways?)\s+2\b(?=\s+[a-z])", r"\1 to"),
        (r"\b([a-z]+)-free\b", r"without \1"),
        (rf"\b({_FREE_OF})\s+free\b", r"without \1"),
        (r"\b(?:fail|fails|failed|failing)\s+to\b", "not"),
        # "keep the laptop from overheating", "stop my dog from barking": prevent (a bare
        # "stop" is not a negation: "stop the server", "quit vim")
        (
            r"\b(?:keep|keeps|keeping|kept|stop|stops|stopped|stopping)\s+((?:\w+\s+){1,3}?)from(?=\s+\w+ing\b)",
            r"prevent \1",
        ),
        (r"(?<!far )\baway\s+from\b", "avoid"),  # "stay away from", "keep the cat away from"
        (r"\b(?:leave|leaves|leaving|left)\s+(?:out|off)\b", "omit"),
        (r"[\s,]+(?:or|or\s+rather)\s+not\b(?=\s*(?:[?.!,;:]|$))", ""),  # "... or not?"
        (r"\bwhether\s+or\s+not\b", "whether"),
        (
            r"\b(?:(?:does|do|did|is|are|was|were|has|have|wo)n[’']?t\s+(?:been\s+)?|not\s+"
            r"|stopped\s+)work(?:s|ing|ed)?\b",
            "broken",
        ),  # "not working", "doesn't work", "stopped working": broken, not a flipped ask
    )
)
"""Phrases said another way so that the word lists see them: "w/o" and "sugar-free" negate like
"without", "fail to" like "not", "(stay) away from" like "avoid", "leave out" like "omit"; "how 2"
is "how to", not the number 2; "... or not?" and "whether or not" negate nothing; "not working"
and "doesn't work" are "broken" (whose opposite is "working")."""
_OUT_OF_RE = re.compile(
    r"\bout\s+of(?=\s+(?:the|a|an|my|your|our|their|his|her|its|this|that)\b)", re.IGNORECASE
)
"""A source said with "out of": "copy a file *out of* the container to my machine" is "from"
it ("out of memory", "out of stock" are left alone)."""
_CUE_CANON = {"into": "to", "onto": "to", "toward": "to", "towards": "to"}
"""Direction words compared as one: "from A into B" and "from B to A" swap the same ends."""
_SEASONS = {"spring": "spring", "summer": "summer", "autumn": "autumn", "fall": "autumn",
            "winter": "winter"}  # fmt: skip
_SEASON_CUES = frozenset({"in", "during", "this", "next", "last", "every", "through", "over"})
_NUM_RE = re.compile(r"^\d+(?:[.,]\d+)*(?:st|nd|rd|th|k|m|x|s)?$")
_CAMEL_RE = re.compile(r"[a-z][A-Z]|[A-Z]{2,}[a-z]")


def _contraction(tok: str) -> str:
    t = tok.replace("’", "'")
    if t.endswith("n't"):
        return {"can't": "cannot", "won't": "wont"}.get(t, t[:-3] + "nt")
    if "'" in t:
        return t.split("'", 1)[0]  # what's -> what, i'm -> i
    return t


def _parse_number(tok: str) -> str | None:
    if _NUM_RE.match(tok):
        t = tok.replace(",", "")
        if t.endswith("k") and t[:-1].replace(".", "").isdigit():
            return str(float(t[:-1]) * 1000).rstrip("0").rstrip(".")
        if t[-1:] in ("s", "x", "m") and t[:-1].replace(".", "").isdigit():
            t = t[:-1]  # 1990s, 2x
        try:
            f = float(t)
        except ValueError:
            return t
        return str(int(f)) if f.is_integer() and "." not in t else t
    v = NUMBER_WORDS.get(tok)
    if v is None:
        return None
    return str(v) if not isinstance(v, float) else repr(v)


@dataclass(frozen=True, slots=True)
class PromptAnalysis:
    """What the verifier needs to know about one prompt, computed once and memoised."""

    tokens: tuple[str, ...]
    """Lower-cased tokens in order, contractions expanded."""
    stems: tuple[str, ...]
    """Stems of the content tokens, in order (stopwords, numbers and cue words left out)."""
    content: frozenset[str]
    polar: frozenset[str]
    """Stems of every token, stopwords included: where antonyms are looked for."""
    numbers: tuple[str, ...]
    quantities: tuple[tuple[str, str], ...]
    """(number, unit) for each number followed (or preceded, for currencies) by a unit."""
    units: frozenset[str]
    dates: frozenset[str]
    negations: int
    negated: frozenset[str]
    """Content stems within three of a negation ("not *place* an *order*"): what it negates."""
    qwords: frozenset[str]
    first: str
    entities: frozenset[str]
    """Stems that name something: tech names, capitalised words inside a sentence, code."""
    tech: frozenset[str]
    cues: tuple[tuple[str, frozenset[str], frozenset[str]], ...]
    """(cue, the two content words before it, the two after it) for each direction word."""
    symmetric: bool
    passive: bool
    """A passive construction ("is mentioned", "can be listed"): word order says little."""
    chars: frozenset[str]
    n_chars: int


def _analyse(text: str) -> PromptAnalysis:
    prepared = text
    for pattern, replacement in _REWRITES:
        prepared = pattern.sub(replacement, prepared)
    prepared = _COMPOUND_RE.sub(_compound, _DIMENSION_RE.sub(r"\1 x \2", prepared))
    prepared = _OUT_OF_RE.sub("from", prepared)  # after the compounds: "opt out of" stays
    prepared = _ENUMERATOR_RE.sub(" ", _INTERJECTION_RE.sub("", prepared))
    matches = list(_TOKEN_RE.finditer(prepared))
    raw = [m.group() for m in matches]
    # a capital letter names something unless it opens a sentence
    opens = [
        not prepared[: m.start()].rstrip()[-1:] or prepared[: m.start()].rstrip()[-1] in ".!?:"
        for m in matches
    ]
    tokens: list[str] = []
    entities: set[str] = set()
    for i, r in enumerate(raw):
        code_like = r.endswith("()") or "_" in r or bool(_CAMEL_RE.search(r))
        r = r.removesuffix("()")
        low = _contraction(r.lower())
        if r.isupper() and low in ROMAN:
            low = ROMAN[low]
        if r in ("US", "U.S"):
            low = "usa"  # the country, not the pronoun "us"
        if low.startswith("-"):
            code_like = True
        low = TECH_ALIASES.get(low, low)
        tokens.append(low)
        if low in STOP or low in NEGATIONS or low in QWORDS:
            continue
        if code_like or ("." in r and not _NUM_RE.match(r)):
            entities.add(low)
        elif not opens[i] and r[:1].isupper():
            entities.add(word_stem(low))
    stems: list[str] = []
    seq: list[str] = []  # stems and numbers, for the direction segments
    numbers: list[str] = []
    quantities: list[tuple[str, str]] = []
    units: set[str] = set()
    dates: set[str] = set()
    tech: set[str] = set()
    negations = 0
    negated_at: list[int] = []  # where in ``stems`` each counted negation stood
    qwords = set()
    pending: list[tuple[str, int]] = []
    symmetric = False
    n = len(tokens)
    for i, t in enumerate(tokens):
        if t in NEGATIONS or (
            t[:1] == "w" and 5 <= len(t) <= 8 and t not in STOP and edit_close(t, "without")
        ):  # "withut", "wihtout": a typo does not undo a negation
            if i + 1 < n and tokens[i + 1] in NEGATION_IDIOMS:
                continue
            negations += 1
            negated_at.append(len(stems))
            continue
        if t in QWORDS:
            qwords.add(t)
            continue
        if t in DIRECTION_CUES:
            if not (t == "to" and i > 0 and (tokens[i - 1] in STOP or tokens[i - 1] in QWORDS)):
                pending.append((_CUE_CANON.get(t, t), len(seq)))  # "how to": no direction
            continue
        if t in SYMMETRIC_CUES:
            symmetric = True
            if t in ("vs", "versus", "between", "compare", "compared"):
                continue
        if t in CURRENCY_SIGNS:
            units.add(CURRENCY_SIGNS[t])
            if i + 1 < n and (q := _parse_number(tokens[i + 1])) is not None:
                quantities.append((q, CURRENCY_SIGNS[t]))
            continue
        if t == "%":
            units.add("percent")
            continue
        if t == "one" and (
            (i > 0 and tokens[i - 1] in PRONOUN_ONE_AFTER) or i + 1 == n or tokens[i + 1] in STOP
        ):
            continue  # "quick one", "which one is": a pronoun
        num = _parse_number(t)
        if num is not None and (t[0].isdigit() or t not in ("second", "once", "single", "half")):
            numbers.append(num)
            seq.append(num)
            if t[0].isdigit() and len(t) == 4 and t.isdigit() and 1500 < int(t) < 2200:
                dates.add(t)
            if i + 1 < n:
                nxt = tokens[i + 1]
                if nxt == "%" or (nxt in UNITS and not _preposition(tokens, i + 1)):
                    quantities.append((num, "percent" if nxt == "%" else _unit(nxt)))
            continue
        if t in ("next", "last", "this", "previous") and i + 1 < n and tokens[i + 1] in (
            "week", "month", "year", "weekend", "quarter", "night", "time",
        ):  # fmt: skip
            dates.add(f"{t} {tokens[i + 1]}")
        if t in MONTHS or (t in MONTH_ABBR and i + 1 < n and tokens[i + 1][:1].isdigit()):
            dates.add(MONTH_ABBR.get(t, t))
            continue
        if t in WEEKDAYS or (t in RELATIVE_TIME and t not in ("this", "next", "last")):
            dates.add(t)
        if t in _SEASONS and i > 0 and tokens[i - 1] in _SEASON_CUES:
            dates.add(_SEASONS[t])  # "in summer", not "Spring Boot" or "fall asleep"
        if (
            t in UNITS
            and ((i > 0 and _parse_number(tokens[i - 1]) is not None) or len(t) > 2)
            and not _preposition(tokens, i)
        ):
            units.add(_unit(t))
        if t in STOP:
            continue
        if t in TECH:
            tech.add(t)
            entities.add(t)
        st = word_stem(t)
        stems.append(st)
        seq.append(st)
    # direction segments: what lies between consecutive cue words
    cues: list[tuple[str, frozenset[str], frozenset[str]]] = []
    if pending:
        for cue, at in pending:
            cues.append((cue, frozenset(seq[max(at - 2, 0) : at]), frozenset(seq[at : at + 2])))
    norm = " ".join(tokens)
    chars = frozenset(norm[j : j + 3] for j in range(max(len(norm) - 2, 1)))
    return PromptAnalysis(
        tokens=tuple(tokens),
        stems=tuple(stems),
        content=frozenset(stems),
        polar=frozenset(word_stem(t) for t in tokens),
        numbers=tuple(sorted(numbers)),
        quantities=tuple(sorted(quantities)),
        units=frozenset(units),
        dates=frozenset(dates),
        negations=negations,
        negated=frozenset(w for k in negated_at for w in stems[k : k + 3]),
        qwords=frozenset(qwords),
        first=tokens[0] if tokens else "",
        entities=frozenset(entities),
        tech=frozenset(tech),
        cues=tuple(cues),
        symmetric=symmetric,
        passive=any(
            t in BE and any(_participle(u) for u in tokens[i + 1 : i + 3])
            for i, t in enumerate(tokens)
        ),
        chars=chars,
        n_chars=len(text),
    )


_DETERMINERS = frozenset("the a an my your our their his her its this that these those".split())


def _preposition(tokens: list[str], i: int) -> bool:
    """``tokens[i]`` is "in" used as a preposition ("first in the same session"), not inches."""
    return tokens[i] == "in" and i + 1 < len(tokens) and tokens[i + 1] in _DETERMINERS


def _compound(m: re.Match[str]) -> str:
    verb = m.group(1).lower()
    return ("take" if verb == "tak" else verb) + m.group(2).lower()


def _participle(t: str) -> bool:
    return (len(t) > 4 and t.endswith("ed")) or t in IRREGULAR_PARTICIPLES


def _unit(t: str) -> str:
    return UNIT_ALIASES.get(t) or (stem(t) if len(t) > 3 else t)


class AnalysisMemo:
    """A small thread-safe LRU for prompt analyses (cached prompts recur)."""

    def __init__(self, size: int = 8192) -> None:
        self._size = size
        self._data: OrderedDict[str, PromptAnalysis] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> PromptAnalysis:
        with self._lock:
            hit = self._data.get(text)
            if hit is not None:
                self._data.move_to_end(text)
                return hit
        value = _analyse(text)
        with self._lock:
            self._data[text] = value
            if len(self._data) > self._size:
                self._data.popitem(last=False)
        return value


def analyse(text: str) -> PromptAnalysis:
    """The analysis of one prompt (not memoised; :class:`Verifier` keeps its own memo)."""
    return _analyse(text)
