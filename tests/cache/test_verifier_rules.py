"""The contradiction rules on prompts reworded the way people reword them.

Written for these tests (none is taken from a pair file): a negation that only adds a detail
the other prompt never mentions is no flip, a negation that moved is one, opposites said with
other words, one thing swapped for another in an otherwise identical prompt, and the small
tokens ("US", "first in the ...") that used to be read as something else.
"""

from __future__ import annotations

import numpy as np
import pytest

from sidecache.cache.verifier import FEATURE_NAMES, Verifier, analyse, contradictions


def found(a: str, b: str) -> set[str]:
    """The contradictions both ways round (the rules are meant to be symmetric)."""
    one, two = (
        set(contradictions(analyse(a), analyse(b))),
        set(contradictions(analyse(b), analyse(a))),
    )
    assert one == two, (a, b, one, two)
    return one


NEGATION_ADDS_A_DETAIL = [
    # one side negates something the other never talks about: the same ask
    (
        "How do I list the files in a folder?",
        "which command shows a folder's contents, not the hidden ones",
    ),
    ("Give me an easy lasagna recipe", "lasagna recipe for a beginner, nothing complicated"),
    ("What should I see in Lisbon?", "2 days in lisbon, which sights shouldn't I skip?"),
    (
        "How do I get my cat to use a scratching post?",
        "my cat ignores the post and won't stop clawing the couch, help",
    ),
    ("Home workout for arms", "arm exercises I can do in my flat without any weights"),
    (
        "How can I learn guitar chords fast?",
        "fastest way to memorise guitar chords if I can't read music",
    ),
]

NEGATION_FLIPS = [
    # the negated words are on both sides: a flip, however the rest is worded
    ("Which houseplants can live in low light?", "Which houseplants cannot live in low light?"),
    ("Foods I can eat with gout", "foods I should never eat when I have gout"),
    ("Why does my laptop charge overnight?", "laptop won't charge overnight, why"),
    # the negation moved from one word to the other
    ("A shape that is convex but not regular", "A shape that is regular but not convex"),
    ("Cats that shed a lot", "Cats that hardly shed"),
]

OPPOSITES = [
    ("How do I tighten the strings on my guitar?", "How do I loosen the strings on my guitar?"),
    ("Which magnets attract each other?", "Which magnets repel each other?"),
    ("Mushrooms in my lawn that are edible", "Mushrooms in my lawn that are poisonous"),
    ("Which diets are effective for weight loss?", "Which diets are ineffective for weight loss?"),
    (
        "Is it appropriate to wear jeans to a wedding?",
        "Is it inappropriate to wear jeans to a wedding?",
    ),
    ("How do I make my brownies chewier?", "how do i make my brownies crunchier"),
    ("Which lenses converge light?", "Which lenses diverge light?"),
    (
        "Cars that hold their value longer than 5 years",
        "Cars that hold their value less than 5 years",
    ),
    ("How do I install a dishwasher?", "How do I remove a dishwasher?"),
    ("Ad campaigns that work for startups", "ad campaigns that usually fail for startups"),
]

SWAPS = [
    # one thing replaced by another in an otherwise identical prompt
    ("What wine goes well with duck?", "What wine goes well with tuna?"),
    ("Best hiking boots for wide feet", "Best running shoes for wide feet"),
    ("How long do I steam broccoli?", "How long do I steam asparagus?"),
    ("What caused the fall of the Inca empire?", "What caused the fall of the Maya empire?"),
    ("Examples of herbivorous dinosaurs", "Examples of carnivorous dinosaurs"),
    ("Who painted the Night Watch?", "Who painted the Milkmaid?"),
]

NOT_SWAPS = [
    # framing words, typos and reworded prompts are not swaps
    ("best way to store fresh basil", "tips to store fresh basil"),
    ("How do I remove duplicates from a list?", "How do I remove dupliates from a list?"),
    ("How do I learn to juggle?", "I want to pick up juggling as a hobby, where do I begin?"),
    ("Is tap water not safe to drink in Lima?", "Is tap water unsafe to drink in Lima?"),
]


@pytest.mark.parametrize(("a", "b"), NEGATION_ADDS_A_DETAIL)
def test_a_negated_detail_is_no_flip(a: str, b: str) -> None:
    assert "negation" not in found(a, b)


@pytest.mark.parametrize(("a", "b"), NEGATION_FLIPS)
def test_negation_flips(a: str, b: str) -> None:
    assert "negation" in found(a, b)


@pytest.mark.parametrize(("a", "b"), OPPOSITES)
def test_opposites(a: str, b: str) -> None:
    assert {"antonym", "negation"} & found(a, b)


@pytest.mark.parametrize(("a", "b"), SWAPS)
def test_swaps(a: str, b: str) -> None:
    assert "swap" in found(a, b)


@pytest.mark.parametrize(("a", "b"), NOT_SWAPS)
def test_not_swaps(a: str, b: str) -> None:
    assert "swap" not in found(a, b)


def test_us_is_a_country_after_the_sentence_start() -> None:
    assert "usa" in analyse("Is tipping expected in the US?").entities
    assert "entity" in found("Is tipping expected in the US?", "Is tipping expected in Japan?")
    assert "usa" not in analyse("Tell us about tipping").tokens


def test_in_after_a_number_is_a_preposition_before_a_determiner() -> None:
    assert analyse("stretch first or lift first in the morning?").quantities == ()
    assert analyse("stretch first or lift first in the morning?").units == frozenset()
    assert analyse("convert 5 in to cm").quantities == (("5", "inch"),)
    assert "number" not in found(
        "Stretch before or after lifting?", "stretch first or lift first in the morning?"
    )


def test_edit_spans_counts_the_places_that_differ() -> None:
    ver = Verifier.rules_only()
    col = FEATURE_NAMES.index("edit_spans")
    one = ver.features("What wine goes well with duck?", "What wine goes well with tuna?", 0.8)
    many = ver.features("How do I learn to juggle?", "juggling for beginners: where to start", 0.7)
    assert one[col] == 1.0
    assert many[col] >= 2.0
    assert np.isfinite(one).sum() == len(FEATURE_NAMES) - 1  # all but proj_cosine


DIRECTIONS = [
    # the same two ends with other direction words: "into"/"onto" are "to", "out of the" is "from"
    (
        "copy a file from my laptop into a running container",
        "copy a file out of a running container to my laptop",
    ),
    ("move money from savings into checking", "move money from checking to savings"),
]


@pytest.mark.parametrize(("a", "b"), DIRECTIONS)
def test_direction_words_said_another_way(a: str, b: str) -> None:
    assert "direction" in found(a, b)


def test_into_and_to_are_the_same_direction() -> None:
    assert "direction" not in found("convert a string into an int", "convert a string to an int")
    assert analyse("I ran out of memory").tokens[-2:] == ("of", "memory")  # no source


def test_a_negated_word_counts_through_its_pole() -> None:
    # "should not eat" against "safe": the negation is about what the other prompt asks
    assert "negation" in found("Foods that are safe for toddlers", "foods toddlers should not eat")
    assert "antonym" in found("Human foods cats can eat", "Human foods that are toxic to cats")
    assert not found("foods cats can't eat", "foods that are toxic to cats")


def test_a_number_with_thousands_separators_is_one_number() -> None:
    assert analyse("pay off $19,000 of debt").numbers == ("19000",)
    assert not {"number", "unit"} & found("I owe 19k on my cards", "pay off $19,000 of card debt")
    assert analyse("numbers 1,2,3").numbers == ("1", "2", "3")


OPPOSED_BY_PREFIX = [
    ("symptoms of hypertension", "symptoms of hypotension"),
    ("how to upload photos to my cloud drive", "how to download photos from my cloud drive"),
    ("Is an endothermic reaction hot or cold?", "Is an exothermic reaction hot or cold?"),
    ("preorder traversal of a binary tree", "postorder traversal of a binary tree"),
    ("why do people overestimate their skills", "why do people underestimate their skills"),
    ("How do I increase my credit score?", "How do I decrease my credit score?"),
]


@pytest.mark.parametrize(("a", "b"), OPPOSED_BY_PREFIX)
def test_opposed_prefixes(a: str, b: str) -> None:
    assert "antonym" in found(a, b)


SAID_ANOTHER_WAY = [
    # a synonym or a word of the same pole in the one place that differs is no swap
    ("How do I increase my credit score?", "how can i raise my credit score"),
    ("How much screen time is ok for kids?", "How much screen time is ok for children?"),
    ("best movies about space travel", "best films about space travel"),
]


@pytest.mark.parametrize(("a", "b"), SAID_ANOTHER_WAY)
def test_synonyms_are_no_swap(a: str, b: str) -> None:
    assert not found(a, b)


def test_or_not_negates_nothing() -> None:
    assert not found("should I take the job offer?", "should I take the job offer or not?")
    assert not found("was the ending a dream", "was the ending a dream or not")
    assert "negation" in found("should I learn rust or not", "should I not learn rust")


def test_not_working_is_broken() -> None:
    assert not found("my printer doesn't work", "printer broken, how to fix")
    assert not found("vlookup not working", "VLOOKUP broken, how do I fix it")
    assert "antonym" in found("why is my wifi working", "why is my wifi not working")
    assert "negation" in found("I can't work from home", "can I work from home")  # ability


def test_to_and_from_the_same_end() -> None:
    assert "direction" in found(
        "how to upload photos to my drive", "how to upload photos from my drive"
    )
    assert "direction" in found(
        "migrate my database to Postgres", "migrate my database from Postgres"
    )
    assert not found(
        "return an item to the shop", "I bought something from the shop, how do I return it"
    )


def test_superlatives_oppose() -> None:
    assert "antonym" in found(
        "Which city has the most people?", "Which city has the fewest people?"
    )
