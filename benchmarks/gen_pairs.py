"""Generate prompt-style pairs for training and judging the hit verifier (deterministic, seeded).

Hand-written pairs are few and the verifier learned their wording; these are many and varied.
Each task of ``gen_tasks.TASKS`` (23 domains) is filled with named things, numbers and poles a
few times; each filled task is rendered in question frames ("How do I ...?", "... - how?",
"What's the best way to ...?", keyword style, ...) and reworded on the surface (filler and
politeness, abbreviations, synonyms, typos, lower case, no punctuation). From one filled task:

- ``paraphrase`` (label 1): two renderings in different frames and surface forms; for a
  symmetric task ("compare X and Y") also X and Y swapped;
- ``negation`` (0): one polarity flipped (with/without, enable/disable, safe/toxic, ...);
- ``number_change`` (0): one number, year, percentage, amount, date or version changed;
- ``entity_swap`` (0): one named thing replaced by another of its type;
- ``direction_swap`` (0): two named things of one type swapped ("from A to B");
- ``added_constraint`` (0): a condition added to one side ("... for a complete beginner",
  "... in under 100 words"): the stored answer ignores it.

Hard negatives are rendered in the same frame about half the time (a minimal edit) and in
another frame otherwise (a reworded contradiction, which minimal-edit data never shows).

Split: tasks of ``DEV_DOMAINS`` go to ``dev`` (never trained on), the rest to ``train``; the
dev domains also get frames the training data never uses (``DEV_FRAMES``).

    python benchmarks/gen_pairs.py                 # writes benchmarks/data/generated_pairs.jsonl
    python benchmarks/gen_pairs.py --per-task 2 --out /tmp/small.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gen_lexicon import (
    ABBREVIATIONS,
    CHOICES,
    CONSTRAINTS,
    ENTITY_LISTS,
    NUMBER_WORDS,
    PREFIXES,
    SUFFIXES,
    SYNONYMS,
)
from gen_rewordings import REWORDINGS
from gen_tasks import TASKS

SEED = 20251202
OUT = Path(__file__).resolve().parent / "data" / "generated_pairs.jsonl"
DEV_DOMAINS = ("pets", "cars", "law", "gardening", "music", "parenting")

FRAMES: dict[str, list[str]] = {
    "how": [
        "How do I {t}?", "How can I {t}?", "How to {t}?", "how to {t}",
        "What's the best way to {t}?", "What is the easiest way to {t}?", "Steps to {t}",
        "Can you explain how to {t}?", "I need to {t}. How do I do that?",
        "Any tips on how to {t}?", "Could you tell me how to {t}?", "{t} - how?",
        "Help me {t}.", "Is there a way to {t}?", "Show me how to {t}.",
        "What do I need to do to {t}?", "{T}: how?", "I want to {t}, what should I do?",
        "how would I {t}", "Explain how I can {t}.", "Guide: {t}", "best way to {t}?",
    ],
    "what": [
        "What is {t}?", "What's {t}?", "Tell me {t}.", "{T}?", "Do you know {t}?",
        "Can you tell me {t}?", "I'd like to know {t}.", "what is {t}", "{t}",
        "Could you explain {t}?", "Quick question: what is {t}?", "Give me {t}.",
        "I need to know {t}.", "Please tell me {t}.", "{T} - what is it?",
    ],
    "do": [
        "{T}.", "Please {t}.", "Can you {t}?", "Could you {t} for me?", "I need you to {t}.",
        "{t} pls", "Help me {t}.", "Would you {t}?", "I'd like you to {t}.", "{T}, please.",
        "{t}", "Hey, {t}.", "Can I get you to {t}?", "I want you to {t}.",
    ],
    "why": [
        "{T}. Why?", "{T} - why?", "Why is it that {t}?", "What could be the reason {t}?",
        "Any idea why {t}?", "{T}, what's going on?", "Can you explain why {t}?",
        "{t}, why", "Help: {t}. What's the cause?", "I don't understand why {t}.",
    ],
    "q": ["{T}"],
}  # fmt: skip
"""Question frames per task kind; ``{t}`` is the task, ``{T}`` the same capitalised."""

DEV_FRAMES: dict[str, list[str]] = {
    "how": ["{T}? Walk me through it.", "What are the steps to {t}?", "{t} (how)"],
    "what": ["What can you tell me about {t}?", "{T}: what is it?"],
    "do": ["I'd appreciate it if you could {t}.", "Task: {t}."],
    "why": ["Why? {T}.", "Do you know why {t}?"],
    "q": [],
}  # fmt: skip
"""Frames only the dev split is rendered in (a rewording training never saw)."""

_MARKUP = re.compile(
    r"\{(?P<pole>[^{}]*\|[^{}]*)\}"
    r"|\((?P<syn>[^()]*/[^()]*)\)"
    r"|\[(?P<ent>\w+)(?:#(?P<k>\d))?\]"
    r"|<(?P<num>\w+):(?P<arg>[^<>]+)>"
)


@dataclass
class Slot:
    """One markup element of a task."""

    kind: str  # pole, syn, ent, num
    arg: str
    key: str = ""  # what the same slot is called in every wording: pole0, num1, city#2
    wordable: bool = False  # a number that may be written as a word


Parts = list[str | Slot]


@dataclass
class Task:
    domain: str
    kind: str
    parts: Parts
    symmetric: bool
    wordings: list[tuple[str, Parts]] = field(default_factory=list)
    """Every wording of the task, the first being (kind, parts); another wording asks the same
    with other words (``gen_rewordings.REWORDINGS``) and has the same slots."""


@dataclass
class Filled:
    """A task with its named things, numbers and poles chosen (by slot key)."""

    task: Task
    poles: dict[str, int] = field(default_factory=dict)
    values: dict[str, str | int] = field(default_factory=dict)


def parse_parts(text: str) -> Parts:
    parts: Parts = []
    pos = 0
    counts = {"pole": 0, "num": 0}
    for m in _MARKUP.finditer(text):
        parts.append(text[pos : m.start()])
        if m["pole"] is not None:
            parts.append(Slot("pole", m["pole"], key=f"pole{counts['pole']}"))
            counts["pole"] += 1
        elif m["syn"] is not None:
            parts.append(Slot("syn", m["syn"]))
        elif m["ent"] is not None:
            parts.append(Slot("ent", m["ent"], key=f"{m['ent']}#{m['k'] or 1}"))
        else:
            before, after = text[: m.start()], text[m.end() :]
            wordable = (
                m["num"] == "n"
                and (not before or before[-1] == " ")
                and (not after or after[0] in " -")
            )
            parts.append(
                Slot("num", f"{m['num']}:{m['arg']}", key=f"num{counts['num']}", wordable=wordable)
            )
            counts["num"] += 1
        pos = m.end()
    parts.append(text[pos:])
    return parts


def _keys(parts: Parts) -> set[str]:
    return {p.key for p in parts if isinstance(p, Slot) and p.kind != "syn"}


def parse(domain: str, kind: str, text: str, rewordings: Sequence[tuple[str, str]] = ()) -> Task:
    symmetric = text.startswith("~")
    parts = parse_parts(text.removeprefix("~"))
    task = Task(domain, kind, parts, symmetric, [(kind, parts)])
    for k, alt in rewordings:
        alt_parts = parse_parts(alt)
        if _keys(alt_parts) != _keys(parts):
            raise ValueError(f"rewording {alt!r} of {text!r} has other slots")
        task.wordings.append((k, alt_parts))
    return task


def _number(spec: str, rng: random.Random, avoid: str | int | None = None) -> str | int:
    kind, arg = spec.split(":", 1)
    if kind == "c":
        options = [c for c in CHOICES[arg] if c != avoid]
        return rng.choice(options)
    lo, hi = (int(x) for x in arg.split("-"))
    for _ in range(50):
        if avoid is None:
            v = rng.randint(lo, hi)
        else:
            a = int(avoid)
            v = rng.choice(
                [rng.randint(lo, hi), a + rng.choice([-3, -2, -1, 1, 2, 5, 10]), a * 2, a * 10]
            )
            if kind == "year":
                v = a + rng.choice([-20, -10, -5, -2, -1, 1, 2, 4, 10])
        if v != avoid and v > 0:
            return v
    return int(avoid or lo) + 1


def fill(task: Task, rng: random.Random) -> Filled:
    f = Filled(task)
    used: dict[str, set[str]] = {}
    for p in task.parts:
        if not isinstance(p, Slot) or p.kind == "syn" or p.key in f.values or p.key in f.poles:
            continue
        if p.kind == "pole":
            f.poles[p.key] = rng.randint(0, 1)
        elif p.kind == "ent":
            taken = used.setdefault(p.arg, set())
            f.values[p.key] = rng.choice([e for e in ENTITY_LISTS[p.arg] if e not in taken])
            taken.add(str(f.values[p.key]))
        elif p.kind == "num":
            f.values[p.key] = _number(p.arg, rng)
    return f


def render_task(f: Filled, rng: random.Random, parts: Parts | None = None) -> str:
    out = []
    for p in f.task.parts if parts is None else parts:
        if not isinstance(p, Slot):
            out.append(p)
        elif p.kind == "pole":
            out.append(rng.choice(p.arg.split("|")[f.poles[p.key]].split(",")).strip())
        elif p.kind == "syn":
            out.append(rng.choice(p.arg.split("/")).strip())
        elif p.kind == "ent":
            out.append(str(f.values[p.key]))
        else:
            v = f.values[p.key]
            kind = p.arg.split(":", 1)[0]
            if kind == "pct":
                out.append(f"{v}%" if rng.random() < 0.6 else f"{v} percent")
            elif kind == "money":
                out.append(f"${v}" if rng.random() < 0.6 else f"{v} dollars")
            elif p.wordable and isinstance(v, int) and v in NUMBER_WORDS and rng.random() < 0.3:
                out.append(NUMBER_WORDS[v])
            else:
                out.append(str(v))
    return re.sub(r"\s+", " ", "".join(out)).strip()


def render(
    f: Filled, frame: str, rng: random.Random, extra: str = "", parts: Parts | None = None
) -> str:
    t = render_task(f, rng, parts) + (f" {extra}" if extra else "")
    text = frame.replace("{T}", t[:1].upper() + t[1:]).replace("{t}", t)
    return text[:1].upper() + text[1:] if frame.startswith("{t}") and rng.random() < 0.5 else text


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randint(1, len(word) - 3)
    if rng.random() < 0.5:
        typo = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    else:
        typo = word[:i] + word[i + 1 :]
    return word if typo.lower() in _NUMBER_SPELLINGS else typo  # "there" -> "three" asks more


_NUMBER_SPELLINGS = frozenset(NUMBER_WORDS.values())


def surface(text: str, rng: random.Random, strength: float = 1.0) -> str:
    """Reword without changing what is asked: synonyms, abbreviations, filler, case, typos."""
    p = strength
    if rng.random() < 0.35 * p:
        for a, b in rng.sample(SYNONYMS, len(SYNONYMS)):
            x, y = (a, b) if rng.random() < 0.5 else (b, a)
            new = re.sub(rf"\b{re.escape(x)}\b", y, text, count=1)
            if new != text:
                text = new
                break
    if rng.random() < 0.2 * p:
        for a, b in rng.sample(sorted(ABBREVIATIONS.items()), len(ABBREVIATIONS)):
            if a == "to":
                new = re.sub(r"\bhow to\b", "how 2", text, count=1, flags=re.IGNORECASE)
            else:
                new = re.sub(rf"\b{re.escape(a)}\b", b, text, count=1)
            if new != text:
                text = new
                if rng.random() < 0.5:
                    break
    if rng.random() < 0.15 * p:
        words = [(m.start(), m.group()) for m in re.finditer(r"[A-Za-z]{5,}", text)]
        if words:
            at, w = rng.choice(words)
            text = text[:at] + _typo(w, rng) + text[at + len(w) :]
    if rng.random() < 0.2 * p:
        text = rng.choice(PREFIXES) + (text[:1].lower() + text[1:] if rng.random() < 0.5 else text)
    if rng.random() < 0.15 * p:
        text = text.rstrip() + rng.choice(SUFFIXES)
    if rng.random() < 0.25 * p:
        text = text.lower()
    if rng.random() < 0.2 * p:
        text = text.rstrip("?.! ")
    return text


def _frames(kind: str, split: str) -> list[str]:
    return FRAMES[kind] + (DEV_FRAMES[kind] if split == "dev" else [])


def _two_frames(kind: str, split: str, rng: random.Random, same: bool) -> tuple[str, str]:
    frames = _frames(kind, split)
    if same or len(frames) == 1:
        f = rng.choice(frames)
        return f, f
    a, b = rng.sample(frames, 2)
    return a, b


def _two_wordings(task: Task, rng: random.Random, reword: float) -> list[tuple[str, Parts]]:
    """Two wordings of a task: two different ones with probability ``reword`` (when it has
    more than one), else the same one twice."""
    if len(task.wordings) > 1 and rng.random() < reword:
        return rng.sample(task.wordings, 2)
    w = rng.choice(task.wordings)
    return [w, w]


def _render_two(
    f: Filled, g: Filled, split: str, rng: random.Random, same_frame: bool, reword: float
) -> tuple[str, str]:
    (ka, pa), (kb, pb) = _two_wordings(f.task, rng, reword)
    if ka == kb:
        fa, fb = _two_frames(ka, split, rng, same=same_frame)
    else:
        fa, fb = rng.choice(_frames(ka, split)), rng.choice(_frames(kb, split))
    return render(f, fa, rng, parts=pa), render(g, fb, rng, parts=pb)


def pairs_for(f: Filled, split: str, rng: random.Random, n_para: int) -> list[dict[str, object]]:
    """The paraphrases and hard negatives of one filled task."""
    task = f.task
    out: list[dict[str, object]] = []

    def add(a: str, b: str, label: int, category: str) -> None:
        if a.strip().lower() != b.strip().lower():
            out.append(
                {
                    "a": a,
                    "b": b,
                    "label": label,
                    "category": category,
                    "split": split,
                    "domain": task.domain,
                }
            )

    for _ in range(n_para):
        a, b = _render_two(f, f, split, rng, same_frame=rng.random() < 0.2, reword=0.8)
        add(surface(a, rng), surface(b, rng), 1, "paraphrase")

    def negative(g: Filled, category: str) -> None:
        a, b = _render_two(f, g, split, rng, same_frame=rng.random() < 0.5, reword=0.5)
        if rng.random() < 0.5:
            a, b = surface(a, rng, 0.6), surface(b, rng, 0.6)
        if rng.random() < 0.5:
            a, b = b, a
        add(a, b, 0, category)

    if task.kind != "q" and rng.random() < 0.5:
        fa, fb = _two_frames(task.kind, split, rng, same=rng.random() < 0.5)
        a, b = render(f, fa, rng), render(f, fb, rng, extra=rng.choice(CONSTRAINTS))
        if rng.random() < 0.5:
            a, b = surface(a, rng, 0.6), surface(b, rng, 0.6)
        if rng.random() < 0.5:
            a, b = b, a
        add(a, b, 0, "added_constraint")

    slots = [p for p in task.parts if isinstance(p, Slot)]
    poles = sorted({p.key for p in slots if p.kind == "pole"})
    if poles:
        key = rng.choice(poles)
        g = Filled(task, dict(f.poles), dict(f.values))
        g.poles[key] = 1 - g.poles[key]
        negative(g, "negation")
    nums = sorted({p.key for p in slots if p.kind == "num"})
    if nums:
        key = rng.choice(nums)
        g = Filled(task, dict(f.poles), dict(f.values))
        spec = next(p.arg for p in slots if p.key == key)
        g.values[key] = _number(spec, rng, avoid=f.values[key])
        negative(g, "number_change")
    ents = sorted({(p.key, p.arg) for p in slots if p.kind == "ent"})
    if ents:
        key, typ = rng.choice(ents)
        taken = {str(v) for v in f.values.values()}
        g = Filled(task, dict(f.poles), dict(f.values))
        g.values[key] = rng.choice([e for e in ENTITY_LISTS[typ] if e not in taken])
        negative(g, "entity_swap")
    for t in sorted({typ for _, typ in ents}):
        k1, k2 = f"{t}#1", f"{t}#2"
        if k1 in f.values and k2 in f.values:
            g = Filled(task, dict(f.poles), dict(f.values))
            g.values[k1], g.values[k2] = f.values[k2], f.values[k1]
            if task.symmetric:
                a, b = _render_two(f, g, split, rng, same_frame=False, reword=0.8)
                add(surface(a, rng), surface(b, rng), 1, "paraphrase")
            else:
                negative(g, "direction_swap")
    return out


def generate(per_task: int = 4, n_para: int = 2, seed: int = SEED) -> list[dict[str, object]]:
    """All pairs, in a fixed order (one random generator per task, so that editing one task
    leaves the others' pairs as they were)."""
    rows: list[dict[str, object]] = []
    known = {(domain, text) for domain, tasks in TASKS.items() for _, text in tasks}
    if unknown := sorted(set(REWORDINGS) - known):
        raise ValueError(f"rewordings of tasks that do not exist: {unknown}")
    for domain in sorted(TASKS):
        split = "dev" if domain in DEV_DOMAINS else "train"
        for k, (kind, text) in enumerate(TASKS[domain]):
            rng = random.Random(f"{seed}:{domain}:{k}:{text}")
            task = parse(domain, kind, text, REWORDINGS.get((domain, text), ()))
            for _ in range(per_task):
                rows.extend(pairs_for(fill(task, rng), split, rng, n_para))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--per-task", type=int, default=4, help="fillings of each task")
    ap.add_argument("--paraphrases", type=int, default=2, help="paraphrase pairs per filling")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    rows = generate(args.per_task, args.paraphrases, args.seed)
    with open(args.out, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    counts = Counter((str(r["split"]), str(r["category"])) for r in rows)
    print(f"wrote {len(rows)} pairs to {args.out}")
    for (split, cat), n in sorted(counts.items()):
        print(f"  {split:6s} {cat:15s} {n}")


if __name__ == "__main__":
    main()
