"""Micro-batching of embedding calls onto dedicated worker threads.

Why: a transformer forward pass over 32 short prompts costs less than 32 passes over one, so when
many requests arrive together the gateway should embed them in one call. And the model must run
off the event loop. Worker threads own the embedder: requests queue up while they are busy and
the next call takes them all (up to ``max_batch`` texts).

Two workers by default: the model releases the GIL while it runs, so while one batch is in the
model the next can form and run on the other core. Measured on 2 cores with 64 clients
(``benchmarks/cache_latency.py``), one worker kept one core busy embedding and left the other
half idle; each worker runs single-threaded model calls (``embedder.threads``), so two workers
never use more cores than there are.

When the worker is idle, a lone request is encoded at once (no added latency). When the
previous call was a batch, i.e. the gateway is under load, the worker waits up to
``max_wait_ms`` for more requests before encoding: callers whose answers were just delivered
tend to come back one by one as the event loop resumes them, and without the wait they would go
out as a stream of batches of one. ``benchmarks/embedder_speed.py`` measures both policies
(``max_wait_ms`` 0 and 2) at 1, 8 and 64 concurrent callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    from sidecache.cache.embedder import Embedder

__all__ = ["BatcherClosed", "MicroBatcher"]


class BatcherClosed(RuntimeError):
    """``embed`` was called after ``aclose``."""


class _Request:
    __slots__ = ("future", "loop", "texts")

    def __init__(
        self,
        texts: list[str],
        future: asyncio.Future[npt.NDArray[np.float32]],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.texts = texts
        self.future = future
        self.loop = loop


def _resolve(
    outcomes: Sequence[tuple[asyncio.Future[npt.NDArray[np.float32]], object]],
) -> None:
    """Runs on the event loop: hand each waiter its rows or the exception (skip the cancelled)."""
    for fut, value in outcomes:
        if fut.done():
            continue
        if isinstance(value, BaseException):
            fut.set_exception(value)
        else:
            fut.set_result(value)  # type: ignore[arg-type]


class MicroBatcher:
    """Coalesces concurrent ``embed`` calls into batched ``Embedder.encode`` calls."""

    def __init__(
        self,
        embedder: Embedder,
        max_batch: int = 16,
        max_wait_ms: float = 2.0,
        workers: int = 1,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.embedder = embedder
        self.workers = workers
        self.max_batch = max_batch
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self._queue: deque[_Request] = deque()
        self._queued_texts = 0
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._last_batch = 0
        self._sizes: Counter[int] = Counter()
        self._texts = 0
        self._encode_seconds = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads (idempotent; ``embed`` calls it too)."""
        with self._cond:
            if self._closed:
                raise BatcherClosed("the embedding batcher is closed")
            while len(self._threads) < self.workers:
                thread = threading.Thread(
                    target=self._run, name=f"sidecache-embed-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    async def aclose(self) -> None:
        """Stop accepting work, let the workers finish what is queued, and join them."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            threads = list(self._threads)
        for thread in threads:
            await asyncio.to_thread(thread.join)

    # -- public API --------------------------------------------------------------------------

    async def embed(self, text: str) -> npt.NDArray[np.float32]:
        """The unit vector of one text, shape ``(dim,)``."""
        rows = await self.embed_many([text])
        row: npt.NDArray[np.float32] = rows[0]
        return row

    async def embed_many(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Unit vectors of several texts, shape ``(len(texts), dim)``, batched with others."""
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[npt.NDArray[np.float32]] = loop.create_future()
        req = _Request(list(texts), fut, loop)
        if not self._threads:
            self.start()
        with self._cond:
            if self._closed:
                raise BatcherClosed("the embedding batcher is closed")
            self._queue.append(req)
            self._queued_texts += len(req.texts)
            self._cond.notify()
        return await fut

    def batch_sizes(self) -> dict[int, int]:
        """How many ``encode`` calls saw each batch size (texts per call)."""
        with self._cond:
            return dict(sorted(self._sizes.items()))

    def stats(self) -> dict[str, float | int]:
        calls = sum(self._sizes.values())
        return {
            "encode_calls": calls,
            "texts": self._texts,
            "mean_batch": self._texts / calls if calls else 0.0,
            "encode_seconds": self._encode_seconds,
            "queued": self._queued_texts,
        }

    # -- worker ------------------------------------------------------------------------------

    def _take(self) -> list[_Request] | None:
        """Block until there is work; return the next batch, or None when closed and drained."""
        with self._cond:
            while True:
                while not self._queue:
                    if self._closed:
                        return None
                    self._cond.wait()
                if self.max_wait > 0 and self._last_batch > 1 and not self._closed:
                    # Under load: give the callers being resumed a moment to queue up again,
                    # until as many texts wait as the last batch held (or the wait is over).
                    target = min(self.max_batch, self._last_batch)
                    deadline = time.monotonic() + self.max_wait
                    while self._queued_texts < target and not self._closed:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                if self._queue:  # another worker may have taken everything while we waited
                    break
            batch = [self._queue.popleft()]
            total = len(batch[0].texts)
            while self._queue and total + len(self._queue[0].texts) <= self.max_batch:
                req = self._queue.popleft()
                batch.append(req)
                total += len(req.texts)
            self._queued_texts -= total
            if self._queue:
                # ``embed_many`` wakes one worker per request; what this batch left behind is
                # for another worker, which may still be asleep.
                self._cond.notify()
            return batch

    def _encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Encode in chunks of ``max_batch`` (one request may bring more texts than that)."""
        parts = []
        for i in range(0, len(texts), self.max_batch):
            chunk = texts[i : i + self.max_batch]
            t0 = time.perf_counter()
            parts.append(np.asarray(self.embedder.encode(chunk), dtype=np.float32))
            with self._cond:
                self._encode_seconds += time.perf_counter() - t0
                self._sizes[len(chunk)] += 1
                self._texts += len(chunk)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            texts = [t for req in batch for t in req.texts]
            self._last_batch = len(texts)
            outcomes: dict[
                asyncio.AbstractEventLoop,
                list[tuple[asyncio.Future[npt.NDArray[np.float32]], object]],
            ] = {}
            try:
                rows = self._encode(texts)
                start = 0
                for req in batch:
                    n = len(req.texts)
                    outcomes.setdefault(req.loop, []).append((req.future, rows[start : start + n]))
                    start += n
            except Exception as exc:  # every waiter of this batch gets the error
                for req in batch:
                    outcomes.setdefault(req.loop, []).append((req.future, exc))
            for loop, items in outcomes.items():
                # RuntimeError: that event loop is closed, nobody is waiting any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_resolve, items)
