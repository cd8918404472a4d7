"""An open-loop load generator: requests leave on a fixed schedule, whatever
the system under test does, so slow answers cannot slow the load down and
hide their own latency (no coordinated omission).

Each request is its own task, started at `start + i / rate`. What a request
measures is up to `send`; this module only schedules, bounds and counts.
"""

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    rate: float
    duration_s: float
    scheduled: int = 0
    completed: int = 0
    failed: int = 0
    dropped: int = 0
    """Not sent because `max_in_flight` requests were already waiting: the system fell behind."""
    max_lag_s: float = 0.0
    """The worst delay between a request's scheduled time and its start."""
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def achieved_rate(self) -> float:
        return self.completed / self.duration_s if self.duration_s else 0.0


async def open_loop(
    rate: float,
    duration_s: float,
    send: Callable[[int], Awaitable[None]],
    *,
    max_in_flight: int = 10_000,
) -> LoadResult:
    """Call `send(i)` at `rate` per second for `duration_s` seconds and wait for them all."""
    result = LoadResult(rate=rate, duration_s=duration_s)
    total = int(rate * duration_s)
    in_flight: set[asyncio.Task[None]] = set()
    start = time.perf_counter()

    async def one(index: int) -> None:
        try:
            await send(index)
            result.completed += 1
        except Exception as exc:  # noqa: BLE001 - a benchmark counts every failure kind
            result.failed += 1
            name = type(exc).__name__
            result.errors[name] = result.errors.get(name, 0) + 1

    for index in range(total):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        result.max_lag_s = max(result.max_lag_s, time.perf_counter() - due)
        result.scheduled += 1
        if len(in_flight) >= max_in_flight:
            result.dropped += 1
            continue
        task = asyncio.ensure_future(one(index))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(in_flight)
    return result


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(round(q / 100 * len(ordered), 9)))
    return ordered[rank - 1]
