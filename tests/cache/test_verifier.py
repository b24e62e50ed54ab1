"""The hit verifier: each kind of hard negative is refused, paraphrases pass, the file loads.

The examples are written for these tests (not taken from the training pairs). They are embedded
with the gateway's production embedder (ONNX int8, from ``conftest``), so the verifier sees the
similarity and the vectors the cache would give it after a FAISS match.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from sidecache.cache.embedder import Embedder
from sidecache.cache.verifier import (
    FEATURE_NAMES,
    VETOES,
    Verifier,
    analyse,
    contradictions,
    model_file,
)
from sidecache.config import CacheConfig, ModelAlias, Target, VerifierConfig
from sidecache.errors import ConfigError


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier.load()


Embedded = tuple[float, np.ndarray, np.ndarray]


@pytest.fixture(scope="module")
def embed(embedder: Embedder) -> dict[tuple[str, str], Embedded]:
    """(similarity, vector a, vector b) for every pair below, in one batch."""
    all_pairs = [p for ps in HARD_NEGATIVES.values() for p in ps] + PARAPHRASES
    texts = [t for p in all_pairs for t in p]
    vecs = embedder.encode(texts)
    out = {}
    for i, p in enumerate(all_pairs):
        va, vb = vecs[2 * i], vecs[2 * i + 1]
        out[p] = (float(va @ vb), va, vb)
    return out


def vetoes(a: str, b: str) -> list[str]:
    return contradictions(analyse(a), analyse(b))


HARD_NEGATIVES = {
    "negation": [
        (
            "How do I make my script run at startup?",
            "How do I make my script not run at startup?",
        ),
        ("Why is my phone charging?", "Why is my phone not charging?"),
        ("Which laptops have a backlit keyboard?", "Which laptops don't have a backlit keyboard?"),
    ],
    "antonym": [
        ("How do I enable SSH on the router?", "How do I disable SSH on the router?"),
        (
            "Sort the users by signup date in ascending order.",
            "Sort the users by signup date in descending order.",
        ),
        (
            "How do I upload a folder to Google Drive?",
            "How do I download a folder from Google Drive?",
        ),
        ("How do I log in to the admin panel?", "How do I log out of the admin panel?"),
    ],
    "number": [
        ("Write a haiku with 3 lines about rain.", "Write a poem with 12 lines about rain."),
        ("How do I install Node 18 on Debian?", "How do I install Node 20 on Debian?"),
        ("Give me a 10-minute ab workout.", "Give me a 30-minute ab workout."),
        ("Is 120/80 a normal blood pressure?", "Is 140/90 a normal blood pressure?"),
    ],
    "unit": [
        ("How many grams of flour for one loaf?", "How many cups of flour for one loaf?"),
        ("Convert 5 GB to MB.", "Convert 5 TB to MB."),
    ],
    "date": [
        (
            "What holidays are there in France in May?",
            "What holidays are there in France in August?",
        ),
        ("Move my dentist appointment to Friday.", "Move my dentist appointment to Monday."),
    ],
    "direction": [
        (
            "How do I move files from Dropbox to OneDrive?",
            "How do I move files from OneDrive to Dropbox?",
        ),
        ("Is Go faster than Java for web servers?", "Is Java faster than Go for web servers?"),
        (
            "Translate this paragraph from Italian to Polish.",
            "Translate this paragraph from Polish to Italian.",
        ),
        (
            "Should the company pay the contractor a deposit?",
            "Should the contractor pay the company a deposit?",
        ),
    ],
    "tech": [
        ("How do I read a YAML file in Python?", "How do I read a YAML file in Ruby?"),
        ("How do I add a dark mode toggle in React?", "How do I add a dark mode toggle in Svelte?"),
        ("How do I back up a MySQL database?", "How do I back up a MongoDB database?"),
    ],
    "entity": [
        (
            "What is the best way to get from the airport to the centre of Porto?",
            "What is the best way to get from the airport to the centre of Seville?",
        ),
        (
            "What does the parseConfig() function return?",
            "What does the loadConfig() function return?",
        ),
        ("Who wrote the novel Middlemarch?", "Who wrote the novel Frankenstein?"),
    ],
}

PARAPHRASES = [
    ("How do I undo the last commit in git?", "git: how to revert my most recent commit"),
    ("What's the best way to learn Spanish quickly?", "How can I learn Spanish fast?"),
    (
        "Can you please summarise this article in three sentences?",
        "Summarize this article in 3 sentences.",
    ),
    (
        "how do i remove duplicates form a list in python",
        "How do I remove duplicates from a list in Python?",
    ),
    ("What are some tips for sleeping better?", "Give me tips to improve my sleep, please."),
    (
        "Write a function that checks whether a number is prime.",
        "Could you write a function to check if a number is prime?",
    ),
    ("How do I centre a div with CSS?", "css: center a div"),
    ("What is the capital city of Canada?", "Which city is the capital of Canada?"),
    ("Explain how a hash map works.", "How does a hash map work? Explain."),
    (
        "How do I find which process uses port 3000?",
        "Which process is listening on port 3000, how do I find out?",
    ),
]


@pytest.mark.parametrize(
    ("kind", "a", "b"),
    [(k, a, b) for k, pairs in HARD_NEGATIVES.items() for a, b in pairs],
)
def test_hard_negative_refused(
    verifier: Verifier, embed: dict[tuple[str, str], Embedded], kind: str, a: str, b: str
) -> None:
    sim, va, vb = embed[(a, b)]
    # whatever the threshold let through, the verifier must refuse, both ways round
    assert not verifier.check(a, b, sim, qvec=va, cvec=vb), verifier.explain(a, b, sim, va, vb)
    assert not verifier.check(b, a, sim, qvec=vb, cvec=va)
    assert not verifier.check(a, b, sim)  # without vectors too


@pytest.mark.parametrize(
    ("kind", "a", "b"),
    [(k, a, b) for k, pairs in HARD_NEGATIVES.items() for a, b in pairs if k in VETOES],
)
def test_each_category_named_by_its_rule(kind: str, a: str, b: str) -> None:
    """The rule layer alone names the contradiction (the model is not needed for these)."""
    found = vetoes(a, b)
    assert found, (a, b)
    if kind in ("negation", "direction", "number", "tech"):
        assert kind in found, found


@pytest.mark.parametrize(("a", "b"), PARAPHRASES)
def test_paraphrase_not_vetoed(a: str, b: str) -> None:
    assert vetoes(a, b) == [], vetoes(a, b)


REWORDED_FLIPS = [
    # a negation or an opposite, with the rest of the prompt worded differently
    ("How do I bake cookies with sugar?", "sugar-free cookie recipe, please"),
    ("Best way to bake bread with yeast", "Can I bake bread w/o yeast?"),
    ("Why does my kettle switch off by itself?", "my kettle won't switch off, why"),
    ("How do I turn on location sharing on my phone?", "phone: disable location sharing"),
    ("Which snacks are healthy for toddlers?", "what snacks are unhealthy for a toddler"),
    ("Is it legal to fly a drone over a park?", "Why is flying a drone over a park forbidden?"),
    ("How can I make the font bigger in Word?", "Word: shrink the font size"),
    ("List the benefits of a standing desk.", "What are the downsides of standing desks?"),
    ("How do I unblock a number on Android?", "Android: how to block a number"),
    ("Prove that pi is irrational.", "How would I prove pi is rational?"),
    (
        "How to include weekends in a date range in Excel",
        "Excel date range that leaves out weekends",
    ),
    (
        "Why does my sourdough rise overnight?",
        "I don't understand why my sourdough fails to rise overnight.",
    ),
    ("Tips for keeping my cat near the balcony", "How do I keep my cat away from the balcony?"),
    (
        "How do I let guests use my Wi-Fi?",
        "How can I stop guests using my Wi-Fi? I want to prohibit it.",
    ),
    ("Write an email accepting the job offer.", "email turning down a job offer"),
    ("Why does my cat scratch the door?", "How do I keep my cat from scratching the door?"),
    ("Can I bring food into the stadium?", "Why is outside food banned at the stadium?"),
    (
        "Is it normal for a 2 year old to not talk yet?",
        "Is it not normal for a 2 year old to not talk yet?",
    ),
]

SAME_ASK_OTHER_FUNCTION_WORDS = [
    # the same question, with negations, "to"/"from" or numbers worded differently
    ("Is tap water not safe to drink in Lima?", "Is tap water unsafe to drink in Lima?"),
    (
        "How do I not include hidden files in the zip?",
        "How do I exclude hidden files from the zip?",
    ),
    ("how 2 convert 5 km to miles", "How do I convert 5 km to miles?"),
    ("Run a cron job every 15 mins", "How do I run a cron job every 15 minutes?"),
    ("Hey, quick one: how do I merge two branches in git?", "How do I merge 2 branches in git?"),
    ("I don't understand why my bread doesn't rise.", "Why doesn't my bread rise?"),
    ("gluten-free pizza dough recipe", "How do I make pizza dough without gluten?"),
    ("pancakes w/o eggs", "How can I make pancakes without eggs?"),
    ("How far is Lyon from Geneva?", "how far is geneva from lyon"),
    ("How can I make pancakes withut eggs?", "egg-free pancakes?"),
    ("How do I exit vim?", "how to quit vim editor"),
    ("How do I log in to Slack on my phone?", "logging in to slack on a phone"),
]


@pytest.mark.parametrize(("a", "b"), REWORDED_FLIPS)
def test_reworded_flip_vetoed(a: str, b: str) -> None:
    found = vetoes(a, b)
    assert {"negation", "antonym"} & set(found), (a, b, found)
    assert {"negation", "antonym"} & set(vetoes(b, a))


@pytest.mark.parametrize(("a", "b"), SAME_ASK_OTHER_FUNCTION_WORDS)
def test_same_ask_not_vetoed(a: str, b: str) -> None:
    assert vetoes(a, b) == [], vetoes(a, b)
    assert vetoes(b, a) == []


def test_negation_scope_is_recorded() -> None:
    an = analyse("Write a SQL query for customers who did not place an order last month.")
    assert an.negations == 1 and {"plac", "order"} <= an.negated  # stems
    assert analyse("I'm not sure how to cook rice").negations == 0  # a frame, not a polarity


def test_paraphrases_accepted(verifier: Verifier, embed: dict[tuple[str, str], Embedded]) -> None:
    """The learned score is a probability: all but at most one of these must pass."""
    refused = [
        (a, b, verifier.explain(a, b, s, va, vb))
        for a, b in PARAPHRASES
        for s, va, vb in [embed[(a, b)]]
        if not verifier.check(a, b, s, qvec=va, cvec=vb)
    ]
    assert len(refused) <= 1, refused


def test_most_paraphrases_accepted_without_vectors(
    verifier: Verifier, embed: dict[tuple[str, str], Embedded]
) -> None:
    ok = [verifier.check(a, b, embed[(a, b)][0]) for a, b in PARAPHRASES]
    assert sum(ok) >= 0.7 * len(ok), ok


def test_identical_prompt_always_accepted(verifier: Verifier) -> None:
    text = "Is it not true that 2 + 2 = 5?"
    assert verifier.check(text, text, 1.0)
    assert verifier.score(text, text, 1.0) == 1.0


def test_vectors_change_the_score_but_not_the_interface(verifier: Verifier) -> None:
    rng = np.random.default_rng(0)
    u = rng.normal(size=384).astype(np.float32)
    u /= np.linalg.norm(u)
    a, b = PARAPHRASES[1]
    with_vecs = verifier.score(a, b, 0.9, qvec=u, cvec=u)
    without = verifier.score(a, b, 0.9)
    assert 0.0 <= with_vecs <= 1.0 and 0.0 <= without <= 1.0
    assert isinstance(verifier.check(a, b, 0.9, qvec=u, cvec=u), bool)


def test_shipped_file_loads_and_is_small() -> None:
    assert len(model_file.read_model_bytes()) < 5_000_000
    ver = Verifier.load(None)
    assert ver.forest is not None and ver.forest.n_trees > 0
    assert ver.projection is not None and ver.projection.shape == (384, 384)
    assert 0.0 < ver.cutoff < 1.0
    assert len(ver.lexical.words) > 1000
    assert Verifier.load("").cutoff == ver.cutoff


def test_explicit_path_and_errors(tmp_path: Path) -> None:
    shipped = Verifier.load()
    spec = orjson.loads(model_file.read_model_bytes())
    spec["cutoff"] = 0.25
    p = tmp_path / "v.json"
    p.write_bytes(orjson.dumps(spec))
    assert Verifier.load(str(p)).cutoff == 0.25
    assert shipped.with_cutoff(0.7).cutoff == 0.7
    with pytest.raises(ConfigError):
        Verifier.load(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError):
        Verifier.load(str(tmp_path / "bad.json"))
    spec["features"] = ["cosine"]
    (tmp_path / "old.json").write_bytes(orjson.dumps(spec))
    with pytest.raises(ConfigError):
        Verifier.load(str(tmp_path / "old.json"))


def test_rules_only_verifier_still_vetoes() -> None:
    ver = Verifier.rules_only()
    assert not ver.check("How do I enable cookies?", "How do I disable cookies?", 0.95)
    assert ver.check("How do I enable cookies?", "how to enable cookies", 0.95)


def test_features_are_finite_and_named(verifier: Verifier) -> None:
    f = verifier.features("How do I sort a list?", "Sort a list in Python", 0.8)
    assert f.shape == (len(FEATURE_NAMES),)
    proj_col = FEATURE_NAMES.index("proj_cosine")
    assert np.isnan(f[proj_col])  # no vectors given
    assert np.isfinite(np.delete(f, proj_col)).all()


def test_config_fields() -> None:
    cfg = CacheConfig()
    assert isinstance(cfg.verifier, VerifierConfig) and cfg.verifier.enabled
    assert cfg.verifier.model_path == "" and cfg.verifier.cutoff is None
    alias = ModelAlias(targets=[Target(target="p/m")], verifier=False)
    assert alias.verifier is False


def test_speed_and_thread_safety(
    verifier: Verifier, embed: dict[tuple[str, str], Embedded]
) -> None:
    """Sanity only (no timed assert): the gateway measures the real figure."""
    items = list(embed.items())
    expected = [verifier.check(a, b, s, qvec=va, cvec=vb) for (a, b), (s, va, vb) in items]
    results: list[list[bool]] = []

    def worker() -> None:
        results.append([verifier.check(a, b, s, qvec=va, cvec=vb) for (a, b), (s, va, vb) in items])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    assert all(r == expected for r in results)
    assert elapsed < 30  # 4 x ~40 checks; milliseconds in practice


def test_forest_walk_matches_the_plain_walk() -> None:
    """The table-driven forest walk gives the same raw scores as a node-by-node walk."""
    forest = Verifier.load().forest
    assert forest is not None
    rng = np.random.default_rng(7)
    n_features = int(forest.feature.max()) + 1
    x = rng.normal(size=(64, n_features))
    x[rng.random(x.shape) < 0.1] = np.nan  # missing values take each node's learned side
    np.testing.assert_array_equal(forest.predict_raw(x), forest.predict_raw_reference(x))


def test_a_projection_for_other_vectors_is_set_aside(
    verifier: Verifier, embed: dict[tuple[str, str], Embedded]
) -> None:
    """Another embedder (an adapter added or removed) moves every vector: the projection
    trained on the old ones must not score the new ones, the text features still do."""
    assert verifier.for_embedder(verifier.vectors) is verifier
    other = verifier.for_embedder("model:something-else")
    assert other.projection is None and other.cutoff == verifier.cutoff
    a, b = next(iter(embed))
    sim, u, v = embed[(a, b)]
    assert other.score(a, b, sim, u, v) == other.score(a, b, sim)
    assert Verifier.rules_only().for_embedder("anything").projection is None
