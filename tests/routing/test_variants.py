"""A/B splits: shares hold across callers, and one caller always gets the same variant."""

from __future__ import annotations

import random
from collections import Counter

from sidecache.routing.variants import Arm, Split


def test_shares_and_stickiness() -> None:
    split = Split("m", [Arm("control", 0, 0.9), Arm("candidate", 1, 0.1)])
    counts = Counter(split.assign(f"key_{i}").label for i in range(10_000))
    assert 0.88 < counts["control"] / 10_000 < 0.92
    assert all(split.assign("key_42") == split.assign("key_42") for _ in range(10))


def test_another_alias_splits_independently_and_anonymous_is_random() -> None:
    a = Split("a", [Arm("x", 0, 1), Arm("y", 1, 1)])
    b = Split("b", [Arm("x", 0, 1), Arm("y", 1, 1)])
    same = sum(a.assign(f"k{i}") == b.assign(f"k{i}") for i in range(2000))
    assert 850 < same < 1150
    r = Split("r", [Arm("x", 0, 1), Arm("y", 1, 1)], rng=random.Random(1))
    assert len({r.assign(None).label for _ in range(50)}) == 2
