"""The hand-off service alone: hand-offs in on Kafka -> Slack webhook receipt.

Puts `hotlead.handoff.requested` events on the hand-off topic at a fixed open-loop
rate (acks=all) and runs `hotlead handoff` as a process with the incoming-webhook
notifier pointed at the bench receiver (its own process). Latency: from the
producer's acknowledgement of each hand-off to the receiver's arrival, both on
time.time_ns(). This isolates the last service of the pipeline from ingest and
scorer, so its own changes can be measured on a busy machine.

Run: .venv/bin/python -m benchmarks.bench_handoff [--rates 100,300,1000] [--seconds 8]
Writes its table into docs/BENCHMARKS.md (pipeline part).
"""

import argparse
import asyncio
import io
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from benchmarks.loadgen import percentile, probe_id
from benchmarks.receiver import Receiver
from benchmarks.report import free_port, hardware, write_section
from schemas.codec import encode_event, encode_key
from schemas.data import (
    BreakdownItem,
    HandoffReason,
    HandoffRequestedData,
    LeadAttributes,
    Segment,
)
from schemas.events import HandoffRequested
from schemas.topics import EVENTS, HANDOFFS
from services.common.kafka_settings import KafkaSettings
from services.common.topics import delete_topics, ensure_topics, topic_specs
from services.stack.supervisor import ProcessSpec, Supervisor

PROFILE = ["-m", "cProfile", "-o", os.environ["PROFILE"]] if os.environ.get("PROFILE") else []
"""PROFILE=file: run the service under cProfile (its stats are written at its exit)."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def step_means(port: int) -> dict[str, tuple[float, float]]:
    """(sum s, count) of hotlead_handoff_step_seconds per step, from /metrics."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    sums: dict[str, tuple[float, float]] = {}
    for line in text.splitlines():
        for kind in ("sum", "count"):
            prefix = f'hotlead_handoff_step_seconds_{kind}{{step="'
            if line.startswith(prefix):
                step = line[len(prefix) :].split('"', 1)[0]
                total, count = sums.get(step, (0.0, 0.0))
                value = float(line.rsplit(" ", 1)[1])
                sums[step] = (value, count) if kind == "sum" else (total, value)
    return sums


def mean_ms(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]], step: str
) -> float:
    total, count = after.get(step, (0.0, 0.0))
    total0, count0 = before.get(step, (0.0, 0.0))
    return (total - total0) / max(count - count0, 1) * 1000


def handoff(lead_id: str) -> HandoffRequested:
    now = datetime.now(UTC)
    data = HandoffRequestedData(
        handoff_id=f"ho-{lead_id}-1",
        lead_id=lead_id,
        sequence=1,
        reason=HandoffReason(kind="threshold", name="threshold", detail="score 100 >= 70"),
        score=100.0,
        fit=0.0,
        engagement=100.0,
        segment=Segment.HIGH,
        breakdown=[
            BreakdownItem(
                rule="bench_page", group="engagement", points=100.0, events=[f"ev-{lead_id}"]
            )
        ],
        lead=LeadAttributes(email=f"{lead_id}@example.com", company="Bench KK"),
        trigger_event_id=f"ev-{lead_id}",
        trigger_event_time=now,
        rules_version="bench",
    )
    return HandoffRequested(
        id=data.handoff_id, source="/scorer", subject=lead_id, time=now, data=data
    )


async def behaviour(producer: AIOKafkaProducer, topic: str, rate: float, seconds: float) -> None:
    """Page views on the event log at `rate`: what the feedback consumer reads (and skips)
    in a running pipeline besides the few CRM status changes."""
    if rate <= 0:
        return
    now = datetime.now(UTC).isoformat()
    start = time.monotonic()
    sends = []
    for index in range(int(rate * seconds)):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        lead = f"bg{index % 2000}"
        value = orjson.dumps({
            "specversion": "1.0", "id": f"bg-{start}-{index}", "source": "/bench",
            "type": "page.viewed", "subject": lead, "time": now,
            "data": {"url": "https://www.example.com/docs", "lead_id": lead},
        })  # fmt: skip
        sends.append(await producer.send(topic, value, key=lead.encode()))
    await asyncio.gather(*sends)


async def feedback_cost(bootstrap: str, prefix: str, partitions: int, events: int) -> float:
    """CPU microseconds per event read by the feedback reader (the service's consumer
    settings and FeedbackConsumer, in this process, time.process_time): `events` page
    views are written to the event log first, then read to its end."""
    from services.handoff.assignment_config import DEFAULT_ASSIGNMENT
    from services.handoff.consumer import FeedbackConsumer
    from services.handoff.service import FEEDBACK_FETCH_MIN_BYTES, _consumer
    from services.handoff.settings import HandoffSettings
    from services.handoff.state import (
        AssignmentBook,
        AssignmentState,
        MemoryKeyedStore,
        ProgressBook,
    )

    settings = HandoffSettings(
        kafka_bootstrap=bootstrap, topic_prefix=prefix, partitions=partitions
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        await behaviour(producer, settings.topic(EVENTS), events, 1.0)
    finally:
        await producer.stop()
    consumer = _consumer(
        settings, EVENTS, f"bench-feedback-{uuid.uuid4().hex[:6]}",
        fetch_wait_ms=settings.feedback_fetch_wait_ms, fetch_min_bytes=FEEDBACK_FETCH_MIN_BYTES,
    )  # fmt: skip
    await consumer.start()
    store = MemoryKeyedStore()
    reader = FeedbackConsumer(
        consumer,
        AssignmentBook(DEFAULT_ASSIGNMENT, AssignmentState({}, {}), store, "a"),
        ProgressBook(store, "p"),
    )
    stop = asyncio.Event()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)  # joins the group (nothing read yet)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        await consumer.seek_to_beginning()
        cpu = time.process_time()
        running = asyncio.ensure_future(reader.run(stop))
        while True:
            positions = [await consumer.position(tp) for tp in ends]
            if all(p >= e for p, e in zip(positions, ends.values(), strict=True)):
                break
            await asyncio.sleep(0.05)
        used = time.process_time() - cpu
        stop.set()
        await running
    finally:
        await consumer.stop()
    return used / events * 1e6


async def offer(
    producer: AIOKafkaProducer, topic: str, run: str, rate: float, seconds: float
) -> tuple[dict[str, int], int]:
    """Produce at `rate` for `seconds`; the ack time (ns) per lead id, and late sends."""
    acked: dict[str, int] = {}
    late = 0
    tasks = []

    async def one(lead: str) -> None:
        event = handoff(lead)
        await (await producer.send(topic, encode_event(event), key=encode_key(event)))
        acked[lead] = time.time_ns()

    start = time.monotonic() + 0.2
    for index in range(int(rate * seconds)):
        due = start + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.01:
            late += 1
        tasks.append(asyncio.ensure_future(one(probe_id(run, index))))
    await asyncio.gather(*tasks)
    return acked, late


HEADER = [
    "| hand-offs/s | hand-offs | p50 ms | p99 ms | p99.9 ms | late | lost | assign mean ms "
    "| notify mean ms | CPU ms per hand-off |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]
BEGIN, END = "<!-- handoff-bench:begin -->", "<!-- handoff-bench:end -->"


def write_doc(lines: list[str], seconds: float) -> None:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = [
        "### Pipeline: the hand-off service alone",
        "",
        f"Measured {when} by `python -m benchmarks.bench_handoff` on {hardware()}. "
        "Hand-off events are produced (acks=all) onto the hand-off topic at a fixed "
        f"open-loop rate for {seconds:.0f} s each; `hotlead handoff` runs as a process "
        "with the incoming-webhook notifier pointed at the bench receiver (its own "
        "process), no CRM. Latency: the producer's acknowledgement -> the receiver's "
        "arrival (time.time_ns() in both). `assign` / `notify`: the service's own "
        "step timings (hotlead_handoff_step_seconds; assign includes the acks=all "
        "write of the assignment, notify the Slack post). CPU: the service "
        "process' user + system time divided by the hand-offs.",
        "",
        *lines,
    ]
    write_section(BEGIN, END, section)


async def main(
    rates: list[float],
    seconds: float,
    partitions: int,
    events_per_s: float = 0.0,
    feedback_events: int = 0,
) -> list[str]:
    bootstrap = os.environ.get("HOTLEAD_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    run = uuid.uuid4().hex[:6]
    kafka = KafkaSettings(
        kafka_bootstrap=bootstrap, topic_prefix=f"bench-{run}.", partitions=partitions
    )
    specs = topic_specs(kafka)
    await ensure_topics(bootstrap, specs)
    receiver = Receiver("hotlead", port=free_port())
    await receiver.start()
    port = free_port()
    log = io.StringIO()
    supervisor = Supervisor(
        [
            ProcessSpec(
                "handoff", [sys.executable, *PROFILE, "-m", "services.cli", "handoff"],
                ready_url=f"http://127.0.0.1:{port}/readyz",
                env={"HOTLEAD_KAFKA_BOOTSTRAP": bootstrap,
                     "HOTLEAD_TOPIC_PREFIX": kafka.topic_prefix,
                     "HOTLEAD_PARTITIONS": str(partitions), "HOTLEAD_HANDOFF_PORT": str(port),
                     "HOTLEAD_HANDOFF_GROUP_ID": f"bench-handoff-{run}",
                     "HOTLEAD_SLACK_WEBHOOK_URL": f"{receiver.url}/webhook",
                     "HOTLEAD_SLACK_CHANNEL_RATE_PER_S": "1000000",
                     "HOTLEAD_HANDOFF_LOG_LEVEL": "WARNING"},
            )
        ],
        out=log,
    )  # fmt: skip
    running = asyncio.ensure_future(supervisor.run())
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=1
    )
    await producer.start()
    try:
        await asyncio.wait([running, asyncio.ensure_future(supervisor.ready.wait())],
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        if running.done():
            raise SystemExit(f"handoff did not start:\n{log.getvalue()}")
        await asyncio.sleep(3)
        lines = list(HEADER)
        print(*lines, sep="\n")
        if feedback_events:
            micros = await feedback_cost(bootstrap, kafka.topic_prefix, partitions, feedback_events)
            print(
                f"feedback reader: {micros:.1f} CPU us per event read ({feedback_events:,} events)"
            )
        pid = supervisor.children[0].process.pid
        for number, rate in enumerate(rates):
            cpu, steps = cpu_seconds(pid), await step_means(port)
            tag = f"{run[:3]}{number:03x}"  # 6 hex digits, one set of leads per rate
            (acked, late), _ = await asyncio.gather(
                offer(producer, kafka.topic(HANDOFFS), tag, rate, seconds),
                behaviour(producer, kafka.topic(EVENTS), events_per_s, seconds),
            )
            deadline = time.monotonic() + 10
            while True:
                arrivals, _ = await receiver.arrivals()
                if all(i in arrivals for i in acked) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.25)
            ms = [(arrivals[i] - t) / 1e6 for i, t in acked.items() if i in arrivals]
            after = await step_means(port)

            lines.append(
                f"| {rate:,.0f} | {len(acked)} | {percentile(ms, 50):.1f} | "
                f"{percentile(ms, 99):.1f} | {percentile(ms, 99.9):.1f} | {late} | "
                f"{len(acked) - len(ms)} | {mean_ms(steps, after, 'assign'):.1f} | "
                f"{mean_ms(steps, after, 'notify'):.1f} | "
                f"{(cpu_seconds(pid) - cpu) * 1000 / len(acked):.2f} |"
            )
            print(lines[-1], flush=True)
        return lines
    finally:
        await producer.stop()
        supervisor.request_stop()
        await running
        await receiver.stop()
        await delete_topics(bootstrap, [spec.name for spec in specs])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="50,100,200,400")
    parser.add_argument("--no-doc", action="store_true", help="print only")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument(
        "--events-per-s", type=float, default=0.0, help="page views on the event log meanwhile"
    )
    parser.add_argument(
        "--feedback-events",
        type=int,
        default=0,
        help="first measure the feedback reader's CPU per event read over this many page views",
    )
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",") if r]
    lines = asyncio.run(
        main(rates, args.seconds, args.partitions, args.events_per_s, args.feedback_events)
    )
    if not args.no_doc:
        write_doc(lines, args.seconds)
