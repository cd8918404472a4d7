"""`make bench` (pipeline part): behaviour in -> alert out, under a fixed open-loop load.

hotlead: ingest, scorer and handoff as real processes (the make-run supervisor), on
the real broker, their own topics. The load is a mix: every `probe_every`-th request
is a `page.viewed` of /bench by a new lead, which the bench rules qualify at once
(one Slack webhook post each); the others are page views of /docs by a pool of
existing leads, scored but never reaching the threshold. Latency, on the probes:
from the ingest's 2xx to the receiver's arrival, both stamped with the kernel's
receive time on the system clock (time.time_ns()'s) in their own processes (load
generators and receiver are separate processes).

Baseline, in the same run: the same hops with bare aiokafka and one HTTP POST
(benchmarks/baseline_chain.py), carrying the same mix.

Run: .venv/bin/python -m benchmarks.bench_pipeline [--rates 250,500,1000] [--seconds 10]
Writes docs/BENCHMARKS.md (pipeline section) and docs/pipeline-latency.png.
"""

import argparse
import asyncio
import io
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks.baseline_runner import baseline_chain
from benchmarks.loadgen import percentile
from benchmarks.pipeline_bench import (
    CPU_NAMES,
    HEADER,
    HOPS_HEADER,
    Measurement,
    Target,
    cpu_header,
    measure,
)
from benchmarks.receiver import Receiver
from benchmarks.report import free_port, hardware, write_section
from schemas.topics import HANDOFFS
from services.common.kafka_settings import KafkaSettings
from services.common.topics import delete_topics, ensure_topics, topic_specs
from services.ingest.settings import DEV_API_KEYS
from services.stack.supervisor import ProcessSpec, Supervisor

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "BENCHMARKS.md"
CHART = ROOT / "docs" / "pipeline-latency.png"
BEGIN, END = "<!-- pipeline-bench:begin -->", "<!-- pipeline-bench:end -->"
RULES = Path(__file__).resolve().parent / "pipeline_rules.yaml"
API_KEY = DEV_API_KEYS.split(":", 1)[1]


@asynccontextmanager
async def hotlead_pipeline(
    bootstrap: str, receiver: Receiver, partitions: int
) -> AsyncIterator[Target]:
    run = uuid.uuid4().hex[:6]
    kafka = KafkaSettings(
        kafka_bootstrap=bootstrap, topic_prefix=f"bench-{run}.", events_partitions=partitions,
        partitions=partitions,
    )  # fmt: skip
    specs = topic_specs(kafka)
    await ensure_topics(bootstrap, specs)
    ingest_port, scorer_port, handoff_port = free_port(), free_port(), free_port()
    common = {
        "HOTLEAD_KAFKA_BOOTSTRAP": bootstrap,
        "HOTLEAD_TOPIC_PREFIX": kafka.topic_prefix,
        "HOTLEAD_PARTITIONS": str(partitions),
        "HOTLEAD_EVENTS_PARTITIONS": str(partitions),
    }
    hotlead = [sys.executable, "-m", "services.cli"]
    log = io.StringIO()
    with tempfile.TemporaryDirectory() as datadir:
        supervisor = Supervisor(
            [
                ProcessSpec(
                    "ingest", [*hotlead, "ingest", "--port", str(ingest_port)],
                    ready_url=f"http://127.0.0.1:{ingest_port}/readyz",
                    env={**common, "HOTLEAD_INGEST_LOG_LEVEL": "WARNING",
                         "HOTLEAD_SOURCE_RATE_PER_S": "100000", "HOTLEAD_SOURCE_BURST": "100000"},
                ),
                ProcessSpec(
                    "scorer", [*hotlead, "scorer"],
                    ready_url=f"http://127.0.0.1:{scorer_port}/metrics",
                    env={**common, "HOTLEAD_SCORER_APP_ID": f"bench-scorer-{run}",
                         "HOTLEAD_SCORER_WEB_PORT": str(scorer_port),
                         "HOTLEAD_SCORER_DATADIR": datadir, "HOTLEAD_SCORER_RULES_FILE": str(RULES),
                         "HOTLEAD_SCORER_LOG_LEVEL": "WARNING"},
                ),
                ProcessSpec(
                    "handoff", [*hotlead, "handoff"],
                    ready_url=f"http://127.0.0.1:{handoff_port}/readyz",
                    env={**common, "HOTLEAD_HANDOFF_PORT": str(handoff_port),
                         "HOTLEAD_HANDOFF_GROUP_ID": f"bench-handoff-{run}",
                         "HOTLEAD_SLACK_WEBHOOK_URL": f"{receiver.url}/webhook",
                         "HOTLEAD_SLACK_CHANNEL_RATE_PER_S": "1000000",
                         "HOTLEAD_HANDOFF_LOG_LEVEL": "WARNING"},
                ),
            ],
            ready_timeout_s=180,
            out=log,
        )  # fmt: skip
        running = asyncio.ensure_future(supervisor.run())
        ready = asyncio.ensure_future(supervisor.ready.wait())
        await asyncio.wait([running, ready], return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            raise SystemExit(f"bench: the hotlead pipeline did not start:\n{log.getvalue()}")
        await warm_up(f"http://127.0.0.1:{ingest_port}", receiver, partitions)

        headers = f"authorization: Bearer {API_KEY}\r\ncontent-type: application/json\r\n"
        try:
            sessions = tuple((c.spec.name, c.process.pid) for c in supervisor.children)
            yield Target("hotlead", "127.0.0.1", ingest_port, "/v1/events", headers,
                         bootstrap, kafka.topic(HANDOFFS), sessions)  # fmt: skip
        finally:
            supervisor.request_stop()
            await running
            await delete_topics(bootstrap, [spec.name for spec in specs])


async def warm_up(ingest_url: str, receiver: Receiver, probes: int) -> None:
    """Measure a warm pipeline: send `probes` qualifying events (one per partition,
    give or take the hash) and wait until every one has been alerted. A started
    worker still joins its group and reads its changelog before it scores; a fixed
    sleep left that backlog in the first rate's numbers."""
    warm = uuid.uuid4().hex[:6]
    leads = [f"pr{warm}x{index}" for index in range(probes)]
    events = [
        {"id": f"warm{warm}x{index}", "type": "page.viewed", "lead_id": lead,
         "data": {"url": "https://www.example.com/bench"}}
        for index, lead in enumerate(leads)
    ]  # fmt: skip
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(
            f"{ingest_url}/v1/events",
            json={"events": events},
            headers={"authorization": f"Bearer {API_KEY}"},
        )
        answer.raise_for_status()
    deadline = asyncio.get_running_loop().time() + 180
    while True:
        arrived, _ = await receiver.arrivals()
        if all(lead in arrived for lead in leads):
            return
        if asyncio.get_running_loop().time() > deadline:
            missing = [lead for lead in leads if lead not in arrived]
            raise SystemExit(f"bench: warm-up alerts missing after 180 s: {missing}")
        await asyncio.sleep(0.2)


Point = tuple[str, float, float, float, bool]
"""(chain, offered events/s, p50 ms, p99 ms, sustained) of one mixed-load row."""


def points(results: list[Measurement]) -> list[Point]:
    return [
        (m.chain, m.rate, m.p(50), m.p(99), m.sustained)
        for m in results
        if m.delivered and m.probe_every > 1
    ]


def chart(rows: list[Point]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for chain, style in (("hotlead", "o-"), ("baseline", "s--")):
        for q, column in ((50, 2), (99, 3)):
            # a p50 at or below 0 (the alert before the ingest's answer) has no place on a
            # log scale: left out of the line, it is in the table
            line = [(r[1], r[column], r[4]) for r in rows if r[0] == chain and r[column] > 0]
            ax.plot([x for x, _, _ in line], [y for _, y, _ in line], style,
                    label=f"{chain} p{q}")  # fmt: skip
            late = [(x, y) for x, y, ok in line if not ok]
            ax.plot([x for x, _ in late], [y for _, y in late], "x", color="black",
                    markersize=9)  # fmt: skip
    ax.plot([], [], "x", color="black", label="not sustained")
    ax.axhline(100, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("offered load (events/s, open loop, 1 in 20 events an alert)")
    ax.set_ylabel("ingest 2xx -> Slack receipt (ms)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title("Event -> alert latency against load")
    fig.tight_layout()
    fig.savefig(CHART, dpi=110)


def budget(m: Measurement, cores: int = 2) -> str:
    """What the measured CPU per event allows on `cores` cores, if nothing else ran."""
    names = CPU_NAMES[m.chain]
    chain = sum(m.cpu_s.get(name, 0.0) for name in names[:4]) / m.ok  # services + broker
    harness = sum(m.cpu_s.get(name, 0.0) for name in names[4:6]) / m.ok
    return (
        f"- {m.chain} at {m.rate:,.0f} events/s: the chain (services + broker) used "
        f"{chain * 1000:.2f} CPU s per 1,000 events, so {cores} cores would be full at "
        f"~{cores / chain:,.0f} events/s; with the load generators and receiver on the same "
        f"cores, ~{cores / (chain + harness):,.0f} events/s"
    )


def _table(results: list[Measurement]) -> list[str]:
    lines = [*HEADER, *[m.row() for m in results], ""]
    hops = [m.hops() for m in results if m.to_handoff_ms]
    if hops:
        lines += ["Where hotlead's time goes (by the hand-off record's CreateTime):", "",
                  *HOPS_HEADER, *hops, ""]  # fmt: skip
    for chain in ("hotlead", "baseline"):
        rows = [m.cpu_row(CPU_NAMES[chain]) for m in results if m.chain == chain and m.cpu_s]
        if rows:
            lines += [f"CPU seconds per 1,000 events, {chain} (per process tree, /proc):", "",
                      *cpu_header(chain), *rows, ""]  # fmt: skip
            lines += [budget(m) for m in results if m.chain == chain and m.cpu_s and m.ok]
            lines.append("")
    for rate in sorted({m.rate for m in results}):
        pair = {m.chain: m for m in results if m.rate == rate}
        if "hotlead" in pair and "baseline" in pair and pair["baseline"].delivered:
            ratio = pair["hotlead"].p(99) / pair["baseline"].p(99)
            lines.append(f"- at {rate:,.0f} events/s, hotlead's p99 is {ratio:.1f}x the baseline's")
    for chain in ("hotlead", "baseline"):
        ok = [m.rate for m in results if m.chain == chain and m.sustained and m.p(99) < 250]
        lines.append(
            f"- highest offered rate {chain} sustained with p99 < 250 ms: {max(ok):,.0f} events/s"
            if ok
            else f"- {chain} sustained none of the offered rates with p99 < 250 ms"
        )
    return lines


def method(seconds: float, partitions: int, probe_every: int, tick_ms: float = 1.0) -> str:
    return (
        "Method: open-loop load generators (two processes, `benchmarks/loadgen.py` on "
        "`benchmarks/openloop.py`: one epoll loop each, raw HTTP/1.1 on keep-alive "
        "connections) send one event per request on a fixed schedule shared by both, "
        f"{seconds:.0f} s per rate: a slow pipeline cannot slow its own load. Each "
        f"generator wakes on a {tick_ms:g} ms tick, writes every request that is due at once (on a "
        "connection with no answer outstanding; else on a new one, up to 256 per "
        "generator, connections for ~50 ms of the load being opened before it starts; "
        "past 256, pipelined behind the outstanding answers, which HTTP/1.1 returns in "
        "order), and never waits for an answer or a connection before sending. Each "
        "answer is matched to its request (a FIFO per connection) and stamped with the "
        "kernel's receive time of its bytes (SO_TIMESTAMPNS, the system clock of "
        "`time.time_ns()`), so an answer read at the next tick, or while the generator "
        "waited for a CPU, still carries the time it arrived. "
        f"The mix: every {probe_every}th event is a probe, a `page.viewed` of /bench by a "
        "new lead that the bench rules (`benchmarks/pipeline_rules.yaml`) qualify at once; "
        "the others are page views of /docs by 2,000 existing leads, each scored (1 point, "
        "capped at 20) and never reaching the threshold of 70. Latency is measured on the "
        "probes, from the ingest's 2xx (Kafka acknowledged) to the fake Slack webhook "
        "(its own process) receiving the alert, both stamped with the kernel's receive "
        "time of their bytes on the system clock (one machine), so neither end's wait for "
        "a CPU moves the stamp; a negative value means the alert arrived before the "
        "ingest's answer did (the ingest process lagging behind its own Kafka write). "
        "`p99 from schedule` counts from when the request was due instead, so it includes "
        f"the ingest's answer time, the up to {tick_ms:g} ms tick and any late send. `late sends`: "
        "requests written more than 10 ms after their scheduled time, measured at the "
        "write (the generators never wait for answers or connections, so lateness is the "
        "sender not getting a CPU; the generators and the receiver run at "
        "nice -5 where allowed, so that on a shared machine they are not the ones waiting). "
        "`sustained`: every request answered 2xx, the ingest's answers within 1 s at p99 "
        "(later answers mean its input outruns it), at most 5 % sent late, every probe "
        f"alerted (within 10 s after the load ended). Topics with {partitions} partitions. "
        "The baseline runs the same hops with bare aiokafka and a raw asyncio HTTP server "
        "(HTTP -> topic -> relay that forwards the probes only -> topic -> notifier "
        "posting each alert concurrently), in the same run, so the ratio holds on a noisy "
        "shared machine. Rates go up until a chain is overloaded (not sustained and p99 "
        "over 1 s); higher rates are then not run for that chain. The split of hotlead's "
        "latency uses the hand-off record's CreateTime (stamped by the scorer's producer, "
        "ms resolution). CPU per 1,000 events: utime + stime (+ waited-for children) from "
        "/proc/<pid>/stat of every process in each service's session (the supervisor starts "
        "each in its own), the receiver's session and the broker (the process listening on "
        "the bootstrap port; shared, so on a busy machine it includes others' traffic), read "
        "just before the generators start and once every probe arrived; the generators "
        "report their own process time over the schedule (from its first slot until the "
        "last answer; `python -m benchmarks.bench_loadgen` measures them alone); "
        "`machine` is all busy CPU time of the machine (/proc/stat) in the same window, "
        "`machine cores busy` that over the window's length (2 cores: at most 2)."
    )


def write_doc(
    results: list[Measurement],
    seconds: float,
    partitions: int,
    probe_every: int,
    tick_ms: float = 1.0,
) -> None:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    mixed = [m for m in results if m.probe_every > 1]
    qualify = [m for m in results if m.probe_every == 1]
    lines = [
        "## Pipeline: event -> Slack alert",
        "",
        f"Measured {when} by `make bench` (`python -m benchmarks.bench_pipeline`) on "
        f"{hardware()}, with the local single-node Kafka broker, the three services, the "
        "load generators and the receiver all on this machine.",
        "",
        f"### Mixed load: 1 event in {probe_every} qualifies a new lead "
        f"({100 / probe_every:g} % of events are alerts)",
        "",
        *_table(mixed),
    ]
    if qualify:
        lines += ["", "### Every event qualifies a new lead (all alerts)", "", *_table(qualify)]
    lines += [
        "",
        method(seconds, partitions, probe_every, tick_ms),
        "",
        "![latency against load](pipeline-latency.png)",
    ]
    write_section(BEGIN, END, lines, DOC)


async def main(
    rates: list[float],
    seconds: float,
    partitions: int,
    probe_every: int,
    chains: list[str],
    all_qualify: list[float],
    keep_going: bool = False,
    tick_ms: float = 1.0,
) -> list[Measurement]:
    bootstrap = os.environ.get("HOTLEAD_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    results: list[Measurement] = []
    for chain in chains:
        receiver = Receiver(chain, port=free_port())
        await receiver.start()
        try:
            context = (
                hotlead_pipeline(bootstrap, receiver, partitions)
                if chain == "hotlead"
                else baseline_chain(bootstrap, f"{receiver.url}/receive", port=free_port(),
                                    partitions=partitions)
            )  # fmt: skip
            async with context as target:
                for every, series in ((probe_every, rates), (1, all_qualify)):
                    for rate in series:
                        m = await measure(
                            chain, target, receiver, rate=rate, duration_s=seconds,
                            probe_every=every, tick_ms=tick_ms,
                        )  # fmt: skip
                        print(m.row(), m.errors, m.hops(), "late per second",
                              m.late_by_second, flush=True)  # fmt: skip
                        per_k = {n: m.cpu_s.get(n, 0.0) * 1000 / max(m.ok, 1)
                                 for n in CPU_NAMES[chain]}  # fmt: skip
                        print(f"  CPU s per 1,000 events at {rate:,.0f}/s over "
                              f"{m.window_s:.1f} s:",
                              ", ".join(f"{n} {v:.3f}" for n, v in per_k.items()),
                              flush=True)  # fmt: skip
                        if m.ok:
                            print(" ", budget(m), flush=True)
                        results.append(m)
                        slowest = max(m.p(99), percentile(m.from_schedule_ms, 99))
                        if not m.sustained and slowest > 1000 and not keep_going:
                            break  # overloaded: a backlog would spoil the higher rates
                        await asyncio.sleep(2)  # let the chain drain between rates
        finally:
            await receiver.stop()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="100,250,500,1000,2000,3000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--probe-every", type=int, default=20, help="1 event in N is a probe")
    parser.add_argument("--all-qualify", default="100,250,500",
                        help="rates of the all-alerts series ('' for none)")  # fmt: skip
    parser.add_argument("--chains", default="baseline,hotlead")
    parser.add_argument("--no-doc", action="store_true", help="print only")
    parser.add_argument(
        "--keep-going", action="store_true", help="run every rate, even after an overloaded one"
    )
    parser.add_argument(
        "--tick-ms", type=float, default=1.0,
        help="the load generators' tick: a request leaves within one tick of its time",
    )  # fmt: skip
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    qualify = [float(r) for r in args.all_qualify.split(",") if r]
    results = asyncio.run(
        main(rates, args.seconds, args.partitions, args.probe_every,
             args.chains.split(","), qualify, args.keep_going, args.tick_ms)
    )  # fmt: skip
    if not args.no_doc:
        write_doc(results, args.seconds, args.partitions, args.probe_every, args.tick_ms)
        chart(points(results))
        print(f"wrote {DOC} and {CHART}")
