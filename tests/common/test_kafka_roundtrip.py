"""Records written with aiokafka come back unchanged, through aiokafka and
through kcat, an independent Kafka client."""

import asyncio
import json
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas import decode_event, encode_event
from schemas.codec import encode_key
from schemas.jsonschema import EXAMPLES_DIR

pytestmark = pytest.mark.kafka

EXAMPLES = sorted(EXAMPLES_DIR.glob("*.json"))


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def consume_all(
    bootstrap: str, topic: str, count: int, group: str
) -> list[tuple[bytes | None, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        got: list[tuple[bytes | None, bytes]] = []
        for _ in range(50):
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                got.extend((m.key, m.value) for m in messages if m.value is not None)
            if len(got) >= count:
                break
        await consumer.commit()
        return got
    finally:
        await consumer.stop()


async def test_examples_round_trip_through_the_broker_and_kcat(
    kafka_bootstrap: str, topic_factory: Callable[..., Any], unique: str
) -> None:
    kcat = shutil.which("kcat")
    assert kcat, "kcat is not installed: apt-get install kcat (.ci/run installs it)"
    topic = await topic_factory("examples", partitions=1)
    events = [decode_event(path.read_bytes()) for path in EXAMPLES]
    sent = [(encode_key(event), encode_event(event)) for event in events]

    await produce(kafka_bootstrap, topic, sent)

    received = await consume_all(kafka_bootstrap, topic, len(sent), group=f"test-{unique}")
    assert received == sent
    assert [decode_event(value) for _, value in received] == events

    command = [kcat, "-b", kafka_bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-J"]
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, check=True
    )
    by_kcat = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [(r["key"], r["payload"]) for r in by_kcat] == [
        (key.decode() if key else None, value.decode()) for key, value in sent
    ]


async def test_committed_offsets_resume_a_consumer_group(
    kafka_bootstrap: str, topic_factory: Callable[..., Any], unique: str
) -> None:
    topic = await topic_factory("resume", partitions=2)
    first = [(f"lead-{i}".encode(), f"first-{i}".encode()) for i in range(10)]
    second = [(f"lead-{i}".encode(), f"second-{i}".encode()) for i in range(10)]
    group = f"test-{unique}"

    await produce(kafka_bootstrap, topic, first)
    assert sorted(await consume_all(kafka_bootstrap, topic, 10, group)) == sorted(first)
    await produce(kafka_bootstrap, topic, second)
    assert sorted(await consume_all(kafka_bootstrap, topic, 10, group)) == sorted(second)
