"""The open-loop load generator of the pipeline benchmark: requests leave on a
fixed schedule, whatever the system under test does, so slow answers cannot
slow the load down and hide their own latency (no coordinated omission).

Slot i is due at `start_ns + i / rate`. Several processes share one schedule
(`LoadSpec`); each sends its slots with benchmarks/openloop.py (one epoll loop,
requests written from the schedule loop itself on keep-alive connections, see
there) and prints its results as JSON.
"""

import gc
import math
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
    tick_ms: float = 1.0
    drain_s: float = 30.0


def probe_id(run: str, index: int) -> str:
    return f"pr{run}x{index}"


def request_body(spec: LoadSpec, index: int) -> tuple[bytes, str | None]:
    """The body of slot `index` and, for a probe, the id its alert will carry (the
    mix's definition; `Requests` builds the same bodies from templates)."""
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


class Requests:
    """The whole HTTP request of each slot, from templates built once: per request,
    only the slot's numbers are formatted (the bodies are `request_body`'s)."""

    def __init__(self, spec: LoadSpec) -> None:
        run = spec.run.encode()
        self.head = b"POST %s HTTP/1.1\r\nhost: %s\r\n%scontent-length: %%d\r\n\r\n" % (
            spec.path.encode(), spec.host.encode(), spec.headers.encode()
        )  # fmt: skip
        self.probe_every, self.leads, self.baseline = spec.probe_every, spec.leads, False
        if spec.kind == "baseline":
            self.baseline = True
            self.probe, self.other = b"pr" + run + b"x%d", b"en" + run + b"x%d"
            return
        event = b'{"events":[{"id":"ev' + run + b'x%d","type":"page.viewed","lead_id":"'
        self.probe = event + b"pr" + run + b'x%d","data":{"url":"https://www.example.com/bench"}}]}'
        self.other = (
            event + b"en" + run + b'x%d","data":{"url":"https://www.example.com/docs/%d"}}]}'
        )

    def __call__(self, index: int) -> bytes:
        if index % self.probe_every == 0:
            body = self.probe % index if self.baseline else self.probe % (index, index)
        elif self.baseline:
            body = self.other % index
        else:
            body = self.other % (index, index % self.leads, index % 7)
        return self.head % len(body) + body


class Tally:
    """What came back, per slot: answer times from the due time, 2xx and failures by
    kind, and each probe's (id, due ns, 2xx ns) for the latency join."""

    def __init__(self, spec: LoadSpec) -> None:
        self.run, self.probe_every = spec.run, spec.probe_every
        self.start_ns, self.interval_ns = spec.start_ns, 1e9 / spec.rate
        self.ok = self.failures = 0
        self.errors: dict[str, int] = {}
        self.response_ms: list[float] = []
        self.probes: list[tuple[str, int, int]] = []

    def answered(self, index: int, status: int, at: int) -> None:
        due = self.start_ns + int(index * self.interval_ns)
        self.response_ms.append((at - due) / 1e6)
        if 200 <= status < 300:
            self.ok += 1
            if index % self.probe_every == 0:
                self.probes.append((probe_id(self.run, index), due, at))
        else:
            self.failed(index, f"HTTP {status}")

    def failed(self, index: int, reason: str) -> None:
        self.failures += 1
        self.errors[reason] = self.errors.get(reason, 0) + 1


def generate(spec: LoadSpec) -> dict[str, object]:
    """Send this process' share of the schedule; stamp each answer with time.time_ns().

    Blocking (its own loop): run it in its own process or thread."""
    from benchmarks.openloop import OpenLoop

    tally = Tally(spec)
    sender = OpenLoop(
        spec.host, spec.port, request=Requests(spec), answered=tally.answered,
        failed=tally.failed, start_ns=spec.start_ns, interval_ns=1e9 / spec.rate,
        first=spec.proc, step=spec.procs, end=int(spec.rate * spec.duration_s),
        late_ns=int(spec.late_ms * 1e6), tick_ns=int(spec.tick_ms * 1e6), drain_s=spec.drain_s,
        # connections for ~50 ms of this process' share of the load, opened before it
        # starts; more are opened while every one has an answer outstanding, up to
        # `connections`; past that, requests are pipelined
        connections=min(spec.connections, max(4, int(spec.rate / spec.procs * 0.05))),
        max_connections=spec.connections,
    )  # fmt: skip
    sender.open_before()
    collecting = gc.isenabled()
    gc.disable()  # nothing here makes cycles; a collection would stall the schedule
    try:
        sender.run()
    finally:
        if collecting:
            gc.enable()
    return {
        "sent": sender.sent,
        "ok": tally.ok,
        "failed": tally.failures,
        "errors": tally.errors,
        "late": sender.late,
        "late_by_second": sender.late_by_second,
        "max_lag_ms": sender.max_lag_ns / 1e6,
        "response_ms": tally.response_ms,
        "probes": tally.probes,
        "connections": sender.opened,
        "cpu_s": sender.cpu_s,
    }


if __name__ == "__main__":
    import sys

    import orjson

    from benchmarks.rawhttp import harness_priority

    harness_priority()
    result = generate(LoadSpec(**orjson.loads(sys.argv[1])))
    sys.stdout.buffer.write(orjson.dumps(result))
