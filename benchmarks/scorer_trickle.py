"""The scorer alone under a live trickle: its CPU per 1,000 events at fixed rates.

Not part of `make bench` (bench_pipeline measures the whole chain): a tool to
compare scorer changes. One `hotlead scorer` process (RocksDB, the pipeline
bench's rules, 12 partitions), 2,000 leads written once to warm it, then page
views written to its event log one record per send (as the ingest does, linger
0) at a fixed rate, open loop, 1 in 20 a new lead that qualifies at once.
Prints the worker's CPU time (utime + stime from /proc) per 1,000 events over
the sending window, and the latency from an event's send to its hand-off read
back from the topic by this process (its own producer and consumer included,
so only for comparing runs side by side).

Run: .venv/bin/python -m benchmarks.scorer_trickle [--rates 250,1000] [--seconds 8]
[--spy PREFIX] (py-spy raw profiles of the worker, py-spy on PATH).
"""

import argparse
import asyncio
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.bench_scorer import cpu_seconds
from schemas.topics import EVENTS, HANDOFFS
from services.common.kafka_settings import KafkaSettings
from services.common.topics import delete_topics, ensure_topics, topic_specs
from tests.scorer.worker import ScorerProcess

RULES = Path(__file__).resolve().parent / "pipeline_rules.yaml"


def event(i: int, lead: str, url: str) -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"ev{i}",
            "source": "/bench",
            "type": "hotlead.page.viewed",
            "subject": lead,
            "time": "2026-11-24T07:00:00Z",
            "datacontenttype": "application/json",
            "data": {"url": url},
        }
    )


async def run(rate: int, seconds: float, partitions: int, spy: str | None) -> None:
    base = KafkaSettings()
    settings = KafkaSettings(
        kafka_bootstrap=base.kafka_bootstrap,
        topic_prefix=f"trk-{uuid.uuid4().hex[:8]}.",
        events_partitions=partitions,
        partitions=partitions,
    )
    specs = topic_specs(settings)
    await ensure_topics(settings.kafka_bootstrap, specs)
    app_id = f"trk-{uuid.uuid4().hex[:8]}-scorer"
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True, linger_ms=0
    )
    await producer.start()
    handoffs = AIOKafkaConsumer(
        settings.topic(HANDOFFS),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="latest",
        group_id=None,
    )
    await handoffs.start()
    topic = settings.topic(EVENTS)
    with tempfile.TemporaryDirectory() as workdir:
        worker = ScorerProcess(
            settings,
            app_id,
            Path(workdir),
            store="rocksdb://",
            HOTLEAD_SCORER_RULES_FILE=str(RULES),
        )
        worker.start(timeout_s=120)
        assert worker.process is not None  # noqa: S101 - started
        pid = worker.process.pid
        try:
            # warm: every pool lead once
            futs = [
                await producer.send(
                    topic,
                    event(i, f"lead-{i}", "https://x.example/docs/1"),
                    key=f"lead-{i}".encode(),
                )
                for i in range(2000)
            ]
            await asyncio.gather(*futs)
            await asyncio.sleep(3)
            sent_at: dict[str, float] = {}
            latencies: list[float] = []

            async def read() -> None:
                while True:
                    got = await handoffs.getmany(timeout_ms=200)
                    now = time.time()
                    for records in got.values():
                        for r in records:
                            lead = r.key.decode()
                            if lead in sent_at:
                                latencies.append(now - sent_at.pop(lead))

            reader = asyncio.create_task(read())
            spy_proc = None
            if spy:
                spy_proc = await asyncio.create_subprocess_exec(
                    *("py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds))),
                    *("--rate", "200", "--format", "raw", "-o", spy, "--nonblocking", "--gil"),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            cpu0 = cpu_seconds(pid)
            t0 = time.monotonic()
            total = int(rate * seconds)
            pending = []
            for i in range(total):
                due = t0 + i / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if i % 20 == 0:
                    lead = f"probe-{i}"
                    sent_at[lead] = time.time()
                    value = event(100000 + i, lead, "https://x.example/bench")
                else:
                    lead = f"lead-{i % 2000}"
                    value = event(100000 + i, lead, f"https://x.example/docs/{i % 7}")
                pending.append(await producer.send(topic, value, key=lead.encode()))
            await asyncio.gather(*pending)
            elapsed = time.monotonic() - t0
            cpu1 = cpu_seconds(pid)
            await asyncio.sleep(2)
            reader.cancel()
            if spy_proc:
                await spy_proc.wait()
            latencies.sort()
            n = len(latencies)

            def p(q: float) -> float:
                return latencies[min(n - 1, int(q * n))] * 1000 if n else float("nan")

            print(
                f"rate {rate}/s over {elapsed:.1f}s: scorer {(cpu1 - cpu0) / total * 1000:.3f} "
                f"CPU-s per 1,000 events ({(cpu1 - cpu0) / elapsed:.2f} core); hand-offs "
                f"{n}/{total // 20}, latency p50 {p(0.5):.1f} ms p99 {p(0.99):.1f} ms "
                f"max {p(1.0):.1f} ms",
                flush=True,
            )
        finally:
            worker.stop()
            await producer.stop()
            await handoffs.stop()
            await delete_topics(
                settings.kafka_bootstrap, [s.name for s in specs] + [f"{app_id}-leads-changelog"]
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="250,1000,3000")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--spy", default=None, help="py-spy raw output prefix (GIL holder only)")
    args = parser.parse_args()
    for rate in [int(r) for r in args.rates.split(",")]:
        spy = f"{args.spy}-{rate}.txt" if args.spy else None
        asyncio.run(run(rate, args.seconds, args.partitions, spy))


if __name__ == "__main__":
    main()
