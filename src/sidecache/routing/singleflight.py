"""Single-flight: identical concurrent misses share one upstream call.

A ``Flight`` runs the upstream call in its own task (the leader), so the call's life is not
tied to any one client: every request for the same key follows the flight's chunks from the
start, and the upstream call is cancelled only when the last follower has gone. A flight with
no key is simply not shared; all misses take the same path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sidecache.routing.router import TargetState


class Flight:
    """One upstream call and everything its followers need to replay it."""

    def __init__(self, key: str | None) -> None:
        self.key = key
        self.chunks: list[dict[str, Any]] = []
        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.done = False
        self.target: TargetState | None = None
        """The target that answered (set once the upstream call succeeded or streams)."""
        self.first_byte_at: float | None = None
        """``perf_counter`` time of the first chunk or the whole answer."""
        self.followers = 0
        self.task: asyncio.Task[None] | None = None
        self._event = asyncio.Event()

    def _wake(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def publish(self, chunk: dict[str, Any]) -> None:
        self.chunks.append(chunk)
        self._wake()

    def finish(self, result: dict[str, Any]) -> None:
        self.result = result
        self.done = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done = True
        self._wake()

    async def first(self) -> None:
        """Wait until the first chunk or the end; raise the flight's error if it failed first."""
        while not self.chunks and not self.done:
            await self._event.wait()
        if not self.chunks and self.error is not None:
            raise self.error

    async def wait_result(self) -> dict[str, Any]:
        while not self.done:
            await self._event.wait()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    async def follow(self) -> AsyncIterator[list[dict[str, Any]]]:
        """Every chunk from the first, in batches of what has arrived since the last wake-up.

        Batches let a follower write chunks that arrived together in one send; the flight's
        error is raised after the chunks sent before it.
        """
        i = 0
        while True:
            event = self._event
            chunks = self.chunks
            if i < len(chunks):
                batch = chunks[i:]
                i += len(batch)
                yield batch
                continue
            if self.done:
                if self.error is not None:
                    raise self.error
                return
            await event.wait()

    def attach(self) -> None:
        self.followers += 1

    def detach(self) -> None:
        """A follower left; with no follower left, an unfinished upstream call is cancelled."""
        self.followers -= 1
        if self.followers <= 0 and not self.done and self.task is not None:
            self.task.cancel()


class FlightGroup:
    def __init__(self) -> None:
        self._flights: dict[str, Flight] = {}
        self.coalesced = 0

    def join(
        self, key: str | None, run: Callable[[Flight], Coroutine[Any, Any, None]]
    ) -> tuple[Flight, bool]:
        """The running flight for ``key``, or a new one whose leader runs ``run``.

        Returns the flight and whether this caller started it.
        """
        if key is not None:
            flight = self._flights.get(key)
            if flight is not None and not flight.done:
                self.coalesced += 1
                flight.attach()
                return flight, False
        flight = Flight(key)
        flight.attach()
        if key is not None:
            self._flights[key] = flight
        flight.task = asyncio.create_task(self._lead(flight, run))
        return flight, True

    async def _lead(
        self, flight: Flight, run: Callable[[Flight], Coroutine[Any, Any, None]]
    ) -> None:
        try:
            await run(flight)
        except asyncio.CancelledError as exc:
            if not flight.done:
                flight.fail(exc)
        except BaseException as exc:
            if not flight.done:
                flight.fail(exc)
        finally:
            if flight.key is not None and self._flights.get(flight.key) is flight:
                del self._flights[flight.key]
