"""Event -> alert latency under a fixed open-loop load, for any chain of
processes that turns an HTTP request into a POST to the receiver.

A chain says how to start and stop itself, which request carries id X, and
which ids a received POST is about. `measure` sends ids at a fixed rate,
notes when the chain acknowledged each one (its 2xx) and when the receiver
got it, and reports the latency between the two."""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from benchmarks.loadgen import LoadResult, open_loop, percentile
from benchmarks.receiver import Receiver

RequestFor = Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]


@dataclass
class Measurement:
    chain: str
    rate: float
    duration_s: float
    load: LoadResult
    acked: int
    delivered: int
    latencies_ms: list[float] = field(repr=False)
    duplicates: int

    @property
    def lost(self) -> int:
        return self.acked - self.delivered

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    @property
    def sustained(self) -> bool:
        """Every request sent on time (within 100 ms) and answered, nothing lost."""
        return (
            self.load.dropped == 0
            and self.load.failed == 0
            and self.load.max_lag_s < 0.1
            and self.lost == 0
        )

    def row(self) -> str:
        return (
            f"| {self.chain} | {self.rate:,.0f} | {self.load.achieved_rate:,.0f} | "
            f"{self.p(50):.1f} | {self.p(99):.1f} | {self.p(99.9):.1f} | "
            f"{self.lost} | {self.load.failed} | {'yes' if self.sustained else 'no'} |"
        )


async def measure(
    chain: str,
    request_for: RequestFor,
    receiver: Receiver,
    *,
    rate: float,
    duration_s: float,
    drain_s: float = 15.0,
    connections: int = 200,
) -> Measurement:
    run = uuid.uuid4().hex[:6]
    acked: dict[str, float] = {}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:

        async def send(index: int) -> None:
            ident = f"b{run}-{index}"
            response = await request_for(client, ident)
            response.raise_for_status()
            acked[ident] = time.perf_counter()

        load = await open_loop(rate, duration_s, send)
    deadline = time.perf_counter() + drain_s
    while time.perf_counter() < deadline and not all(i in receiver.arrivals for i in acked):  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    latencies = [
        (receiver.arrivals[i] - t) * 1000 for i, t in acked.items() if i in receiver.arrivals
    ]
    return Measurement(
        chain=chain,
        rate=rate,
        duration_s=duration_s,
        load=load,
        acked=len(acked),
        delivered=len(latencies),
        latencies_ms=latencies,
        duplicates=receiver.duplicates,
    )
