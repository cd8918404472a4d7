"""The load generator keeps its schedule even when the system under test is slow."""

import asyncio
import math
import time

from benchmarks.loadgen import LoadSpec, generate, percentile, probe_id
from benchmarks.rawhttp import serve


def spec(port: int, **overrides: object) -> LoadSpec:
    fields: dict[str, object] = {
        "kind": "baseline", "host": "127.0.0.1", "port": port, "path": "/e", "headers": "",
        "run": "abc123", "rate": 1000.0, "duration_s": 0.03,
        "start_ns": time.time_ns() + 50_000_000,
    }  # fmt: skip
    return LoadSpec(**{**fields, **overrides})  # type: ignore[arg-type]


async def test_requests_leave_without_waiting_for_earlier_answers() -> None:
    # No answer comes until every request has arrived: a closed-loop generator
    # (one that waits for answers) would hang here.
    gate = asyncio.Event()
    arrived = 0

    async def held(method: bytes, path: bytes, body: bytes) -> tuple[int, bytes]:
        nonlocal arrived
        arrived += 1
        if arrived == 30:
            gate.set()
        await gate.wait()
        return 200, b"ok"

    server = await serve(held, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await asyncio.wait_for(generate(spec(port)), 10)
    finally:
        server.close()
    assert result["sent"] == result["ok"] == 30


async def test_failures_are_counted_and_probes_stamped() -> None:
    async def probes_only(method: bytes, path: bytes, body: bytes) -> tuple[int, bytes]:
        return (200, b"ok") if body.startswith(b"pr") else (503, b"busy")

    server = await serve(probes_only, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await asyncio.wait_for(generate(spec(port)), 10)
    finally:
        server.close()
    assert result["sent"] == 30
    assert result["ok"] == 2  # every 20th slot is a probe: 0 and 20
    assert result["errors"] == {"HTTP 503": 28}
    assert result["failed"] == 28
    probes = result["probes"]
    assert isinstance(probes, list)
    assert [ident for ident, _, _ in probes] == [probe_id("abc123", 0), probe_id("abc123", 20)]
    assert all(acked >= due for _, due, acked in probes)


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert percentile(values, 50) == 500
    assert percentile(values, 99) == 990
    assert percentile(values, 99.9) == 999
    assert percentile(values, 100) == 1000
    assert math.isnan(percentile([], 50))
