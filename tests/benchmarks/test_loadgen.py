"""The load generator keeps its schedule even when the system under test is slow."""

import asyncio
import math

from benchmarks.loadgen import open_loop, percentile


async def test_requests_leave_without_waiting_for_earlier_answers() -> None:
    # No answer comes until every request has left: a closed-loop generator
    # (one that waits for answers) would hang here.
    gate = asyncio.Event()
    started = 0

    async def held(index: int) -> None:
        nonlocal started
        started += 1
        if started == 30:
            gate.set()
        await gate.wait()

    result = await asyncio.wait_for(open_loop(rate=1000, duration_s=0.03, send=held), 10)
    assert result.scheduled == result.completed == 30


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
