"""The hit verifier: does the stored answer really answer the new prompt?

A cosine match over sentence embeddings says two prompts are *about* the same thing; it cannot
see that "enable 2FA" and "disable 2FA", "Paris to Brussels" and "Brussels to Paris", or "Python
3.8" and "Python 3.12" want different answers (plain cosine is at chance on such pairs). So after
the FAISS match passes the threshold, :meth:`Verifier.check` looks at what differs between the
two prompts, in three layers:

1. **Contradictions** (hard vetoes): a number, unit or date that changed, a negation that flipped,
   an antonym that replaced its opposite (enable/disable, upload/download), the two ends of a
   direction swapped ("from A to B" against "from B to A"), a programming language, framework or
   named thing replaced by another.
2. **Pair features**: word, stem and character n-gram overlap, weighted by rarity; how many content
   words of each side find no counterpart on the other (by spelling or by a small distilled word
   vector table); question-word and first-word agreement; length ratios; the contradiction flags;
   and, when the caller passes the two sentence vectors, their cosine after a learned linear
   projection (the strongest single signal on general questions).
3. **A learned score** over those features: gradient-boosted trees trained by
   ``benchmarks/train_verifier.py`` on QQP and on our prompt pairs, exported to a small JSON
   file shipped in this package (``verifier_model.json``, about 3 MB) and evaluated here in
   numpy. The pair is accepted when no hard veto fires and the score reaches the cutoff.

Which contradictions are hard vetoes is part of the shipped file (all but ``entity``, which on
general questions fires too often on true duplicates and is left to the learned score).

Everything is pure CPU and allocation-light, a fraction of a millisecond per check; the text
analysis of a prompt is memoised, since cached prompts come back again and again. A
:class:`Verifier` is immutable after loading, so one instance serves all worker threads.
"""

from __future__ import annotations

import base64
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from sidecache.errors import ConfigError

__all__ = [
    "FEATURE_NAMES",
    "VETOES",
    "PromptAnalysis",
    "Verifier",
    "analyse",
    "contradictions",
    "pair_features",
]

SHIPPED_MODEL = "verifier_model.json"

# --- lexicons -----------------------------------------------------------------------------------

_STOP = frozenset(
    """
    a an the of to in on at for with by from as is are was were be been being am do does did done
    doing have has had having i me my mine we us our you your yours he him his she her it its they
    them their this that these those there here and or but if so than then too very just also
    can could would should will shall may might must
    what how why when where who whom whose which
    please kindly thanks thank thx pls plz hi hey hello yo dear
    some any all each every much many more most such own same other another
    into onto about up out over under again further once
    way ways get got make made use using used give tell show explain help want need like know let
    s t d ll re ve m o y u ur im id
    """.split()
)
"""Words that carry no content for the question. Negations, directions and numbers are kept
apart below; question words are also compared on their own."""

_FILLER = frozenset(
    """
    please kindly thanks thank thx pls plz could would can you me i hi hey hello yo really
    appreciate quick quickly simple simply short brief briefly just actually basically
    tell write give show explain help want need like know let wondering wonder possible
    """.split()
)
"""Politeness and framing words: a paraphrase often adds or drops them."""

_QWORDS = ("what", "how", "why", "when", "where", "who", "which", "whose", "whom")

_NEGATIONS = frozenset(
    """
    not no never none nobody nothing neither nor without cannot cant dont doesnt isnt arent
    wasnt werent shouldnt wouldnt couldnt didnt hasnt havent hadnt wont mustnt neednt aint
    avoid unable impossible lack lacks lacking except exclude excluding absence absent non
    """.split()
)

_ANTONYMS_RAW = """
enable disable; enabled disabled; install uninstall; installed uninstalled; encrypt decrypt;
encryption decryption; compress decompress; zip unzip; upload download; import export; increase
decrease; increase reduce; raise lower; add remove; added removed; show hide; visible hidden;
lock unlock; locked unlocked; mount unmount; start stop; started stopped; open close; opened
closed; allow block; allow deny; accept reject; accept decline; approve reject; include exclude;
subscribe unsubscribe; follow unfollow; mute unmute; connect disconnect; connected disconnected;
encode decode; encoding decoding; serialize deserialize; serialization deserialization; push
pull; buy sell; buying selling; bought sold; win lose; won lost; gain lose; gain loss; profit
loss; success failure; succeed fail; succeeded failed; pass fail; passed failed; true false;
pros cons; advantage disadvantage; advantages disadvantages; benefit risk; benefits risks;
benefit drawback; benefits drawbacks; positive negative; best worst; better worse; good bad; max
min; maximum minimum; largest smallest; biggest smallest; highest lowest; high low; higher
lower; most least; fastest slowest; faster slower; cheapest expensive; cheap expensive; cheaper
pricier; ascending descending; asc desc; uppercase lowercase; upper lower; first last; before
after; earlier later; early late; old new; older newer; oldest newest; young old; long short;
longer shorter; online offline; inside outside; inner outer; internal external; input output;
inbound outbound; incoming outgoing; send receive; sent received; sender receiver; read write;
reader writer; sync async; synchronous asynchronous; public private; horizontal vertical;
horizontally vertically; row column; rows columns; left right; up down; upgrade downgrade; north
south; east west; male female; men women; man woman; boy girl; husband wife; son daughter;
father mother; love hate; like dislike; happy sad; cheerful sad; hot cold; warm cool; summer
winter; day night; morning evening; sunrise sunset; light dark; lighter darker; wet dry; full
empty; charge drain; charging draining; plus minus; credit debit; deposit withdraw; borrow lend;
import export; arrive depart; arrival departure; arrivals departures; entry exit; enter exit;
login logout; signin signout; checkin checkout; signup signout; forward backward; next previous;
prev next; ahead behind; above below; top bottom; turnon turnoff; switchon switchoff; zoomin
zoomout; scaleup scaledown; scalein scaleout; speedup slowdown; poweron poweroff; optin optout;
sun shade; sunny shady; front back; head tail; client server; parent child; master slave;
primary replica; primary secondary; local remote; frontend backend; debug release; dev prod;
development production; manual automatic; explicit implicit; mutable immutable; static dynamic;
strong weak; strict lenient; valid invalid; legal illegal; safe unsafe; safe dangerous; secure
insecure; possible impossible; correct incorrect; right wrong; same different; similar
different; equal unequal; even odd; always never; all none; everything nothing; everyone nobody;
more less; more fewer; many few; include omit; keep delete; keep remove; save delete; create
delete; create destroy; insert delete; allocate free; alloc free; attach detach; bind unbind;
link unlink; merge split; join split; combine split; expand collapse; maximize minimize;
maximise minimise; wake sleep; awake asleep; asleep awake; alive dead; live die; birth death;
born died; agree disagree; like hate; want avoid; eat avoid; accept refuse; admit deny; confirm
deny; pay refund; charge refund; hire fire; hired fired; employ dismiss; promote demote; start
finish; begin end; beginning end; start end; open shut; appear disappear; visible invisible;
clockwise counterclockwise; clockwise anticlockwise; inhale exhale; import export; win loss;
import export; heat cool; heating cooling; rise fall; rising falling; grow shrink; growing
shrinking; inflate deflate; inflation deflation; overestimate underestimate; overweight
underweight; overpaid underpaid; overrated underrated; pro anti; for against; legal illegal;
formal informal; formal casual; polite rude; active inactive; activate deactivate;
"""


def _antonym_map(raw: str) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for chunk in raw.replace("\n", " ").split(";"):
        words = chunk.split()
        if len(words) != 2:
            continue
        a, b = words
        for x, y in ((a, b), (b, a)):
            out.setdefault(_stem(x), set()).add(_stem(y))
    return {k: frozenset(v) for k, v in out.items()}


_DIRECTION_CUES = frozenset({"to", "from", "into", "than", "onto", "toward", "towards", "->", "=>"})
_SYMMETRIC_CUES = frozenset({"and", "vs", "versus", "or", "between", "&", "compare", "compared"})

_MONTHS = (
    "january february march april may june july august september october november december".split()
)
_MONTH_ABBR = {m[:3]: m for m in _MONTHS} | {"sept": "september"}
_WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_RELATIVE_TIME = frozenset(
    """today tomorrow yesterday tonight weekend weekday daily weekly monthly yearly annually
    hourly morning afternoon evening night noon midnight am pm next last previous this""".split()
)

_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 1_000_000, "billion": 1_000_000_000, "dozen": 12, "single": 1, "double": 2,
    "triple": 3, "twice": 2, "once": 1, "half": 0.5, "quarter": 0.25, "couple": 2,
    "first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th",
}  # fmt: skip

_UNITS = frozenset(
    """
    mm cm m km meter meters metre metres kilometer kilometers kilometre kilometres mile miles
    inch inches in ft foot feet yard yards mg g kg gram grams kilogram kilograms lb lbs pound pounds
    oz ounce ounces ton tons tonne tonnes ml l liter liters litre litres gallon gallons cup cups
    tablespoon tablespoons tbsp teaspoon teaspoons tsp pint pints quart quarts
    b kb mb gb tb pb kib mib gib tib byte bytes kilobyte megabyte megabytes gigabyte gigabytes
    terabyte terabytes bit bits kbps mbps gbps hz khz mhz ghz
    ms millisecond milliseconds sec secs second seconds min mins minute minutes h hr hrs hour hours
    day days week weeks month months year years decade decades century centuries night nights
    c f celsius fahrenheit kelvin degree degrees percent percentage pct psi bar kpa pa
    px pixel pixels dpi pt em rem vh vw k cpu cpus core cores thread threads replica replicas
    usd eur gbp jpy inr cny aud cad chf dollar dollars euro euros pound sterling yen rupee rupees
    cent cents calorie calories kcal kj watt watts kw kwh volt volts amp amps mah
    am pm utc gmt est pst cet ist
    """.split()
)

_CURRENCY_SIGNS = {"$": "usd", "€": "eur", "£": "gbp", "¥": "jpy", "₹": "inr"}

_TECH = frozenset(
    """
    python python2 python3 java javascript js typescript ts go golang rust c c++ cpp c# csharp f#
    ruby php perl lua scala kotlin swift objective-c dart haskell elixir erlang clojure julia r
    matlab fortran cobol bash zsh fish powershell sh shell sql tsql plsql nosql graphql html css
    scss sass less json yaml yml toml xml csv markdown latex wasm webassembly solidity zig nim ocaml
    react reactjs vue vuejs angular angularjs svelte sveltekit nextjs next.js nuxt ember jquery
    backbone solid solidjs astro remix gatsby redux mobx zustand tailwind bootstrap bulma
    node node.js nodejs deno bun express fastify koa nestjs django flask fastapi pyramid tornado
    rails laravel symfony spring springboot quarkus micronaut asp.net .net dotnet blazor gin echo
    fiber actix axum rocket phoenix sinatra
    pandas polars numpy scipy sklearn scikit pytorch torch tensorflow keras jax xgboost
    lightgbm huggingface transformers spacy nltk opencv matplotlib seaborn plotly ggplot ggplot2
    dplyr tidyverse spark pyspark hadoop hive flink kafka airflow dbt celery sidekiq rq
    pytest unittest jest mocha vitest junit rspec cypress selenium playwright
    npm yarn pnpm pip pipenv poetry conda uv cargo maven gradle sbt composer gem bundler nuget
    docker podman kubernetes k8s helm nomad terraform pulumi ansible chef puppet vagrant
    jenkins github gitlab bitbucket circleci travis
    aws azure gcp gce ec2 s3 lambda cloudflare heroku vercel netlify digitalocean firebase supabase
    mysql postgres postgresql sqlite mariadb oracle mssql mongodb mongo redis memcached cassandra
    dynamodb elasticsearch opensearch neo4j clickhouse snowflake bigquery redshift duckdb
    nginx apache caddy traefik haproxy envoy istio linkerd prometheus grafana datadog splunk
    linux ubuntu debian fedora centos rhel arch alpine windows macos osx mac ios android
    http https ftp ssh tcp udp grpc websocket rest soap
    iphone ipad pixel galaxy chrome firefox safari edge opera vscode vim neovim emacs intellij
    pycharm eclipse xcode excel sheets tableau powerbi word powerpoint outlook gmail slack teams
    zoom notion jira confluence trello figma photoshop wordpress shopify stripe paypal venmo
    openai chatgpt gpt claude llama gemini mistral ollama langchain
    axios fetch requests httpx urllib curl wget git svn mercurial
    english spanish french german italian portuguese dutch russian chinese mandarin cantonese
    japanese korean arabic hindi bengali urdu turkish polish swedish norwegian danish finnish
    greek hebrew thai vietnamese indonesian malay tagalog swahili ukrainian czech hungarian
    romanian persian farsi latin
    """.split()
)
"""Languages, frameworks, tools and products: one replaced by another asks a different question."""

_TOKEN_RE = re.compile(
    r"(?i:c\+\+|c#|f#|asp\.net|\.net|objective-c)|[$€£¥₹]|->|=>|&|%"
    r"|(?<![\w-])--?[A-Za-z][\w-]*"
    r"|[A-Za-z0-9_]+(?:[.'’][A-Za-z0-9_]+)*(?:\(\))?"
)
_DIMENSION_RE = re.compile(r"(\d)[x×](\d)")
_COMPOUND_RE = re.compile(
    r"\b(check|log|sign|opt|turn|switch|zoom|scale|speed|slow|power|plug|set|roll|back)[\s-]"
    r"(in|out|on|off|up|down|back)\b",
    re.IGNORECASE,
)
_ENUMERATOR_RE = re.compile(r"(?:^|(?<=\s))\(?\d{1,2}[).](?=\s)")
"""List markers ("1) download, 2) build"): they count items, they are not quantities."""
_INTERJECTION_RE = re.compile(r"^\s*(?:no|yes|yeah|nope|sure|ok|okay)\s*[,.!:;]\s*", re.IGNORECASE)
"""An answer-style "No, ..." opening restates, it does not negate the rest."""
_NEGATION_IDIOMS = frozenset({"only", "forget", "hesitate", "fail", "worry", "mind"})
"""Words after which a negation is an idiom, not a polarity: "not only", "don't forget"."""
_TECH_ALIASES = {
    "js": "javascript", "ts": "typescript", "k8s": "kubernetes", "postgres": "postgresql",
    "golang": "go", "py": "python", "python3": "python", "nodejs": "node", "node.js": "node",
    "reactjs": "react", "vuejs": "vue", "angularjs": "angular", "mongo": "mongodb",
    "osx": "macos", "cpp": "c++", "csharp": "c#", "dotnet": ".net", "yml": "yaml",
    "sklearn": "scikit", "torch": "pytorch", "tf": "tensorflow", "gcp": "google cloud",
}  # fmt: skip
_ROMAN = {"ii": "2", "iii": "3", "iv": "4", "vi": "6", "vii": "7", "viii": "8", "ix": "9"}
_NUM_RE = re.compile(r"^\d+(?:[.,]\d+)*(?:st|nd|rd|th|k|m|x|s)?$")
_CAMEL_RE = re.compile(r"[a-z][A-Z]|[A-Z]{2,}[a-z]")


def _stem(word: str) -> str:
    """A small suffix stripper: enough to match plural/verb forms, never a dictionary lookup."""
    w = word
    if len(w) <= 3 or not w.isalpha():
        return w
    for suf, rep in (
        ("ies", "y"),
        ("sses", "ss"),
        ("ing", ""),
        ("edly", ""),
        ("ed", ""),
        ("ly", ""),
        ("es", ""),
        ("s", ""),
    ):
        if w.endswith(suf) and len(w) - len(suf) >= 3 and not w.endswith("ss"):
            w = w[: -len(suf)] + rep
            break
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
        w = w[:-1]  # running -> runn -> run
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]  # remove/removing, serialize/serializing
    return w


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
    v = _NUMBER_WORDS.get(tok)
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


def _word_stem(t: str) -> str:
    return t if t in _TECH or not t.isalpha() else _stem(t)


def _analyse(text: str) -> PromptAnalysis:
    prepared = _COMPOUND_RE.sub(r"\1\2", _DIMENSION_RE.sub(r"\1 x \2", text))
    prepared = _ENUMERATOR_RE.sub(" ", _INTERJECTION_RE.sub("", prepared))
    raw = _TOKEN_RE.findall(prepared)
    tokens: list[str] = []
    entities: set[str] = set()
    for i, r in enumerate(raw):
        code_like = r.endswith("()") or "_" in r or bool(_CAMEL_RE.search(r))
        r = r.removesuffix("()")
        low = _contraction(r.lower())
        if r.isupper() and low in _ROMAN:
            low = _ROMAN[low]
        if low.startswith("-"):
            code_like = True
        low = _TECH_ALIASES.get(low, low)
        tokens.append(low)
        if low in _STOP or low in _NEGATIONS or low in _QWORDS:
            continue
        if code_like or ("." in r and not _NUM_RE.match(r)):
            entities.add(low)
        elif i > 0 and r[:1].isupper() and raw[i - 1] not in (".", "!", "?", ":"):
            entities.add(_word_stem(low))
    stems: list[str] = []
    seq: list[str] = []  # stems and numbers, for the direction segments
    numbers: list[str] = []
    quantities: list[tuple[str, str]] = []
    units: set[str] = set()
    dates: set[str] = set()
    tech: set[str] = set()
    negations = 0
    qwords = set()
    pending: list[tuple[str, int]] = []
    symmetric = False
    n = len(tokens)
    for i, t in enumerate(tokens):
        if t in _NEGATIONS:
            if i + 1 < n and tokens[i + 1] in _NEGATION_IDIOMS:
                continue
            negations += 1
            continue
        if t in _QWORDS:
            qwords.add(t)
            continue
        if t in _DIRECTION_CUES:
            pending.append((t, len(seq)))
            continue
        if t in _SYMMETRIC_CUES:
            symmetric = True
            if t in ("vs", "versus", "between", "compare", "compared"):
                continue
        if t in _CURRENCY_SIGNS:
            units.add(_CURRENCY_SIGNS[t])
            if i + 1 < n and (q := _parse_number(tokens[i + 1])) is not None:
                quantities.append((q, _CURRENCY_SIGNS[t]))
            continue
        if t == "%":
            units.add("percent")
            continue
        num = _parse_number(t)
        if num is not None and (t[0].isdigit() or t not in ("second", "once", "single", "half")):
            numbers.append(num)
            seq.append(num)
            if t[0].isdigit() and len(t) == 4 and t.isdigit() and 1500 < int(t) < 2200:
                dates.add(t)
            if i + 1 < n:
                nxt = tokens[i + 1]
                if nxt == "%" or nxt in _UNITS:
                    quantities.append((num, "percent" if nxt == "%" else _unit(nxt)))
            continue
        if t in ("next", "last", "this", "previous") and i + 1 < n and tokens[i + 1] in (
            "week", "month", "year", "weekend", "quarter", "night", "time",
        ):  # fmt: skip
            dates.add(f"{t} {tokens[i + 1]}")
        if t in _MONTHS or (t in _MONTH_ABBR and i + 1 < n and tokens[i + 1][:1].isdigit()):
            dates.add(_MONTH_ABBR.get(t, t))
            continue
        if t in _WEEKDAYS or (t in _RELATIVE_TIME and t not in ("this", "next", "last")):
            dates.add(t)
        if t in _UNITS and ((i > 0 and _parse_number(tokens[i - 1]) is not None) or len(t) > 2):
            units.add(_unit(t))
        if t in _STOP:
            continue
        if t in _TECH:
            tech.add(t)
            entities.add(t)
        st = _word_stem(t)
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
        polar=frozenset(_word_stem(t) for t in tokens),
        numbers=tuple(sorted(numbers)),
        quantities=tuple(sorted(quantities)),
        units=frozenset(units),
        dates=frozenset(dates),
        negations=negations,
        qwords=frozenset(qwords),
        first=tokens[0] if tokens else "",
        entities=frozenset(entities),
        tech=frozenset(tech),
        cues=tuple(cues),
        symmetric=symmetric,
        passive=any(
            t in _BE and any(_participle(u) for u in tokens[i + 1 : i + 3])
            for i, t in enumerate(tokens)
        ),
        chars=chars,
        n_chars=len(text),
    )


_BE = frozenset({"is", "are", "was", "were", "be", "been", "being", "get", "gets", "got"})
_IRREGULAR_PARTICIPLES = frozenset(
    """made done used set put held sold built sent paid given taken known shown written said
    found kept left lost read run seen told thought understood chosen driven eaten broken""".split()
)


def _participle(t: str) -> bool:
    return (len(t) > 4 and t.endswith("ed")) or t in _IRREGULAR_PARTICIPLES


def _unit(t: str) -> str:
    return _stem(t) if len(t) > 3 else t


class _Memo:
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


# --- contradictions ------------------------------------------------------------------------------

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

_ANTONYMS = _antonym_map(_ANTONYMS_RAW)


def _edit_close(a: str, b: str) -> bool:
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


def _unmatched(xs: Iterable[str], ys: frozenset[str]) -> list[str]:
    return [x for x in xs if x not in ys and not any(_edit_close(x, y) for y in ys)]


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
            opp = _ANTONYMS.get(w)
            if opp and opp & b_only:
                found.append("antonym")
                break
    if _direction_swapped(qa, ca):
        found.append("direction")
    ta, tb = qa.tech - ca.tech, ca.tech - qa.tech
    if ta and tb and not any(_edit_close(x, y) for x in ta for y in tb):
        found.append("tech")
    ea = _unmatched(qa.entities - ca.entities - qa.tech, ca.entities | ca.content)
    eb = _unmatched(ca.entities - qa.entities - ca.tech, qa.entities | qa.content)
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


# --- features ------------------------------------------------------------------------------------

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
    *(f"veto_{v}" for v in VETOES),
)

_DEICTIC = frozenset(
    {
        "this",
        "following",
        "these",
        "above",
        "attached",
        "given",
        "below",
        "image",
        "picture",
        "question",
    }
)
_PERSONS = (
    frozenset({"i", "me", "my", "mine", "myself"}),
    frozenset({"you", "your", "yours", "yourself", "u", "ur"}),
    frozenset({"we", "us", "our", "ours"}),
)


def _person(tokens: Sequence[str]) -> tuple[bool, ...]:
    ts = set(tokens)
    return tuple(bool(ts & p) for p in _PERSONS)


@dataclass(frozen=True, slots=True)
class _Lexical:
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


_EMPTY_LEX = _Lexical({}, 1.0, {}, np.zeros((0, 1), dtype=np.float32))


def _inversions(a: Sequence[str], b: Sequence[str]) -> int:
    pos = {w: i for i, w in enumerate(b)}
    seq = [pos[w] for w in dict.fromkeys(a) if w in pos]
    return sum(1 for i in range(len(seq)) for j in range(i + 1, len(seq)) if seq[i] > seq[j])


def pair_features(
    qa: PromptAnalysis,
    ca: PromptAnalysis,
    similarity: float,
    lex: _Lexical = _EMPTY_LEX,
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
    fix = {x: y for x in qa.content - B for y in B - qa.content if _edit_close(x, y)}
    A = frozenset(fix.get(x, x) for x in qa.content)
    inter = A & B
    union = A | B
    a_un = _unmatched(A - B, B)
    b_un = _unmatched(B - A, A)
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
        not a_un and not b_un and all(t in _FILLER or t in _STOP for t in filler_a | filler_b)
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
        float(bool(_DEICTIC & set(qa.tokens)) or bool(_DEICTIC & set(ca.tokens))),
        float(bool(_DEICTIC & set(qa.tokens)) and bool(_DEICTIC & set(ca.tokens))),
        float(_person(qa.tokens) != _person(ca.tokens)),
        float(
            bool(qa.stems)
            and bool(ca.stems)
            and fix.get(qa.stems[-1], qa.stems[-1]) == ca.stems[-1]
        ),
        float(max(len(set(qa.tokens) - set(ca.tokens)), len(set(ca.tokens) - set(qa.tokens)))),
        proj_cosine,
        *(float(v in vetoes) for v in VETOES),
    ]
    return np.asarray(f, dtype=np.float64)


# --- the learned score ---------------------------------------------------------------------------


_NODE_FIELDS = (
    ("feature", np.int16),
    ("threshold", np.float64),  # float32 would move thresholds that sit on data values
    ("left", np.int16),
    ("right", np.int16),
    ("value", np.float32),
    ("flags", np.uint8),  # bit 0: leaf, bit 1: missing values go left
)


def encode_array(a: np.ndarray) -> dict[str, Any]:
    """A numpy array as JSON: dtype, shape and base64 bytes (little-endian)."""
    a = np.ascontiguousarray(a)
    return {
        "dtype": a.dtype.str,
        "shape": list(a.shape),
        "data": base64.b64encode(a.tobytes()).decode("ascii"),
    }


def decode_array(spec: dict[str, Any]) -> np.ndarray:
    raw = base64.b64decode(spec["data"])
    return np.frombuffer(raw, dtype=np.dtype(spec["dtype"])).reshape(spec["shape"]).copy()


class _Forest:
    """Gradient-boosted trees as flat arrays, evaluated for all trees at once in numpy.

    Exported from scikit-learn's HistGradientBoostingClassifier by the training script, so the
    gateway needs neither scikit-learn nor pickle: a few arrays of numbers in the JSON file,
    one row per tree, one column per node (padded with leaves).

    Evaluation is QuickScorer's (Lucchese et al., SIGIR 2015), which suits numpy: no walk at
    all. Each split node carries a bitmask of its tree's leaves (in left-to-right order) with
    the bits of its left subtree cleared. For a row, every node whose test sends it right
    contributes its mask; AND-ing a tree's masks leaves the exit leaf as the lowest set bit.
    That is a handful of whole-array operations whatever the depth, where a level-by-level
    walk needed four per level (depth 18 here): about half the time per call.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.baseline = float(spec["baseline"])
        self.depth = int(spec["max_depth"])
        arrays = {name: decode_array(spec[name]) for name, _ in _NODE_FIELDS}
        self.feature = arrays["feature"].astype(np.intp)
        self.threshold = arrays["threshold"].astype(np.float64)
        self.left = arrays["left"].astype(np.intp)
        self.right = arrays["right"].astype(np.intp)
        self.value = arrays["value"].astype(np.float64)
        flags = arrays["flags"]
        self.leaf = (flags & 1).astype(bool)
        self.missing_left = (flags & 2).astype(bool)
        self.n_trees, self.width = self.feature.shape
        self._build_masks()
        # flat indexing: node k of tree t lives at t * width + k
        self.offset = np.arange(self.n_trees, dtype=np.intp) * self.width
        for name in ("feature", "threshold", "left", "right", "value", "leaf", "missing_left"):
            setattr(self, name, getattr(self, name).ravel())

    def _build_masks(self) -> None:
        """QuickScorer tables from the (trees, width) node arrays: per split node its feature,
        threshold, NaN direction and leaf mask (padded per tree with no-op nodes), and the
        leaf values in left-to-right order."""
        n_trees, width = self.feature.shape
        splits: list[list[tuple[int, int]]] = []  # per tree: (node, mask)
        values: list[list[float]] = []
        most = 1
        for t in range(n_trees):
            leaf, left, right = self.leaf[t], self.left[t], self.right[t]
            rank: dict[int, int] = {}
            first: dict[int, int] = {}  # node -> rank of its first leaf
            stack: list[tuple[int, bool]] = [(0, False)]
            while stack:  # iterative in-order numbering of the leaves
                node, done = stack.pop()
                if leaf[node]:
                    first[node] = rank[node] = len(rank)
                elif done:
                    first[node] = first[int(left[node])]
                else:
                    stack += [(node, True), (int(right[node]), False), (int(left[node]), False)]
            most = max(most, len(rank))
            tree_splits = []
            for node in range(width):
                if node in first and not leaf[node]:
                    lo, hi = first[int(left[node])], first[int(right[node])]
                    tree_splits.append((node, ((1 << hi) - 1) ^ ((1 << lo) - 1)))
            splits.append(tree_splits)
            values.append([float(self.value[t, n]) for n in sorted(rank, key=rank.__getitem__)])
        if most > 64:
            raise ValueError(f"verifier trees have up to {most} leaves; 64 at most are supported")
        per_tree = max(1, max(len(ts) for ts in splits))
        # Bitmasks as narrow as the widest tree allows; node arrays laid out split-major
        # ([k, tree]) so the per-tree AND runs down contiguous rows.
        dtype = np.uint32 if most <= 32 else np.uint64
        feature = np.zeros((per_tree, n_trees), dtype=np.intp)
        threshold = np.full((per_tree, n_trees), np.inf)  # padding never goes right
        nan_right = np.zeros((per_tree, n_trees), dtype=bool)
        cleared = np.zeros((per_tree, n_trees), dtype=dtype)  # padding clears nothing
        leaf_values = np.zeros((n_trees, most))
        for t, ts in enumerate(splits):
            for k, (node, bits) in enumerate(ts):
                feature[k, t] = self.feature[t, node]
                threshold[k, t] = self.threshold[t, node]
                nan_right[k, t] = not self.missing_left[t, node]
                cleared[k, t] = bits
            leaf_values[t, : len(values[t])] = values[t]
        self._q_feature = feature.ravel()
        self._q_threshold = threshold.ravel()
        self._q_nan_right = nan_right.ravel()
        self._q_cleared = cleared.ravel()
        self._q_shape = (per_tree, n_trees)
        self._q_one = dtype(1)
        self._q_values = leaf_values.ravel()
        self._q_leaf_base = np.arange(n_trees, dtype=np.intp) * most

    @staticmethod
    def to_spec(
        baseline: float,
        trees: Sequence[dict[str, Any]],
    ) -> dict[str, Any]:
        """Pack per-tree node lists (feature, threshold, left, right, value, leaf,
        missing_left) into the padded arrays this class reads."""
        width = max(len(t["feature"]) for t in trees)
        cols: dict[str, np.ndarray] = {
            name: np.zeros((len(trees), width), dtype=dt) for name, dt in _NODE_FIELDS
        }
        cols["flags"][:] = 1  # padding nodes are leaves with value 0
        depth = 0
        for i, t in enumerate(trees):
            n = len(t["feature"])
            cols["feature"][i, :n] = t["feature"]
            cols["threshold"][i, :n] = t["threshold"]
            cols["left"][i, :n] = t["left"]
            cols["right"][i, :n] = t["right"]
            cols["value"][i, :n] = t["value"]
            cols["flags"][i, :n] = np.asarray(t["leaf"], dtype=np.uint8) | (
                np.asarray(t["missing_left"], dtype=np.uint8) << 1
            )
            depth = max(depth, int(t.get("depth", n)))
        spec: dict[str, Any] = {"baseline": baseline, "max_depth": depth}
        spec.update({name: encode_array(a) for name, a in cols.items()})
        return spec

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        """Raw scores (log-odds) for a (n, n_features) matrix."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        v = np.take(x, self._q_feature, axis=1)  # every split's feature value, (n, nodes)
        right = v > self._q_threshold  # NaN compares False: decided below
        if np.isnan(x).any():
            right |= np.isnan(v) & self._q_nan_right
        masks = ~(right * self._q_cleared)  # a split sent right rules out its left leaves
        alive = np.bitwise_and.reduce(masks.reshape(len(x), *self._q_shape), axis=1)
        lowest = alive & (~alive + self._q_one)  # the exit leaf's bit
        exit_leaf = np.frexp(lowest.astype(np.float64))[1] - 1  # exact for powers of two
        out: np.ndarray = self.baseline + self._q_values[exit_leaf + self._q_leaf_base].sum(axis=1)
        return out

    def predict_raw_reference(self, x: np.ndarray) -> np.ndarray:
        """The plain node-by-node walk ``predict_raw`` must agree with (tests use it)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        out = np.empty(len(x))
        for k, row in enumerate(x):
            node = self.offset.copy()
            for _ in range(self.depth + 1):
                leaf = self.leaf[node]
                if leaf.all():
                    break
                v = row[self.feature[node]]
                go_left = np.where(np.isnan(v), self.missing_left[node], v <= self.threshold[node])
                nxt = np.where(go_left, self.left[node], self.right[node]) + self.offset
                node = np.where(leaf, node, nxt)
            out[k] = self.baseline + float(self.value[node].sum())
        return out


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0


def _decode_matrix(spec: dict[str, Any]) -> np.ndarray:
    """int8 word vectors with one scale -> unit-norm float32 rows."""
    q = decode_array(spec).astype(np.float32)
    norms = np.linalg.norm(q, axis=1, keepdims=True)
    return np.asarray(q / np.maximum(norms, 1e-6), dtype=np.float32)


class Verifier:
    """Decides whether a cached answer may serve a new prompt; immutable and thread-safe.

    ``check`` is what the cache calls after a FAISS match passed the cosine threshold; ``score``
    is the same decision as a number in [0, 1] for threshold sweeps (0 when a hard veto fires).
    Pass the two sentence vectors when you have them (the cache does: the query's was just
    searched with, the entry's is stored): the learned projection of them is the strongest
    single feature on general questions. Without them the trees fall back to the text features.
    """

    def __init__(
        self,
        forest: _Forest | None,
        cutoff: float,
        vetoes: Sequence[str],
        lexical: _Lexical = _EMPTY_LEX,
        projection: np.ndarray | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        unknown = set(vetoes) - set(VETOES)
        if unknown:
            raise ConfigError(f"verifier model names unknown vetoes: {sorted(unknown)}")
        self.forest = forest
        self.cutoff = float(cutoff)
        self.vetoes = tuple(vetoes)
        self.lexical = lexical
        self.projection = projection
        self.meta = dict(meta or {})
        self._memo = _Memo()

    @classmethod
    def load(cls, path: str | None = None) -> Verifier:
        """Read learned parameters; ``None`` or ``""`` means the file shipped in the package."""
        try:
            if path:
                data = Path(path).read_bytes()
            else:
                data = resources.files(__package__).joinpath(SHIPPED_MODEL).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read verifier model {path or SHIPPED_MODEL}: {exc}") from exc
        try:
            spec = orjson.loads(data)
            return cls.from_spec(spec)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"verifier model {path or SHIPPED_MODEL} is malformed: {exc}"
            ) from exc

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Verifier:
        """Build from the decoded JSON (the training script writes this shape)."""
        names = tuple(spec.get("features", FEATURE_NAMES))
        if names != FEATURE_NAMES:
            raise ConfigError("verifier model was trained on other features; retrain it")
        lex = _EMPTY_LEX
        if "lexical" in spec:
            lx = spec["lexical"]
            words = {w: i for i, w in enumerate(lx.get("words", []))}
            vectors = _decode_matrix(lx["vectors"]) if words else _EMPTY_LEX.vectors
            lex = _Lexical(
                idf=dict(lx.get("idf", {})),
                default_idf=float(lx.get("default_idf", 1.0)),
                words=words,
                vectors=vectors,
            )
        forest = _Forest(spec["forest"]) if spec.get("forest") else None
        proj = (
            decode_array(spec["projection"]).astype(np.float32) if spec.get("projection") else None
        )
        return cls(
            forest=forest,
            cutoff=float(spec.get("cutoff", 0.5)),
            vetoes=tuple(spec.get("vetoes", VETOES)),
            lexical=lex,
            projection=proj,
            meta=spec.get("meta", {}),
        )

    @classmethod
    def rules_only(cls) -> Verifier:
        """The contradiction checks alone, with no learned score (a fallback and for tests)."""
        return cls(forest=None, cutoff=0.5, vetoes=VETOES)

    def with_cutoff(self, cutoff: float | None) -> Verifier:
        """The same model with another probability cutoff (``None``: keep the shipped one)."""
        if cutoff is None:
            return self
        return Verifier(self.forest, cutoff, self.vetoes, self.lexical, self.projection, self.meta)

    @property
    def vectors(self) -> str:
        """The embedder whose vectors the projection was trained on
        (``sidecache.cache.embedder.vectors_id``; models from before adapters say nothing)."""
        return str(self.meta.get("vectors", "bundled"))

    def for_embedder(self, vectors: str) -> Verifier:
        """This model, or a copy that ignores sentence vectors if they come from another embedder.

        A projection trained on other vectors would score nonsense (an adapter moves every
        vector), whereas the trees were also trained on rows without vectors, so judging by the
        text alone is the safe fallback.
        """
        if vectors == self.vectors or self.projection is None:
            return self
        return Verifier(self.forest, self.cutoff, self.vetoes, self.lexical, None, self.meta)

    def project_cosine(self, qvec: np.ndarray | None, cvec: np.ndarray | None) -> float:
        """Cosine after the learned projection, NaN without vectors or projection."""
        if qvec is None or cvec is None or self.projection is None:
            return math.nan
        u = self.projection @ np.asarray(qvec, dtype=np.float32).ravel()
        v = self.projection @ np.asarray(cvec, dtype=np.float32).ravel()
        nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
        return float(u @ v) / (nu * nv) if nu > 0 and nv > 0 else math.nan

    def features(
        self,
        query: str,
        cached: str,
        similarity: float,
        qvec: np.ndarray | None = None,
        cvec: np.ndarray | None = None,
    ) -> np.ndarray:
        """The feature vector the learned score sees (for training and debugging)."""
        qa, ca = self._memo.get(query), self._memo.get(cached)
        return pair_features(
            qa, ca, similarity, self.lexical, proj_cosine=self.project_cosine(qvec, cvec)
        )

    def explain(
        self,
        query: str,
        cached: str,
        similarity: float,
        qvec: np.ndarray | None = None,
        cvec: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Why a pair is accepted or refused: the vetoes that fired and the learned score."""
        qa, ca = self._memo.get(query), self._memo.get(cached)
        found = contradictions(qa, ca)
        prob = self._prob(qa, ca, similarity, found, qvec, cvec)
        active = [v for v in found if v in self.vetoes]
        return {
            "vetoes": active,
            "probability": prob,
            "cutoff": self.cutoff,
            "ok": query == cached or (not active and prob >= self.cutoff),
        }

    def _prob(
        self,
        qa: PromptAnalysis,
        ca: PromptAnalysis,
        similarity: float,
        found: Sequence[str],
        qvec: np.ndarray | None,
        cvec: np.ndarray | None,
    ) -> float:
        if self.forest is None:
            return 1.0
        x = pair_features(qa, ca, similarity, self.lexical, found, self.project_cosine(qvec, cvec))
        return _sigmoid(float(self.forest.predict_raw(x)[0]))

    def score(
        self,
        query: str,
        cached: str,
        similarity: float,
        qvec: np.ndarray | None = None,
        cvec: np.ndarray | None = None,
    ) -> float:
        """Probability that ``cached``'s answer serves ``query``; 0.0 when a hard veto fires."""
        if query == cached:
            return 1.0
        qa, ca = self._memo.get(query), self._memo.get(cached)
        found = contradictions(qa, ca)
        if any(v in self.vetoes for v in found):
            return 0.0
        return self._prob(qa, ca, similarity, found, qvec, cvec)

    def check(
        self,
        query: str,
        cached: str,
        similarity: float,
        qvec: np.ndarray | None = None,
        cvec: np.ndarray | None = None,
    ) -> bool:
        """True when the cached answer may be served for ``query``."""
        return self.score(query, cached, similarity, qvec, cvec) >= self.cutoff
