"""The semantic cache end to end: real model, real FAISS, real SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sidecache.cache.embedder import Embedder
from sidecache.cache.policy import Decision, decide
from sidecache.cache.ranking import NEAR_TIE
from sidecache.cache.semantic import SemanticCache
from sidecache.config import CacheConfig

T = TypeVar("T")
CFG = CacheConfig(sweep_interval_seconds=0)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def request(text: str, system: str = "You are helpful.", **kw: Any) -> Decision:
    body = {
        "model": "gpt",
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": text}],
    }
    args: dict[str, Any] = {"tenant": "acme", "alias": "gpt", "namespace": None}
    args.update(kw)
    return decide(body, cache_control=args.pop("cache_control", None), cfg=CFG, **args)


def completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def run_with(
    tmp_path: Path,
    embedder: Embedder,
    body: Callable[[SemanticCache], Awaitable[T]],
    cfg: CacheConfig = CFG,
    clock: Clock | None = None,
) -> T:
    async def main() -> T:
        cache = SemanticCache(cfg, tmp_path, embedder=embedder, clock=clock or Clock())
        await cache.start()
        try:
            return await body(cache)
        finally:
            await cache.aclose()

    return asyncio.run(main())


async def put(cache: SemanticCache, text: str, answer: str, **kw: Any) -> int:
    """Put an answer; it must be visible to the very next lookup, with no wait."""
    kw.setdefault("tenant", "acme")
    kw.setdefault("model", "gpt")
    entry = await cache.put(request(text), completion(answer), **kw)
    return entry.id


def test_exact_semantic_and_miss(tmp_path: Path, embedder: Embedder) -> None:
    async def body(cache: SemanticCache) -> None:
        d = request("How do I reset my password?")
        assert await cache.lookup(d, threshold=0.9) is None  # empty scope: no embedding at all
        assert cache.stats()["semantic_lookups"] == 0
        entry_id = await put(cache, "How do I reset my password?", "Click 'Forgot password'.")

        exact = await cache.lookup(request("how do I reset my password"), threshold=0.9)
        assert exact is not None and exact.kind == "exact" and exact.entry.id == entry_id
        assert exact.response()["choices"][0]["message"]["content"] == "Click 'Forgot password'."

        para = await cache.lookup(request("How can I reset my password?"), threshold=0.9)
        assert para is not None and para.kind == "semantic" and para.entry.id == entry_id
        assert 0.9 <= para.similarity <= 1.0

        assert await cache.lookup(request("What is the capital of France?"), threshold=0.9) is None
        # a different system prompt is a different scope: even the exact text misses
        other = request("How do I reset my password?", system="You are a pirate.")
        assert await cache.lookup(other, threshold=0.0) is None

        await cache.wait_writes()  # sizes are the store's: counted once it has the entry
        stats = cache.stats()
        assert stats["exact_hits"] == 1 and stats["semantic_hits"] == 1
        assert stats["hits"] == 2 and stats["misses"] == 3 and stats["lookups"] == 5
        assert stats["entries"] == 1 and stats["vectors"] == 1 and stats["scopes"] == 1
        assert stats["bytes"] > 0 and sum(stats["batch_sizes"].values()) >= 1

    run_with(tmp_path, embedder, body)


def test_threshold_and_verifier(tmp_path: Path, embedder: Embedder) -> None:
    seen: list[tuple[str, str, float]] = []

    def refuse(new: str, stored: str, sim: float, new_vec: Any, stored_vec: Any) -> bool:
        assert new_vec.shape == stored_vec.shape == (384,)
        seen.append((new, stored, sim))
        return False

    async def body(cache: SemanticCache) -> None:
        await put(cache, "What is the capital of France?", "Paris.")
        near = request("Which city is the capital of France?")
        assert await cache.lookup(near, threshold=0.99) is None
        assert await cache.lookup(near, threshold=0.8) is not None
        assert await cache.lookup(near, threshold=0.8, verify=refuse) is None
        assert seen and seen[0][1] == "What is the capital of France?"
        assert cache.stats()["verifier_rejections"] == 1

    run_with(tmp_path, embedder, body)


def test_lookup_vector_is_reused_by_store(tmp_path: Path, embedder: Embedder) -> None:
    async def body(cache: SemanticCache) -> None:
        await put(cache, "What is the capital of France?", "Paris.")
        texts_before = cache.stats()["embedder"]["texts"]
        d = request("Tell me a joke about databases.")
        assert await cache.lookup(d, threshold=0.9) is None  # embeds once
        await cache.put(d, completion("..."), tenant="acme", model="gpt")  # no second embed
        assert cache.stats()["embedder"]["texts"] == texts_before + 1
        hit = await cache.lookup(request("Tell me a joke about databases"), threshold=0.9)
        assert hit is not None and hit.kind == "exact"

    run_with(tmp_path, embedder, body)


def test_restart_keeps_entries_and_vectors(tmp_path: Path, embedder: Embedder) -> None:
    async def first(cache: SemanticCache) -> int:
        return await put(cache, "How do I reset my password?", "Click 'Forgot password'.")

    async def second(cache: SemanticCache) -> None:
        assert cache.stats()["entries"] == 1 and cache.stats()["vectors"] == 1
        hit = await cache.lookup(request("How can I reset my password?"), threshold=0.9)
        assert hit is not None and hit.kind == "semantic" and hit.entry.id == entry_id

    entry_id = run_with(tmp_path, embedder, first)
    run_with(tmp_path, embedder, second)


def test_expiry_and_sweep(tmp_path: Path, embedder: Embedder) -> None:
    clock = Clock()

    async def body(cache: SemanticCache) -> None:
        await put(cache, "How do I reset my password?", "a", ttl=60)
        await put(cache, "What is the capital of France?", "Paris.", ttl=0)  # never expires
        clock.now += 61
        assert await cache.lookup(request("How do I reset my password?"), threshold=0.9) is None
        assert await cache.lookup(request("How can I reset my password?"), threshold=0.9) is None
        assert await cache.sweep() == {"expired": 1, "evicted": 0}
        assert cache.stats()["entries"] == 1 and cache.stats()["vectors"] == 1
        assert await cache.lookup(request("What is the capital of France?"), threshold=0.9)

    run_with(tmp_path, embedder, body, clock=clock)


def test_default_ttl_from_config(tmp_path: Path, embedder: Embedder) -> None:
    clock = Clock()

    async def body(cache: SemanticCache) -> None:
        entry_id = await put(cache, "hello there", "hi")
        (entry,) = await cache.recent(1)
        assert entry.id == entry_id and entry.expires_at == clock.now + 30

    run_with(tmp_path, embedder, body, cfg=CacheConfig(ttl_seconds=30), clock=clock)


def test_lru_eviction(tmp_path: Path, embedder: Embedder) -> None:
    clock = Clock()
    texts = ["How do I reset my password?", "What is the capital of France?", "Tell me a joke."]

    async def body(cache: SemanticCache) -> None:
        ids = []
        for t in texts:
            clock.now += 1
            ids.append(await put(cache, t, "x"))
        clock.now += 1
        assert await cache.lookup(request(texts[0]), threshold=0.9)  # the oldest is used again
        assert await cache.sweep() == {"expired": 0, "evicted": 1}
        assert [e.id for e in await cache.recent(10)] == [ids[2], ids[0]]
        assert await cache.lookup(request(texts[1]), threshold=0.9) is None

    run_with(tmp_path, embedder, body, cfg=CacheConfig(max_entries=2), clock=clock)


def test_delete_and_flush(tmp_path: Path, embedder: Embedder) -> None:
    async def body(cache: SemanticCache) -> None:
        a = await put(cache, "How do I reset my password?", "a", namespace="docs")
        await put(cache, "What is the capital of France?", "b", namespace="docs")
        await put(cache, "Tell me a joke.", "c")
        assert await cache.delete(a) and not await cache.delete(a)
        assert await cache.lookup(request("How can I reset my password?"), threshold=0.8) is None
        assert await cache.flush(namespace="docs") == 1
        assert await cache.flush() == 1
        assert cache.stats()["entries"] == 0 and cache.stats()["scopes"] == 0

    run_with(tmp_path, embedder, body)


def test_no_cache_and_no_store(tmp_path: Path, embedder: Embedder) -> None:
    async def body(cache: SemanticCache) -> None:
        await put(cache, "How do I reset my password?", "a")
        no_cache = request("How do I reset my password?", cache_control="no-cache")
        assert await cache.lookup(no_cache, threshold=0.9) is None
        assert cache.stats()["lookups"] == 0
        no_store = request("Something else entirely", cache_control="no-store")
        try:
            await cache.put(no_store, completion("x"), tenant="acme", model="gpt")
        except ValueError:
            pass
        else:
            raise AssertionError("a no-store request was stored")

    run_with(tmp_path, embedder, body)


def test_exact_only_without_semantic(tmp_path: Path) -> None:
    cfg = CacheConfig(semantic=False, sweep_interval_seconds=0)

    async def body(cache: SemanticCache) -> None:
        await put(cache, "How do I reset my password?", "a")
        assert await cache.lookup(request("how do i reset my password"), threshold=0.9)
        assert await cache.lookup(request("How can I reset my password?"), threshold=0.0) is None
        assert cache.embedder is None

    async def main() -> None:
        cache = SemanticCache(cfg, tmp_path)
        await cache.start()
        try:
            await body(cache)
        finally:
            await cache.aclose()

    asyncio.run(main())


def test_background_sweeper_runs(tmp_path: Path, embedder: Embedder) -> None:
    clock = Clock()

    async def body(cache: SemanticCache) -> None:
        await put(cache, "How do I reset my password?", "a", ttl=1)
        clock.now += 2
        for _ in range(100):
            if cache.stats()["expired"]:
                break
            await asyncio.sleep(0.02)
        assert cache.stats()["expired"] == 1 and cache.stats()["entries"] == 0

    run_with(tmp_path, embedder, body, cfg=CacheConfig(sweep_interval_seconds=0.05), clock=clock)


def test_a_broken_store_is_a_miss_not_an_error(tmp_path: Path, embedder: Embedder) -> None:
    async def body(cache: SemanticCache) -> None:
        await put(cache, "How do I reset my password?", "a")
        await cache.wait_writes()  # written: from now on only the store answers for it
        cache.store_backend.close()  # the database goes away under the cache
        assert await cache.lookup(request("How do I reset my password?"), threshold=0.9) is None
        assert cache.stats()["errors"] == 1

    run_with(tmp_path, embedder, body)


def test_large_scope_switches_to_hnsw_in_the_background(tmp_path: Path, embedder: Embedder) -> None:
    cfg = CacheConfig(hnsw_min_size=4, sweep_interval_seconds=0)
    texts = [
        "How do I reset my password?",
        "What is the capital of France?",
        "Tell me a joke about databases.",
        "How many legs does a spider have?",
        "Explain photosynthesis in simple terms.",
        "What is the boiling point of water at sea level?",
    ]

    async def fill(cache: SemanticCache) -> None:
        for t in texts:
            await put(cache, t, t.upper())
        await cache.wait_rebuilds()
        assert cache.stats()["index_kinds"] == {"flat": 0, "hnsw": 1}
        hit = await cache.lookup(request("How can I reset my password?"), threshold=0.9)
        assert hit is not None and hit.kind == "semantic"

    async def reopen(cache: SemanticCache) -> None:
        # the graph saved when it was built is taken back as it is: HNSW at once, no rebuild
        assert cache.stats()["index_kinds"] == {"flat": 0, "hnsw": 1}
        await cache.wait_rebuilds()
        assert cache.stats()["index_rebuilds"] == 0
        hit = await cache.lookup(request("Explain photosynthesis simply."), threshold=0.9)
        assert hit is not None and hit.entry.key_text == texts[4]

    run_with(tmp_path, embedder, fill, cfg=cfg)
    assert len(list((tmp_path / "index").glob("*.faiss"))) == 1
    run_with(tmp_path, embedder, reopen, cfg=cfg)


def test_a_saved_graph_is_reconciled_with_the_store(tmp_path: Path, embedder: Embedder) -> None:
    """Entries written after the graph was saved (another process, a crash) come back through
    the side index; entries deleted since never answer again; a broken file is rebuilt."""
    cfg = CacheConfig(hnsw_min_size=4, sweep_interval_seconds=0)
    texts = [
        "How do I reset my password?",
        "What is the capital of France?",
        "Tell me a joke about databases.",
        "How many legs does a spider have?",
        "Explain photosynthesis in simple terms.",
        "What is the boiling point of water at sea level?",
    ]
    ids: dict[str, int] = {}

    async def fill(cache: SemanticCache) -> None:
        for t in texts[:5]:
            ids[t] = await put(cache, t, t.upper())
        await cache.wait_rebuilds()  # built and saved with these five

    async def behind_its_back(cache: SemanticCache) -> None:
        cache._rebuilds.snapshots = None  # type: ignore[assignment]  # save nothing new
        ids[texts[5]] = await put(cache, texts[5], texts[5].upper())
        assert await cache.delete(ids[texts[1]])
        cache._rebuilds.closing = True  # no rebuild either: the saved graph stays behind

    async def reopen(cache: SemanticCache) -> None:
        assert cache.stats()["index_kinds"] == {"flat": 0, "hnsw": 1}
        assert cache.stats()["vectors"] == 5
        hit = await cache.lookup(
            request("What's water's boiling point at sea level?"), threshold=0.8
        )
        assert hit is not None and hit.entry.id == ids[texts[5]]  # from the side index
        gone = await cache.lookup(request("What is the capital city of France?"), threshold=0.8)
        assert gone is None or gone.entry.id != ids[texts[1]]
        await cache.wait_rebuilds()  # the side entry is folded into the graph
        hit = await cache.lookup(
            request("What's water's boiling point at sea level?"), threshold=0.8
        )
        assert hit is not None and hit.entry.id == ids[texts[5]]

    run_with(tmp_path, embedder, fill, cfg=cfg)
    run_with(tmp_path, embedder, behind_its_back, cfg=cfg)
    run_with(tmp_path, embedder, reopen, cfg=cfg)
    for path in (tmp_path / "index").glob("*.faiss"):
        path.write_bytes(b"not a faiss index")

    async def rebuilt(cache: SemanticCache) -> None:  # unreadable: loaded from the store
        assert cache.stats()["vectors"] == 5
        await cache.wait_rebuilds()
        assert cache.stats()["index_kinds"] == {"flat": 0, "hnsw": 1}
        hit = await cache.lookup(
            request("What's water's boiling point at sea level?"), threshold=0.8
        )
        assert hit is not None and hit.entry.id == ids[texts[5]]

    run_with(tmp_path, embedder, rebuilt, cfg=cfg)


def test_near_ties_go_to_the_closest_wording(tmp_path: Path, embedder: Embedder) -> None:
    # the same question cached twice with small edits: cosine prefers the second by a hair
    # (0.958 against 0.957), the wording is the first's
    first = "What's the command to list docker containers?"
    second = "What is the command to list Docker containers?"
    query = "What's the command for listing docker containers?"
    q, a, b = embedder.encode([query, first, second])
    assert abs(float(q @ a) - float(q @ b)) < NEAR_TIE  # a near tie on meaning

    async def body(cache: SemanticCache) -> None:
        for system, order in (("One.", (first, second)), ("Two.", (second, first))):
            ids = {
                text: (
                    await cache.put(
                        request(text, system=system), completion(text), tenant="acme", model="gpt"
                    )
                ).id
                for text in order
            }
            assert len(set(ids.values())) == 2
            hit = await cache.lookup(request(query, system=system), threshold=0.8)
            assert hit is not None and hit.kind == "semantic" and hit.entry.id == ids[first]

    run_with(tmp_path, embedder, body)
