"""The side lane: bounded, never waits, drops and counts what does not fit."""

from __future__ import annotations

import asyncio

from sidecache.errors import UpstreamTimeout
from sidecache.governance.pricing import Pricing
from sidecache.quality.lane import SideLane, ask, side_body


def test_work_beyond_the_bound_is_dropped_and_counted() -> None:
    async def main() -> None:
        lane = SideLane(max_in_flight=2, timeout=5)
        release = asyncio.Event()
        ran: list[int] = []

        def job(i: int):  # type: ignore[no-untyped-def]
            async def work() -> None:
                await release.wait()
                ran.append(i)

            return work

        started = [lane.submit("audit", "m", job(i)) for i in range(5)]
        assert started == [True, True, False, False, False]
        assert lane.in_flight == 2 and lane.dropped[("audit", "m")] == 3
        release.set()
        await lane.wait()
        assert sorted(ran) == [0, 1] and lane.in_flight == 0
        assert lane.submit("shadow", "m", job(9))
        await lane.wait()
        await lane.aclose()
        assert not lane.submit("shadow", "m", job(10))  # closed: nothing new starts

    asyncio.run(main())


def test_a_failing_or_slow_side_call_is_counted_not_raised() -> None:
    async def main() -> None:
        lane = SideLane(max_in_flight=4, timeout=0.05)

        async def boom() -> None:
            raise RuntimeError("side call bug")

        async def slow() -> None:
            await asyncio.sleep(10)

        lane.submit("audit", "m", boom)
        lane.submit("shadow", "m", slow)
        await lane.wait()
        assert lane.failed[("audit", "m")] == 1 and lane.failed[("shadow", "m")] == 1

    asyncio.run(main())


def test_ask_prices_the_answer_and_turns_errors_into_results() -> None:
    pricing = Pricing()

    async def ok() -> tuple[dict[str, object], str]:
        usage = {"prompt_tokens": 1000, "completion_tokens": 1000}
        return {"choices": [{"message": {"content": "hi"}}], "usage": usage}, "gpt-4o-mini"

    async def fails() -> tuple[dict[str, object], str]:
        raise UpstreamTimeout("slow")

    answer = asyncio.run(ask(ok, pricing, 10))
    assert answer.text == "hi" and answer.cost_usd > 0 and not answer.error
    failed = asyncio.run(ask(fails, pricing, 10))
    assert failed.completion is None and failed.error == "upstream_timeout"


def test_a_side_call_asks_for_one_whole_answer() -> None:
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True}, "n": 1}
    assert side_body(body) == {"model": "m", "n": 1}
