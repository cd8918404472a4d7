"""The load generator keeps its schedule even when the system under test is slow."""

import asyncio
import math
import time

from tests.bench.loadgen import open_loop, percentile


async def test_slow_answers_do_not_slow_the_schedule() -> None:
    starts: list[float] = []

    async def slow(index: int) -> None:
        starts.append(time.perf_counter())
        await asyncio.sleep(0.5)  # every answer takes longer than the whole schedule

    began = time.perf_counter()
    result = await open_loop(rate=100, duration_s=0.3, send=slow)
    assert result.scheduled == result.completed == 30
    # all 30 requests left within the 0.3 s schedule, not one per 0.5 s
    assert max(starts) - began < 0.3 + 0.1


async def test_failures_and_overload_are_counted() -> None:
    async def flaky(index: int) -> None:
        if index % 2:
            raise ConnectionError("refused")
        await asyncio.sleep(0.2)

    result = await open_loop(rate=200, duration_s=0.1, send=flaky, max_in_flight=5)
    assert result.scheduled == 20
    assert result.completed + result.failed + result.dropped == 20
    assert result.dropped > 0
    assert result.errors.get("ConnectionError", 0) == result.failed > 0


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert percentile(values, 50) == 500
    assert percentile(values, 99) == 990
    assert percentile(values, 99.9) == 999
    assert percentile(values, 100) == 1000
    assert math.isnan(percentile([], 50))
