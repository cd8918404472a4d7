"""The hand-off service alone: hand-offs in on Kafka -> Slack webhook receipt.

Puts `hotlead.handoff.requested` events on the hand-off topic at a fixed open-loop
rate (acks=all) and runs `hotlead handoff` as a process with the incoming-webhook
notifier pointed at the bench receiver (its own process). Latency: from the
producer's acknowledgement of each hand-off to the receiver's arrival, both on
time.time_ns(). This isolates the last service of the pipeline from ingest and
scorer, so its own changes can be measured on a busy machine.

Run: .venv/bin/python -m benchmarks.bench_handoff [--rates 100,300,1000] [--seconds 8]
Prints a table (no doc is written).
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

from aiokafka import AIOKafkaProducer

from benchmarks.loadgen import percentile, probe_id
from benchmarks.receiver import Receiver
from benchmarks.report import free_port
from schemas.codec import encode_event, encode_key
from schemas.data import (
    BreakdownItem,
    HandoffReason,
    HandoffRequestedData,
    LeadAttributes,
    Segment,
)
from schemas.events import HandoffRequested
from schemas.topics import HANDOFFS
from services.common.kafka_settings import KafkaSettings
from services.common.topics import delete_topics, ensure_topics, topic_specs
from services.stack.supervisor import ProcessSpec, Supervisor

PROFILE = ["-m", "cProfile", "-o", os.environ["PROFILE"]] if os.environ.get("PROFILE") else []
"""PROFILE=file: run the service under cProfile (its stats are written at its exit)."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


async def main(rates: list[float], seconds: float, partitions: int) -> None:
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
        print("| rate/s | hand-offs | p50 ms | p99 ms | p99.9 ms | max ms | late | lost "
              "| cpu ms/hand-off |")  # fmt: skip
        pid = supervisor.children[0].process.pid
        for rate in rates:
            cpu = cpu_seconds(pid)
            tag = f"{run[:4]}{int(rate):02x}"[:6]
            acked, late = await offer(producer, kafka.topic(HANDOFFS), tag, rate, seconds)
            deadline = time.monotonic() + 10
            while True:
                arrivals, _ = await receiver.arrivals()
                if all(i in arrivals for i in acked) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.25)
            ms = [(arrivals[i] - t) / 1e6 for i, t in acked.items() if i in arrivals]
            print(
                f"| {rate:,.0f} | {len(acked)} | {percentile(ms, 50):.1f} | "
                f"{percentile(ms, 99):.1f} | {percentile(ms, 99.9):.1f} | {max(ms, default=0):.1f} "
                f"| {late} | {len(acked) - len(ms)} "
                f"| {(cpu_seconds(pid) - cpu) * 1000 / len(acked):.2f} |",
                flush=True,
            )
    finally:
        await producer.stop()
        supervisor.request_stop()
        await running
        await receiver.stop()
        await delete_topics(bootstrap, [spec.name for spec in specs])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="100,300,1000")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--partitions", type=int, default=12)
    args = parser.parse_args()
    asyncio.run(main([float(r) for r in args.rates.split(",")], args.seconds, args.partitions))
