"""`make bench` (scorer part): events/s of the pure core, of one scorer worker on
the real broker, and of a bare aiokafka consume -> score -> produce loop doing
the same work. Writes the results into docs/BENCHMARKS.md (its scorer section).

Run: .venv/bin/python -m benchmarks.bench_scorer [--leads N] [--events-per-lead M]
(`--core-only`: just the two pure core rows, without the broker, printed only.)
Needs the broker (HOTLEAD_KAFKA_BOOTSTRAP, default 127.0.0.1:9092).
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from benchmarks.report import hardware, write_section
from schemas.codec import decode_event, encode_event, encode_key
from schemas.envelope import CloudEvent
from schemas.topics import EVENTS, HANDOFFS, SEGMENTS
from services.common.gc_tuning import tune_gc
from services.common.kafka_settings import KafkaSettings
from services.common.logging import configure_logging
from services.common.socket_reads import cap_socket_reads
from services.common.topics import TopicSpec, delete_topics, ensure_topics, topic_specs
from services.scorer.changelog import ChangelogWriter
from services.scorer.core import apply_event
from services.scorer.memory import MemoryTable
from services.scorer.metrics import ScorerMetrics
from services.scorer.partitioning import KeyPartitioner
from services.scorer.processor import BatchScorer, Record
from services.scorer.rules import Rules, load_rules
from services.scorer.settings import ScorerSettings
from services.scorer.sink import BatchSink
from services.scorer.state import LeadState
from services.scorer.state_cache import StateCache
from services.scorer.write_back import Encoded
from tests.scorer.corpus import build_corpus
from tests.scorer.worker import ScorerProcess

DOC = Path(__file__).resolve().parents[1] / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- scorer-bench:begin -->", "<!-- scorer-bench:end -->"
PARTITIONS = 3
BATCH = 500
"""Most records of one fetched batch (the worker's default batch size)."""
SCORER_DEFAULTS = ScorerSettings.model_fields
COMMIT_INTERVAL_S = SCORER_DEFAULTS["scorer_commit_interval_s"].default
"""How often offsets are committed (the worker's default)."""


def score_corpus(corpus: list[CloudEvent], rules: Rules) -> dict[str, LeadState]:
    """The pure core over `corpus` in order (offsets as positions): states by lead."""
    states: dict[str, LeadState] = {}
    for offset, event in enumerate(corpus):
        lead = event.subject or ""
        state = states.get(lead)
        if state is None:
            state = states[lead] = LeadState(lead_id=lead)
        apply_event(state, event, rules, position=offset)
    return states


def bench_core(corpus: list[CloudEvent]) -> float:
    """The pure core alone: events already decoded, states in a dict."""
    rules = load_rules()
    started = time.perf_counter()
    score_corpus(corpus, rules)
    return len(corpus) / (time.perf_counter() - started)


def bench_core_decoding(records: list[bytes]) -> float:
    """The core with decoding: record bytes -> typed event -> apply_event."""
    rules = load_rules()
    states: dict[str, LeadState] = {}
    started = time.perf_counter()
    for offset, value in enumerate(records):
        event = decode_event(value)
        lead = event.subject or ""
        state = states.get(lead)
        if state is None:
            state = states[lead] = LeadState(lead_id=lead)
        apply_event(state, event, rules, position=offset)
    return len(records) / (time.perf_counter() - started)


async def produce(bootstrap: str, topic: str, corpus: list[CloudEvent]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=20
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, encode_event(e), key=encode_key(e)) for e in corpus]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@dataclass(frozen=True, slots=True)
class Rate:
    total: float
    """events / (start to everything committed), start-up included"""
    steady: float
    """events after the first commit / time from the first commit to the last"""
    cpu_us: float = float("nan")
    """CPU time of the consuming process per event, from the first commit to the last"""


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of a process (this one by default), from /proc."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def committed_total(consumer: AIOKafkaConsumer, topic: str) -> int:
    total = 0
    for partition in range(PARTITIONS):
        total += await consumer.committed(TopicPartition(topic, partition)) or 0
    return total


async def bench_worker(settings: KafkaSettings, count: int, workdir: Path) -> Rate:
    """One `hotlead scorer` process; its committed offsets polled with one consumer."""
    app_id = f"bench-{uuid.uuid4().hex[:8]}-scorer"
    topic = settings.topic(EVENTS)
    worker = ScorerProcess(settings, app_id, workdir, store="rocksdb://")
    worker.env["HOTLEAD_SCORER_SESSION_TIMEOUT_S"] = "30"
    probe = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=app_id)
    await probe.start()
    started = time.monotonic()
    first: tuple[float, int] | None = None
    cpu = [0.0, 0.0]
    try:
        worker.start(timeout_s=120)  # the topic is full: the worker starts consuming at once
        pid = worker.process.pid if worker.process else None
        while True:
            done = await committed_total(probe, topic)
            now = time.monotonic()
            if first is None and done > 0:
                first = (now, done)
                cpu[0] = cpu_seconds(pid)
            if done >= count:
                cpu[1] = cpu_seconds(pid)
                break
            await asyncio.sleep(0.25)
    finally:
        worker.stop()
        await probe.stop()
    await delete_topics(settings.kafka_bootstrap, [f"{app_id}-leads-changelog"])
    assert first is not None  # noqa: S101 - done >= count > 0
    steady = (count - first[1]) / (now - first[0]) if now > first[0] else float("nan")
    cpu_us = (cpu[1] - cpu[0]) / (count - first[1]) * 1e6 if count > first[1] else float("nan")
    return Rate(total=count / (now - started), steady=steady, cpu_us=cpu_us)


class KafkaStateTable(MemoryTable):
    """The bare loop's 'table': a dict, and every stored state also written to a
    compacted topic the way the worker's table writes its changelog
    (`ChangelogWriter`: the latest state per lead, sent at the commit);
    `flush` (before each commit) sends them and waits for the acks."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        super().__init__()
        self.topic = topic
        self.changelog = ChangelogWriter(lambda: producer)

    async def save_encoded(self, records: list[Encoded]) -> None:
        for key, raw, partition in records:
            self.states[key.decode()] = (raw, partition)
        await self.changelog.add(self.topic, records)

    async def flush(self) -> None:
        await self.changelog.flush(self.topic)


async def bench_bare(settings: KafkaSettings, count: int) -> Rate:
    """consume -> BatchScorer (same core, same emit-then-store) -> produce, committing as
    the worker does: batches per partition, state acks awaited before each commit (1/s)."""
    bootstrap = settings.kafka_bootstrap
    state_topic = settings.topic("bench-state")
    await ensure_topics(
        bootstrap, [TopicSpec(state_topic, PARTITIONS, 1, {"cleanup.policy": "compact"})]
    )
    group = f"bench-{uuid.uuid4().hex[:8]}-bare"
    consumer = AIOKafkaConsumer(
        settings.topic(EVENTS),
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        max_batch_size=524_288,  # as the worker's producer
        linger_ms=5,
        partitioner=KeyPartitioner(),
    )
    await producer.start()
    await consumer.start()
    table = KafkaStateTable(producer, state_topic)
    scorer = BatchScorer(
        load_rules(),
        table,
        BatchSink(lambda: producer, settings.topic(SEGMENTS), settings.topic(HANDOFFS)),
        ScorerMetrics(),
        # as the worker: the same number of states kept in memory between batches, and
        # a batch scored while the outputs of the one before wait for their acks
        cache=StateCache(SCORER_DEFAULTS["scorer_state_cache_size"].default),
        overlap=SCORER_DEFAULTS["scorer_overlap_acks"].default,
    )
    done = 0
    started = time.monotonic()
    first: tuple[float, int] | None = None
    cpu_first = 0.0
    last_commit = started
    try:
        while done < count:
            # as the worker: what a fetch brought (every partition) scored as one batch,
            # states' acks awaited and offsets committed once a second (and at the end)
            fetched = await consumer.getmany(timeout_ms=500, max_records=BATCH * PARTITIONS)
            batch = [
                Record(r.key, r.value, tp.partition, r.offset)
                for tp, records in fetched.items()
                for r in records
            ]
            if batch:
                await scorer.score_batch(batch)
                done += len(batch)
            now = time.monotonic()
            if now - last_commit >= COMMIT_INTERVAL_S or done >= count:
                await scorer.drain()  # as the worker before each commit
                await table.flush()
                await consumer.commit()
                last_commit = now
                if first is None and done > 0:
                    first = (time.monotonic(), done)
                    cpu_first = cpu_seconds()
        ended = time.monotonic()
        cpu_us = (cpu_seconds() - cpu_first) / (count - first[1]) * 1e6 if first else 0.0
        assert first is not None  # noqa: S101 - done >= count > 0
        steady = (count - first[1]) / (ended - first[0]) if ended > first[0] else float("nan")
        return Rate(total=count / (ended - started), steady=steady, cpu_us=cpu_us)
    finally:
        await consumer.stop()
        await producer.stop()


def write_doc(lines: list[str]) -> None:
    write_section(BEGIN, END, lines, DOC)


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--events-per-lead", type=int, default=10)
    parser.add_argument(
        "--core-leads",
        type=int,
        default=5_000,
        help="leads of the pure core's first corpus (the one measured since the first"
        " session); its second is the worker's",
    )
    parser.add_argument("--no-doc", action="store_true", help="print only, leave the doc alone")
    parser.add_argument(
        "--core-only", action="store_true", help="only the pure core rows (no broker); no doc"
    )
    args = parser.parse_args()
    configure_logging("WARNING")  # the bench itself prints only its results

    small = build_corpus(args.core_leads, args.events_per_lead)
    small_count = len(small)
    small_records = [encode_event(event) for event in small]
    corpus = build_corpus(args.leads, args.events_per_lead)
    records = [encode_event(event) for event in corpus]
    count = len(corpus)
    tune_gc()  # what `hotlead scorer` does after start-up; the bare loop runs with it too
    cap_socket_reads()  # likewise
    small_rate = bench_core(small)
    print(
        f"pure core (decoded events), {args.core_leads:,} leads: {small_rate:,.0f} events/s",
        flush=True,
    )
    small_decoding = bench_core_decoding(small_records)
    print(f"pure core with decoding, {args.core_leads:,} leads: {small_decoding:,.0f} events/s")
    del small, small_records
    core_rate = bench_core(corpus)
    print(f"pure core (decoded events), {args.leads:,} leads: {core_rate:,.0f} events/s")
    decoding_rate = bench_core_decoding(records)
    print(f"pure core with decoding, {args.leads:,} leads: {decoding_rate:,.0f} events/s")
    if args.core_only:
        return

    base = KafkaSettings()
    settings = KafkaSettings(
        kafka_bootstrap=base.kafka_bootstrap,
        topic_prefix=f"bench-{uuid.uuid4().hex[:8]}.",
        events_partitions=PARTITIONS,
        partitions=PARTITIONS,
    )
    specs = topic_specs(settings)
    await ensure_topics(settings.kafka_bootstrap, specs)
    try:
        await produce(settings.kafka_bootstrap, settings.topic(EVENTS), corpus)
        del corpus, records
        with tempfile.TemporaryDirectory() as workdir:
            worker = await bench_worker(settings, count, Path(workdir))
        print(
            f"scorer worker (faust, RocksDB): {worker.steady:,.0f} events/s steady, "
            f"{worker.total:,.0f} events/s start to end, "
            f"{worker.cpu_us:.0f} us of its CPU per event (steady)",
            flush=True,
        )
        bare = await bench_bare(settings, count)
        print(
            f"bare aiokafka loop: {bare.steady:,.0f} events/s steady, "
            f"{bare.total:,.0f} events/s start to end, "
            f"{bare.cpu_us:.0f} us of CPU per event (steady, this process)",
            flush=True,
        )
    finally:
        await delete_topics(
            settings.kafka_bootstrap,
            [spec.name for spec in specs] + [settings.topic("bench-state")],
        )

    ratio = worker.steady / bare.steady
    ratio_total = worker.total / bare.total
    print(f"worker/bare ratio: {ratio:.2f}x steady, {ratio_total:.2f}x start to end")
    if args.no_doc:
        return
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    write_doc(
        [
            "## Scorer",
            "",
            f"Measured {when} by `make bench` (`python -m benchmarks.bench_scorer`) "
            f"on {hardware()},",
            "with the local single-node Kafka broker on the same machine (shared with other work).",
            "All rows come from this one run.",
            "",
            f"Corpus: {count:,} events for {args.leads:,} leads (tests/scorer/corpus.py: email,",
            "pages, downloads, forms, attribute updates, CRM feedback, 3 % bot events, 3 %",
            f"repeated ids), default rules, event log with {PARTITIONS} partitions, written",
            "before each run starts.",
            "",
            "| what | events/s | target |",
            "| --- | ---: | --- |",
            f"| pure core: `apply_event` on decoded events, states in a dict, "
            f"{small_count:,} events for {args.core_leads:,} leads "
            f"| {small_rate:,.0f} | >= 100,000 |",
            f"| pure core with decoding: record bytes -> `decode_event` (pydantic) -> "
            f"`apply_event`, the same corpus | {small_decoding:,.0f} | |",
            f"| pure core, the worker's corpus ({count:,} events for {args.leads:,} leads) "
            f"| {core_rate:,.0f} | |",
            f"| pure core with decoding, the worker's corpus | {decoding_rate:,.0f} | |",
            f"| one scorer worker (`hotlead scorer`, RocksDB table), steady state "
            f"| {worker.steady:,.0f} | >= 20,000 |",
            f"| the same worker, start (process launch) to all committed | {worker.total:,.0f} | |",
            "| bare aiokafka loop (consume, same BatchScorer, outputs acked, states to a "
            f"compacted topic, commit every second), steady state | {bare.steady:,.0f} | |",
            f"| the same bare loop, start to all committed | {bare.total:,.0f} | |",
            f"| worker / bare loop, steady state | {ratio:.2f}x | >= 0.5x |",
            f"| worker / bare loop, start to end | {ratio_total:.2f}x | |",
            "",
            "Steady state: the events committed after the first commit was seen, divided by",
            "the time from that first commit to the last (polled every 0.25 s). Both commit",
            "once a second (HOTLEAD_SCORER_COMMIT_INTERVAL_S), each commit storing the states",
            "changed since the last one and waiting for their changelog acks, and score what a",
            "fetch brought from every partition as one batch. The worker commits by time only,",
            "so its last commit comes up to a second after its last event, and that wait counts",
            "against it; the bare loop commits as soon as it has scored the last event.",
            "Start to end includes the worker's process start, group join, changelog creation",
            "and recovery.",
            "Both the worker and this process use the same GC settings",
            "(services/common/gc_tuning.py). The worker logs at INFO (a JSON line per batch",
            "with hand-offs, to a file); the bare loop logs nothing.",
            f"CPU time per event over the steady part: {worker.cpu_us:.0f} us in the worker",
            f"process (utime + stime from /proc), {bare.cpu_us:.0f} us in the bare loop's process",
            "(which also runs its consumer and producer in-process).",
            "",
            "Targets: "
            + ", ".join(
                (
                    f"core >= 100,000/s {_met(small_rate >= 100_000)} on the"
                    f" {args.core_leads:,}-lead corpus ({core_rate:,.0f}/s on the worker's)",
                    f"worker >= 20,000/s {_met(worker.steady >= 20_000)}",
                    f"ratio >= 0.5x {_met(ratio >= 0.5)}",
                )
            )
            + ".",
            "",
            "Both keep up to HOTLEAD_SCORER_STATE_CACHE_SIZE decoded lead states in memory",
            f"between batches ({SCORER_DEFAULTS['scorer_state_cache_size'].default:,}; the corpus"
            f" has {args.leads:,} leads) and score the next batch while",
            "the previous batch's outputs wait for their acks (HOTLEAD_SCORER_OVERLAP_ACKS),",
            "completing the batch in flight before each commit.",
            "",
            "Where the time goes (py-spy on the worker, all threads, 205,504 events for 20,000",
            "leads, sixth session): the per-record loop with the compiled core 34 %, decoding",
            "the CloudEvent with pydantic 16 %, storing the changed states 17 % (encoding 11 %,",
            "RocksDB 4 %), faust's consumer thread 11 % (aiokafka building a record object per",
            "record 8 %), sending the outputs 5 %, the rest faust's commit and asyncio. The bare",
            "loop runs the same BatchScorer with aiokafka's consumer in its own asyncio loop",
            "(at most 1,500 records per getmany) and now costs more CPU per event than the",
            "worker; it is the baseline the ratio asks for, not tuned further. The machine's two",
            "cores are shared with the broker, so the absolute numbers are pessimistic.",
        ]
    )
    print(f"written to {DOC}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
