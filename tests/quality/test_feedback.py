"""Who may judge a hit, and what a bad verdict closes."""

from __future__ import annotations

import numpy as np
import pytest

from sidecache.errors import NotFound, PermissionDenied
from sidecache.quality.feedback import Caller, HitLog, HitRecord, Neighbourhoods, Probe


def hit(request_id: str, key_id: str | None, tenant: str, entry_id: int = 7) -> HitRecord:
    return HitRecord(
        request_id=request_id,
        key_id=key_id,
        tenant=tenant,
        alias="m",
        entry_id=entry_id,
        kind="semantic",
        similarity=0.91,
        prompt="what is the capital of spain",
        scope="s1",
        entry_key="What is the capital of France?",
        t=0.0,
    )


def test_the_key_that_got_the_hit_finds_it_and_another_key_is_refused() -> None:
    log = HitLog()
    log.remember(hit("r1", "key_a", "acme"))
    mine = Caller("key_a", "acme")
    assert log.find(mine, "r1", None).entry_id == 7
    assert log.find(mine, None, 7).request_id == "r1"
    with pytest.raises(PermissionDenied):
        log.find(Caller("key_b", "globex"), "r1", None)
    with pytest.raises(PermissionDenied):  # another key of the same tenant did not get it
        log.find(Caller("key_c", "acme"), None, 7)
    assert log.find(Caller(None, "", admin=True), "r1", None).key_id == "key_a"
    with pytest.raises(NotFound):
        log.find(mine, "r2", None)
    with pytest.raises(NotFound):
        log.find(mine, "r1", 8)  # both given: they must name the same hit


def test_a_request_id_reused_by_another_tenant_does_not_hide_mine() -> None:
    log = HitLog()
    log.remember(hit("same", "key_a", "acme", entry_id=1))
    log.remember(hit("same", "key_b", "globex", entry_id=2))
    assert log.find(Caller("key_a", "acme"), "same", None).entry_id == 1
    assert log.find(Caller("key_b", "globex"), "same", None).entry_id == 2


def test_old_hits_are_forgotten() -> None:
    log = HitLog(size=3)
    for i in range(5):
        log.remember(hit(f"r{i}", "key_a", "acme", entry_id=i))
    with pytest.raises(NotFound):
        log.find(Caller("key_a", "acme"), "r0", None)
    assert log.find(Caller("key_a", "acme"), "r4", None).entry_id == 4


def unit(v: list[float]) -> np.ndarray:
    a = np.array(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def test_a_closed_neighbourhood_refuses_prompts_nearer_the_bad_one() -> None:
    hoods = Neighbourhoods()
    bad = unit([1, 0.2, 0])
    hoods.close("s1", "What is the capital of France?", bad)
    entry = unit([0, 1, 0])
    near_bad = unit([1, 0.25, 0])
    near_entry = unit([0.1, 1, 0])
    stored = "what is the capital of france"  # the same key once normalised
    assert hoods.refuses("s1", stored, float(near_bad @ entry), near_bad)
    assert hoods.refuses("s1", stored, float(bad @ entry), bad)
    assert not hoods.refuses("s1", stored, float(near_entry @ entry), near_entry)
    assert not hoods.refuses("s2", stored, float(bad @ entry), bad)  # another scope
    assert hoods.any_in("s1") and not hoods.any_in("s2") and len(hoods) == 1


def test_the_probe_serves_above_and_keeps_one_near_miss_below() -> None:
    vec = unit([1, 0, 0])
    probe = Probe("s1", None, 0.9, None)
    assert probe("q", "a", 0.95, vec, vec)  # served as usual
    assert not probe("q", "b", 0.85, vec, vec)  # under the threshold once one is served
    probe = Probe("s1", None, 0.9, None)
    assert probe("q", "b", 0.85, vec, vec) and probe.near  # the best one under it
    assert not probe("q", "c", 0.80, vec, vec)  # only one near miss


def test_the_probe_asks_the_verifier_and_the_neighbourhoods() -> None:
    vec = unit([1, 0, 0])
    calls: list[str] = []

    def verify(new: str, stored: str, sim: float, a: np.ndarray, b: np.ndarray) -> bool:
        calls.append(stored)
        return stored != "refused"

    hoods = Neighbourhoods()
    hoods.close("s1", "closed", vec)
    probe = Probe("s1", verify, 0.9, hoods)
    assert not probe("q", "closed", 0.95, vec, vec)
    assert not probe("q", "refused", 0.95, vec, vec)
    assert probe("q", "fine", 0.93, vec, vec)
    assert calls == ["refused", "fine"]  # a closed pair never reaches the verifier
