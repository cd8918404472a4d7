"""The open-loop load generator of the pipeline benchmark: requests leave on a
fixed schedule, whatever the system under test does, so slow answers cannot
slow the load down and hide their own latency (no coordinated omission).

Slot i is due at `start_ns + i / rate`; each request is its own task on a pool
of keep-alive connections. Several processes share one schedule (`LoadSpec`).
"""

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(round(q / 100 * len(ordered), 9)))
    return ordered[rank - 1]


@dataclass
class LoadSpec:
    """What one generator process sends: its share of one fixed schedule.

    Slot i of the schedule is due at `start_ns + i / rate`; process p of n sends the
    slots i with i % n == p. Every `probe_every`-th slot is a probe (a new lead that
    qualifies at once: latency is measured on those); the others are engagement events
    of `leads` existing leads that never reach the threshold."""

    kind: str  # "hotlead" (ingest's /v1/events) or "baseline" (the baseline's /e)
    host: str
    port: int
    path: str
    headers: str
    run: str
    rate: float
    duration_s: float
    start_ns: int
    procs: int = 1
    proc: int = 0
    probe_every: int = 20
    leads: int = 2000
    connections: int = 256
    late_ms: float = 10.0


def probe_id(run: str, index: int) -> str:
    return f"pr{run}x{index}"


def request_body(spec: LoadSpec, index: int) -> tuple[bytes, str | None]:
    """The request of slot `index` and, for a probe, the id its alert will carry."""
    probe = index % spec.probe_every == 0
    if spec.kind == "baseline":
        ident = probe_id(spec.run, index) if probe else f"en{spec.run}x{index}"
        return ident.encode(), ident if probe else None
    if probe:
        lead, url = probe_id(spec.run, index), "https://www.example.com/bench"
    else:
        lead = f"en{spec.run}x{index % spec.leads}"
        url = f"https://www.example.com/docs/{index % 7}"
    body = (
        b'{"events":[{"id":"ev%sx%d","type":"page.viewed","lead_id":"%s","data":{"url":"%s"}}]}'
        % (spec.run.encode(), index, lead.encode(), url.encode())
    )
    return body, lead if probe else None


async def generate(spec: LoadSpec) -> dict[str, object]:
    """Send this process' share of the schedule; stamp each answer with time.time_ns()."""
    from benchmarks.rawhttp import Pool

    pool = Pool(spec.host, spec.port, max_connections=spec.connections)
    total = int(spec.rate * spec.duration_s)
    path, headers = spec.path.encode(), spec.headers.encode()
    interval_ns = 1e9 / spec.rate
    probes: list[tuple[str, int, int]] = []
    lags: list[float] = []
    response_ms: list[float] = []
    counts = {"sent": 0, "ok": 0, "failed": 0, "dropped": 0}
    errors: dict[str, int] = {}
    in_flight: set[asyncio.Task[None]] = set()
    late_by_s = [0] * (int(spec.duration_s) + 1)
    cpu = time.process_time()

    async def one(index: int, due: int) -> None:
        body, probe = request_body(spec, index)
        try:
            status, _ = await pool.request(b"POST", path, body, headers)
        except Exception as exc:  # noqa: BLE001 - a benchmark counts every failure kind
            counts["failed"] += 1
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        acked = time.time_ns()
        response_ms.append((acked - due) / 1e6)
        if 200 <= status < 300:
            counts["ok"] += 1
            if probe is not None:
                probes.append((probe, due, acked))
        else:
            counts["failed"] += 1
            errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1

    # connections for ~50 ms of this process' share of the load, opened before it starts
    await pool.warm(min(spec.connections, max(4, int(spec.rate / spec.procs * 0.05))))
    slots = iter(range(spec.proc, total, spec.procs))
    index = next(slots, None)
    while index is not None:
        now = time.time_ns()
        due = spec.start_ns + int(index * interval_ns)
        if due > now:
            await asyncio.sleep((due - now) / 1e9)
            continue
        while index is not None and (due := spec.start_ns + int(index * interval_ns)) <= now:
            lags.append((now - due) / 1e6)
            if lags[-1] > spec.late_ms:
                late_by_s[int((due - spec.start_ns) / 1e9)] += 1
            counts["sent"] += 1
            if len(in_flight) >= 20_000:
                counts["dropped"] += 1
            else:
                task = asyncio.ensure_future(one(index, due))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            index = next(slots, None)
    if in_flight:
        await asyncio.wait(in_flight, timeout=30)
    pool.close()
    return {
        **counts,
        "errors": errors,
        "late": sum(1 for lag in lags if lag > spec.late_ms),
        "late_by_second": late_by_s,
        "max_lag_ms": max(lags, default=0.0),
        "response_ms": response_ms,
        "probes": probes,
        "connections": pool.opened,
        "cpu_s": time.process_time() - cpu,
    }


if __name__ == "__main__":
    import sys

    import orjson

    from benchmarks.rawhttp import harness_priority

    harness_priority()
    result = asyncio.run(generate(LoadSpec(**orjson.loads(sys.argv[1]))))
    sys.stdout.buffer.write(orjson.dumps(result))
