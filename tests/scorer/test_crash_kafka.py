"""The crash test: a fixed corpus scored while the worker is SIGKILLed and
restarted several times gives exactly the pure core's scores, and every
qualification appears in the hand-off topic under exactly one id.

Downstream consumers deduplicate by hand-off id: a crash between emitting a
batch's outputs and storing its states re-emits the same outputs (same ids,
same bytes). The test checks that copies are byte-identical and reports how
many there were.
"""

import asyncio
import random
import time
from collections import defaultdict
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.codec import decode_event, encode_event, encode_key
from schemas.event_types import EventType
from schemas.topics import EVENTS, HANDOFFS, SEGMENTS
from services.common.kafka_settings import KafkaSettings
from services.scorer.core import apply_event
from services.scorer.evaluate import evaluate
from services.scorer.rules import load_rules
from services.scorer.state import LeadState
from tests.scorer.corpus import build_corpus
from tests.scorer.worker import ScorerProcess

pytestmark = pytest.mark.kafka

LEADS = 5_000
EVENTS_PER_LEAD = 10
KILLS = 3


async def produce_corpus(bootstrap: str, topic: str) -> list[tuple[int, int, bytes]]:
    """Writes the corpus; returns (partition, offset, value) of every record."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=20
    )
    await producer.start()
    try:
        corpus = build_corpus(LEADS, EVENTS_PER_LEAD)
        values = [encode_event(e) for e in corpus]
        futures = [
            await producer.send(topic, value, key=encode_key(event))
            for event, value in zip(corpus, values, strict=True)
        ]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [(m.partition, m.offset, v) for m, v in zip(metadata, values, strict=True)]


async def read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    out: list[tuple[bytes | None, bytes | None]] = []
    try:
        partitions = consumer.assignment()
        while not partitions:
            await asyncio.sleep(0.1)
            partitions = consumer.assignment()
        end = await consumer.end_offsets(list(partitions))
        done = {tp for tp, offset in end.items() if offset == 0}
        while len(done) < len(partitions):
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for tp, records in batch.items():
                out.extend((r.key, r.value) for r in records)
                if records and records[-1].offset + 1 >= end[tp]:
                    done.add(tp)
    finally:
        await consumer.stop()
    return out


def describe_difference(got: LeadState, want: LeadState) -> str:
    fields = list(LeadState.__dataclass_fields__)
    diffs = [
        f"{name}: got {getattr(got, name)!r:.300} want {getattr(want, name)!r:.300}"
        for name in fields
        if getattr(got, name) != getattr(want, name)
    ]
    return f"{want.lead_id}: " + "; ".join(diffs)


async def committed_everything(bootstrap: str, group: str, topic: str, partitions: int) -> bool:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        end = await consumer.end_offsets(tps)
        for tp in tps:
            if (await consumer.committed(tp) or 0) < end[tp]:
                return False
        return True
    finally:
        await consumer.stop()


async def test_sigkilled_worker_scores_exactly_like_the_pure_core(
    kafka_settings: KafkaSettings, tmp_path: Path, unique: str
) -> None:
    bootstrap = kafka_settings.kafka_bootstrap
    source = kafka_settings.topic(EVENTS)
    records = await produce_corpus(bootstrap, source)
    assert len(records) >= 50_000

    # the reference: the pure core over the same log, partition by partition
    rules = load_rules()
    reference: dict[str, LeadState] = {}
    expected_handoffs: set[str] = set()
    expected_segments: set[str] = set()
    for _, offset, value in sorted(records, key=lambda r: (r[0], r[1])):
        event = decode_event(value)
        assert event.subject is not None
        state = reference.setdefault(event.subject, LeadState(lead_id=event.subject))
        for output in apply_event(state, event, rules, position=offset).outputs:
            target = (
                expected_handoffs
                if output.type == EventType.HANDOFF_REQUESTED
                else expected_segments
            )
            target.add(output.id)
    assert len(reference) >= LEADS
    assert len(expected_handoffs) > 1_000  # the corpus crosses thresholds often

    app_id = f"test-{unique}-crash"
    worker = ScorerProcess(kafka_settings, app_id, tmp_path, store="rocksdb://")
    rng = random.Random(42)
    started = time.monotonic()
    try:
        worker.start(timeout_s=90)
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(1.5, 4.0))
            worker.kill()
            worker.start(timeout_s=90)
        deadline = time.monotonic() + 240
        partitions = kafka_settings.events_partitions
        while not await committed_everything(bootstrap, app_id, source, partitions):
            assert time.monotonic() < deadline, "the worker did not finish the corpus in time"
            await asyncio.sleep(1)
        elapsed = time.monotonic() - started
    finally:
        worker.stop()
    assert worker.starts == KILLS + 1

    # final states: the last value per lead in the table's changelog
    changelog = await read_all(bootstrap, f"{app_id}-leads-changelog")
    final: dict[str, LeadState] = {}
    for key, value in changelog:
        assert key is not None
        if value is not None:
            final[key.decode()] = LeadState.from_bytes(value)
    assert final.keys() == reference.keys()
    mismatched = [lead for lead, state in reference.items() if final[lead] != state]
    assert mismatched == [], [
        describe_difference(final[lead], reference[lead]) for lead in mismatched[:3]
    ]
    for lead, state in reference.items():
        assert evaluate(final[lead], rules).score == evaluate(state, rules).score

    # outputs: every qualification under exactly one id; copies are identical
    for topic, expected in ((HANDOFFS, expected_handoffs), (SEGMENTS, expected_segments)):
        copies: dict[str, set[bytes]] = defaultdict(set)
        count = 0
        for _, value in await read_all(bootstrap, kafka_settings.topic(topic)):
            assert value is not None
            copies[decode_event(value).id].add(value)
            count += 1
        assert copies.keys() == expected, topic
        assert all(len(versions) == 1 for versions in copies.values()), topic
        print(f"{topic}: {len(copies)} ids, {count - len(copies)} repeated copies")
    print(f"{len(records)} events, {len(reference)} leads, {KILLS} kills, {elapsed:.1f}s")
