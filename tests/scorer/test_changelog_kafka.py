"""ChangelogWriter on the real broker: what a flush returns is what the topic holds."""

from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from services.scorer.changelog import ChangelogWriter
from tests.scorer.kafka_read import read_partitions

pytestmark = pytest.mark.kafka


async def test_the_latest_state_per_lead_in_batches_and_the_last_offsets(
    kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = await topic_factory("changelog", partitions=3)
    # small batches, so a partition's states go out as several record batches
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        max_batch_size=4096,
        linger_ms=5,
    )
    await producer.start()
    try:
        writer = ChangelogWriter(lambda: producer, max_pending=150)
        expected: dict[int, dict[bytes, bytes]] = {0: {}, 1: {}, 2: {}}
        for round_ in range(3):  # 100 leads a round, 50 of them written the round before
            records = []
            for n in range(round_ * 50, round_ * 50 + 100):
                key, value = f"lead-{n}".encode(), f"{round_}:{n}:".encode() + b"x" * 300
                records.append((key, value, n % 3))
                expected[n % 3][key] = value
            await writer.add(topic, records)
        last = await writer.flush(topic)
        assert await writer.flush(topic) == {}  # nothing left
    finally:
        await producer.stop()
    written = await read_partitions(kafka_bootstrap, topic, 3)
    for partition in range(3):
        records = written[partition]
        assert last[partition] == records[-1].offset
        latest = {r.key: r.value for r in records}  # compaction's view: the last per key
        assert latest == expected[partition]
    # rounds 0 and 1 made 150 leads wait: sent then; round 2 left 100 for the flush
    assert sum(len(r) for r in written.values()) == 250
