"""BatchSink on the real broker: the same records on the same partitions, in the
same order, as `producer.send` with the producer's partitioner; big groups split;
a failed batch fails what `send` returned (and `emit`)."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.common.topics import TopicSpec, delete_topics, ensure_topics
from services.scorer.core import apply_event
from services.scorer.outputs import HandoffOutput, Output, SegmentOutput
from services.scorer.partitioning import KeyPartitioner
from services.scorer.rules import load_rules
from services.scorer.sink import BatchSink
from services.scorer.state import LeadState
from tests.scorer.corpus import build_corpus
from tests.scorer.kafka_read import read_partitions

pytestmark = pytest.mark.kafka

Records = dict[int, list[tuple[bytes | None, bytes | None]]]


def corpus_outputs(leads: int = 120, events_per_lead: int = 12) -> list[Output]:
    """The outputs of the pure core over a corpus, in the order it made them."""
    rules = load_rules()
    states: dict[str, LeadState] = {}
    outputs: list[Output] = []
    for position, event in enumerate(build_corpus(leads, events_per_lead)):
        lead = event.subject or ""
        state = states.setdefault(lead, LeadState(lead_id=lead))
        outputs.extend(apply_event(state, event, rules, position=position).outputs)
    return outputs


OUTPUTS = corpus_outputs()


async def read_all(bootstrap: str, topic: str, partitions: int) -> Records:
    read = await read_partitions(bootstrap, topic, partitions)
    return {p: [(r.key, r.value) for r in records] for p, records in read.items()}


@pytest.fixture
async def producer_for(kafka_bootstrap: str) -> AsyncIterator[Callable[..., Any]]:
    """Started producers configured as the worker's (acks=all, idempotent, KeyPartitioner)."""
    started: list[AIOKafkaProducer] = []

    async def make(max_batch_size: int = 524_288) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            max_batch_size=max_batch_size,
            linger_ms=5,
            partitioner=KeyPartitioner(),
        )
        await producer.start()
        started.append(producer)
        return producer

    yield make
    for producer in started:
        await producer.stop()


async def sent_one_by_one(producer: AIOKafkaProducer, topics: tuple[str, str]) -> None:
    """What the worker did before BatchSink: one `producer.send` per output."""
    segments, handoffs = topics
    futures = []
    for output in OUTPUTS:
        topic = handoffs if isinstance(output, HandoffOutput) else segments
        futures.append(await producer.send(topic, output.encode(), output.key()))
    for future in futures:
        await future


def scored_batches(outputs: list[Output], size: int) -> list[list[Output]]:
    return [outputs[n : n + size] for n in range(0, len(outputs), size)]


@pytest.mark.parametrize("max_batch_size", [524_288, 4096])
async def test_the_same_records_on_the_same_partitions_as_send(
    kafka_bootstrap: str, topic_factory: Any, producer_for: Any, max_batch_size: int
) -> None:
    assert {type(o) for o in OUTPUTS} == {SegmentOutput, HandoffOutput}
    batched = (await topic_factory("segments", 3), await topic_factory("handoffs", 3))
    reference = (await topic_factory("segments", 3), await topic_factory("handoffs", 3))
    producer = await producer_for(max_batch_size)
    sink = BatchSink(lambda: producer, *batched)
    acks = []
    for outputs in scored_batches(OUTPUTS, 150):  # several scored batches, acks pending
        acks.append(await sink.send(outputs))
    batches_acked = 0
    for ack in acks:
        results = await ack
        assert isinstance(results, list)
        batches_acked += len(results)
    await sent_one_by_one(await producer_for(), reference)

    groups = {
        (type(o), o.key()) for o in OUTPUTS
    }  # (every lead with outputs of each kind spreads over the 3 partitions)
    assert len(groups) > 20
    for got_topic, want_topic in zip(batched, reference, strict=True):
        got = await read_all(kafka_bootstrap, got_topic, 3)
        want = await read_all(kafka_bootstrap, want_topic, 3)
        assert got == want  # same keys and values, same partitions, same order
        assert all(want.values())  # every partition has records
    # one record batch per topic and partition of a scored batch, unless too big for one
    per_scored_batch = [
        len({(type(o), KeyPartitioner()(o.key(), [0, 1, 2], [0, 1, 2])) for o in outputs})
        for outputs in scored_batches(OUTPUTS, 150)
    ]
    if max_batch_size == 524_288:
        assert batches_acked == sum(per_scored_batch)
    else:  # 150 outputs of ~0.3-1.5 KB over at most 6 groups: several batches each
        assert batches_acked > sum(per_scored_batch)


async def test_emit_waits_for_the_acks(
    kafka_bootstrap: str, topic_factory: Any, producer_for: Any
) -> None:
    topics = (await topic_factory("segments", 3), await topic_factory("handoffs", 3))
    producer = await producer_for()
    sink = BatchSink(lambda: producer, *topics)
    await sink.emit(OUTPUTS[:40])
    await sink.emit([])
    await (await sink.send([]))  # nothing to send: done at once
    # emit returned once acked: the records are readable without a flush
    segments = await read_all(kafka_bootstrap, topics[0], 3)
    handoffs = await read_all(kafka_bootstrap, topics[1], 3)
    written = sum(len(r) for r in segments.values()) + sum(len(r) for r in handoffs.values())
    assert written == 40


@pytest.fixture
async def tiny_topics(kafka_bootstrap: str, unique: str) -> AsyncIterator[tuple[str, str]]:
    """Topics whose broker refuses record batches over 2,000 bytes."""
    names = (f"test-{unique}.tiny-segments", f"test-{unique}.tiny-handoffs")
    config = {"max.message.bytes": "2000"}
    await ensure_topics(kafka_bootstrap, [TopicSpec(name, 3, 1, config) for name in names])
    yield names
    await delete_topics(kafka_bootstrap, list(names))


async def test_a_failed_batch_fails_send_and_emit(
    tiny_topics: tuple[str, str], producer_for: Any
) -> None:
    producer = await producer_for()
    sink = BatchSink(lambda: producer, *tiny_topics)
    acks = await sink.send(OUTPUTS[:150])  # queued: the broker refuses them later
    with pytest.raises(KafkaError):
        await acks
    with pytest.raises(KafkaError):
        await sink.emit(OUTPUTS[150:300])
