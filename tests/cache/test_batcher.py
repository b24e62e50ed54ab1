"""The micro-batcher: concurrent requests share encode calls; errors reach every waiter."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pytest

from sidecache.cache.batcher import BatcherClosed, MicroBatcher
from sidecache.cache.embedder import Embedder


class SlowCounting:
    """A protocol-conforming embedder with a fixed cost per call, to make batching visible."""

    name = "slow"
    dim = 4

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.calls: list[int] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()
        self.running = 0
        self.most_running = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            self.calls.append(len(texts))
            self.threads.add(threading.current_thread().name)
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        time.sleep(self.delay)
        with self._lock:
            self.running -= 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        out[:, 0] = [len(t) for t in texts]
        out[:, 1] = 1.0
        unit: np.ndarray = out / np.linalg.norm(out, axis=1, keepdims=True)
        return unit


class Exploding:
    name = "exploding"
    dim = 4

    def encode(self, texts: list[str]) -> np.ndarray:
        raise RuntimeError("model crashed")


def test_concurrent_requests_are_batched_with_the_real_model(embedder: Embedder) -> None:
    texts = [f"Question {i}: how do I reset the password of account {i}?" for i in range(64)]
    expected = embedder.encode(texts[:8])

    async def main() -> tuple[list[np.ndarray], dict[int, int]]:
        batcher = MicroBatcher(embedder, max_batch=32, max_wait_ms=2.0)
        try:
            out = await asyncio.gather(*(batcher.embed(t) for t in texts))
            return out, batcher.batch_sizes()
        finally:
            await batcher.aclose()

    vecs, sizes = asyncio.run(main())
    assert sum(size * n for size, n in sizes.items()) == 64
    assert max(sizes) <= 32
    assert sum(sizes.values()) <= 4  # 64 concurrent texts in at most 4 calls (mostly 2)
    for got, want in zip(vecs[:8], expected, strict=True):
        assert float(got @ want) > 0.97  # int8: batch-mates nudge the activations a little


def test_idle_worker_encodes_a_lone_request_at_once() -> None:
    model = SlowCounting(delay=0.0)

    async def main() -> float:
        batcher = MicroBatcher(model, max_batch=32, max_wait_ms=50.0)
        await batcher.embed("warm up")
        t0 = time.perf_counter()
        await batcher.embed("alone")
        elapsed = time.perf_counter() - t0
        await batcher.aclose()
        return elapsed

    assert asyncio.run(main()) < 0.03  # far below the 50 ms wait: no waiting when idle
    assert model.calls == [1, 1]
    assert model.threads == {"sidecache-embed-0"}


def test_requests_arriving_while_busy_form_one_batch() -> None:
    model = SlowCounting(delay=0.05)

    async def main() -> list[np.ndarray]:
        batcher = MicroBatcher(model, max_batch=8, max_wait_ms=1.0)
        first = asyncio.ensure_future(batcher.embed("x"))
        while not model.calls:  # wait until the worker is busy with "x"
            await asyncio.sleep(0.001)
        rest = [batcher.embed("y" * i) for i in range(1, 11)]
        out = await asyncio.gather(first, *rest)
        await batcher.aclose()
        return out

    out = asyncio.run(main())
    assert model.calls == [1, 8, 2]
    assert len(out) == 11
    assert all(v.shape == (4,) for v in out)


def test_two_workers_encode_two_batches_at_once() -> None:
    model = SlowCounting(delay=0.05)

    async def main() -> list[np.ndarray]:
        batcher = MicroBatcher(model, max_batch=8, max_wait_ms=1.0, workers=2)
        out = await asyncio.gather(*(batcher.embed("z" * i) for i in range(1, 17)))
        await batcher.aclose()
        return out

    out = asyncio.run(main())
    assert [float(v[0]) for v in out] == pytest.approx([i / np.hypot(i, 1.0) for i in range(1, 17)])
    assert model.threads == {"sidecache-embed-0", "sidecache-embed-1"}
    assert model.most_running == 2


def test_workers_survive_racing_for_the_queue() -> None:
    """A worker waiting for a batch to fill must cope with another worker taking everything
    meanwhile (this once killed the worker thread with an IndexError)."""
    model = SlowCounting(delay=0.002)
    rng = np.random.default_rng(7)

    async def main() -> tuple[int, int]:
        batcher = MicroBatcher(model, max_batch=8, max_wait_ms=5.0, workers=2)
        served = 0
        for _ in range(60):
            n = int(rng.integers(1, 20))
            out = await asyncio.wait_for(
                asyncio.gather(*(batcher.embed(f"t{i}") for i in range(n))), timeout=5
            )
            served += len(out)
            if rng.random() < 0.3:
                await asyncio.sleep(0.003)
        alive = sum(t.is_alive() for t in batcher._threads)
        await batcher.aclose()
        return served, alive

    served, alive = asyncio.run(main())
    assert served == sum(model.calls)
    assert alive == 2


def test_embed_many_larger_than_max_batch_is_chunked() -> None:
    model = SlowCounting(delay=0.0)

    async def main() -> np.ndarray:
        batcher = MicroBatcher(model, max_batch=4)
        out = await batcher.embed_many([f"t{i}" for i in range(10)])
        await batcher.aclose()
        return out

    out = asyncio.run(main())
    assert out.shape == (10, 4)
    assert model.calls == [4, 4, 2]


def test_encode_errors_reach_every_waiter() -> None:
    async def main() -> list[Any]:
        batcher = MicroBatcher(Exploding(), max_batch=8)
        out = await asyncio.gather(
            *(batcher.embed(str(i)) for i in range(5)), return_exceptions=True
        )
        await batcher.aclose()
        return out

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) and "crashed" in str(r) for r in results)


def test_closed_batcher_refuses_work() -> None:
    async def main() -> None:
        batcher = MicroBatcher(SlowCounting(0.0))
        await batcher.embed("a")
        await batcher.aclose()
        with pytest.raises(BatcherClosed):
            await batcher.embed("b")

    asyncio.run(main())


def test_cancelled_waiter_does_not_break_the_worker() -> None:
    model = SlowCounting(delay=0.03)

    async def main() -> np.ndarray:
        batcher = MicroBatcher(model)
        task = asyncio.ensure_future(batcher.embed("cancel me"))
        while not model.calls:
            await asyncio.sleep(0.001)
        task.cancel()
        out = await batcher.embed("still works")
        await batcher.aclose()
        return out

    assert asyncio.run(main()).shape == (4,)
