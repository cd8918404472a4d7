"""Event -> alert latency under a fixed open-loop load, for any chain of processes
that turns an HTTP request into a POST to the receiver.

A chain says where its HTTP entry is (`Target`). `measure` starts the generator
processes (benchmarks/loadgen.py) on one shared schedule, each stamping the 2xx of
every probe with its kernel receive time (the system clock, as time.time_ns()); the
receiver process stamps each alert's arrival the same way (benchmarks/stamped.py). Latency: 2xx ->
arrival. Also reported, so nothing hides behind a late sender: requests sent more
than 10 ms after their scheduled time, and the latency from the scheduled time
(which includes the ingest's answer time).
"""

import asyncio
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from benchmarks.loadgen import LoadSpec, percentile
from benchmarks.proc_cpu import Group, cpu_used, listening_pid, machine_busy_s, snapshot
from benchmarks.receiver import Receiver
from services.common.topics import topic_partitions


@dataclass(frozen=True)
class Target:
    kind: str  # "hotlead" or "baseline": the request bodies (benchmarks/loadgen.py)
    host: str
    port: int
    path: str
    headers: str  # extra header lines, each ending in \r\n
    bootstrap: str = ""
    handoff_topic: str = ""
    """hotlead: where the scorer's hand-offs are, to split the latency at that hop."""
    sessions: tuple[tuple[str, int], ...] = ()
    """(name, session id) of each process of the chain, for the CPU split."""


async def record_times(bootstrap: str, topic: str) -> dict[str, int]:
    """The CreateTime (ms, stamped by the producing client) of each key's record."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic)
        if not tps:
            return {}
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        times: dict[str, int] = {}
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            for records in (await consumer.getmany(*pending, timeout_ms=1000)).values():
                for record in records:
                    if record.key is not None:
                        times[record.key.decode()] = record.timestamp
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return times
    finally:
        await consumer.stop()


ANSWER_LIMIT_MS = 1000.0
"""A rate is sustained only while the ingest's answers keep up (p99 at most this)."""


@dataclass
class Measurement:
    chain: str
    rate: float
    duration_s: float
    probe_every: int
    sent: int
    ok: int
    failed: int
    late: int
    max_lag_ms: float
    probes: int
    delivered: int
    duplicates: int
    latencies_ms: list[float] = field(repr=False)
    from_schedule_ms: list[float] = field(repr=False)
    response_ms: list[float] = field(repr=False)
    generator_cpu_s: float = 0.0
    late_by_second: list[int] = field(default_factory=list)
    to_handoff_ms: list[float] = field(default_factory=list, repr=False)
    """hotlead: ingest 2xx -> the scorer's hand-off record (its CreateTime)."""
    handoff_to_slack_ms: list[float] = field(default_factory=list, repr=False)
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds of each process (tree) over the window, incl. "generators" and "machine"."""
    window_s: float = 0.0
    """From just before the generators start until every probe arrived (or the drain ended)."""

    def cpu_row(self, names: list[str]) -> str:
        """CPU seconds per 1,000 answered events of each process, and the machine's cores."""
        per_k = [self.cpu_s.get(name, 0.0) * 1000 / self.ok if self.ok else 0.0 for name in names]
        cores = self.cpu_s.get("machine", 0.0) / self.window_s if self.window_s else 0.0
        cells = " | ".join(f"{value:.2f}" for value in per_k)
        return f"| {self.chain} | {self.rate:,.0f} | {self.window_s:.1f} | {cells} | {cores:.2f} |"

    def hops(self) -> str:
        if not self.to_handoff_ms:
            return ""
        a, b = self.to_handoff_ms, self.handoff_to_slack_ms
        return (
            f"| {self.chain} | {self.rate:,.0f} | {percentile(a, 50):.0f} | "
            f"{percentile(a, 99):.0f} | {percentile(b, 50):.0f} | {percentile(b, 99):.0f} |"
        )

    errors: dict[str, int] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return self.probes - self.delivered

    @property
    def achieved_rate(self) -> float:
        return self.ok / self.duration_s

    @property
    def alert_rate(self) -> float:
        return self.probes / self.duration_s

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    @property
    def sustained(self) -> bool:
        """Every request answered 2xx, within ANSWER_LIMIT_MS at p99 (an ingest answering
        later is queueing: its input outruns it), at most 5 % of them sent late (a busy
        machine stalls the senders too), every alert arrived."""
        return (
            self.failed == 0
            and percentile(self.response_ms, 99) <= ANSWER_LIMIT_MS
            and self.ok == self.sent
            and self.late <= 0.05 * self.sent
            and self.lost == 0
            and self.delivered > 0
        )

    def row(self) -> str:
        return (
            f"| {self.chain} | {self.rate:,.0f} | {self.achieved_rate:,.0f} | "
            f"{self.alert_rate:,.0f} | {self.p(50):.1f} | {self.p(99):.1f} | "
            f"{self.p(99.9):.1f} | {percentile(self.from_schedule_ms, 99):.1f} | "
            f"{percentile(self.response_ms, 99):.1f} | {self.late} | "
            f"{self.lost} | {self.failed} | {'yes' if self.sustained else 'no'} |"
        )


HOPS_HEADER = [
    "| chain | offered events/s | 2xx -> hand-off p50 ms | p99 ms | hand-off -> Slack p50 ms "
    "| p99 ms |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
]
HEADER = [
    "| chain | offered events/s | achieved events/s | alerts/s | p50 ms | p99 ms | p99.9 ms "
    "| p99 from schedule ms | ingest answer p99 ms | late sends | lost | failed | sustained |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
]


def cpu_groups(target: Target, receiver: Receiver) -> list[Group]:
    """The chain's processes (each its own session), the receiver, and the broker: the
    process listening on the bootstrap port (shared: it also serves anyone else's load)."""
    groups = [Group(name, sessions=(session,)) for name, session in target.sessions]
    if receiver.pid is not None:
        groups.append(Group("receiver", sessions=(receiver.pid,)))
    if target.bootstrap:
        broker = listening_pid(int(target.bootstrap.rsplit(":", 1)[1]))
        if broker is not None:
            groups.append(Group("broker", pids=(broker,)))
    return groups


CPU_NAMES = {
    "hotlead": ["ingest", "scorer", "handoff", "broker", "generators", "receiver", "machine"],
    "baseline": ["ingest", "relay", "notify", "broker", "generators", "receiver", "machine"],
}


def cpu_header(chain: str) -> list[str]:
    names = CPU_NAMES[chain]
    return [
        f"| chain | offered events/s | window s | {' | '.join(names)} | machine cores busy |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in names) + " | ---: |",
    ]


async def _generator(spec: LoadSpec) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.loadgen", orjson.dumps(asdict(spec)).decode(),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"a load generator failed (exit {process.returncode})")
    result: dict[str, Any] = orjson.loads(out)
    return result


async def measure(
    chain: str,
    target: Target,
    receiver: Receiver,
    *,
    rate: float,
    duration_s: float,
    probe_every: int = 20,
    procs: int = 2,
    drain_s: float = 10.0,
    tick_ms: float = 1.0,
) -> Measurement:
    run = uuid.uuid4().hex[:6]
    groups = cpu_groups(target, receiver)
    cpu_before, busy_before, window_began = snapshot(groups), machine_busy_s(), time.monotonic()
    start_ns = time.time_ns() + 2_000_000_000  # the generators' start-up is off the schedule
    specs = [
        LoadSpec(
            kind=target.kind,
            host=target.host,
            port=target.port,
            path=target.path,
            headers=target.headers,
            run=run,
            rate=rate,
            duration_s=duration_s,
            start_ns=start_ns,
            procs=procs,
            proc=p,
            probe_every=probe_every,
            tick_ms=tick_ms,
        )
        for p in range(procs)
    ]
    results = await asyncio.gather(*(_generator(spec) for spec in specs))
    acked: dict[str, tuple[int, int]] = {}
    for result in results:
        for ident, due, at in result["probes"]:
            acked[ident] = (due, at)
    deadline = time.monotonic() + drain_s
    while True:
        arrivals, duplicates = await receiver.arrivals()
        if all(i in arrivals for i in acked) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    cpu = cpu_used(cpu_before, snapshot(groups))
    cpu["generators"] = sum(float(r["cpu_s"]) for r in results)
    cpu["machine"] = machine_busy_s() - busy_before
    window_s = time.monotonic() - window_began
    got = [(arrivals[i], due, at) for i, (due, at) in acked.items() if i in arrivals]
    to_handoff, handoff_to_slack = [], []
    if target.handoff_topic:
        created = await record_times(target.bootstrap, target.handoff_topic)
        for ident, (_, at) in acked.items():
            if ident in created and ident in arrivals:
                to_handoff.append(created[ident] - at / 1e6)
                handoff_to_slack.append(arrivals[ident] / 1e6 - created[ident])

    def total(key: str) -> int:
        return sum(int(r[key]) for r in results)

    late_by_second = [sum(n) for n in zip(*(r["late_by_second"] for r in results), strict=True)]
    errors: dict[str, int] = {}
    for result in results:
        for name, n in result["errors"].items():
            errors[name] = errors.get(name, 0) + n
    return Measurement(
        chain=chain,
        rate=rate,
        duration_s=duration_s,
        probe_every=probe_every,
        sent=total("sent"),
        ok=total("ok"),
        failed=total("failed"),
        late=total("late"),
        max_lag_ms=max(float(r["max_lag_ms"]) for r in results),
        probes=len(acked),
        delivered=len(got),
        duplicates=duplicates,
        latencies_ms=[(arrived - at) / 1e6 for arrived, _, at in got],
        from_schedule_ms=[(arrived - due) / 1e6 for arrived, due, _ in got],
        response_ms=[ms for r in results for ms in r["response_ms"]],
        generator_cpu_s=sum(float(r["cpu_s"]) for r in results),
        errors=errors,
        late_by_second=late_by_second,
        to_handoff_ms=to_handoff,
        handoff_to_slack_ms=handoff_to_slack,
        cpu_s=cpu,
        window_s=window_s,
    )
