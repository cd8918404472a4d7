from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer

from schemas import decode_event
from schemas.events import PageViewed
from schemas.topics import EVENTS
from services.common.errors import KafkaUnavailableError
from services.common.kafka_settings import KafkaSettings
from services.common.publisher import KafkaPublisher, MemoryPublisher

EVENT = PageViewed(
    id="pv-1",
    source="/beacon",
    subject="lead-7",
    time=datetime(2026, 1, 16, 9, 30, tzinfo=UTC),
    data={"url": "https://example.com/pricing"},  # type: ignore[arg-type]
)


async def test_memory_publisher_keeps_events_per_topic() -> None:
    publisher = MemoryPublisher()
    await publisher.publish("a", EVENT)
    await publisher.publish("b", EVENT)
    assert publisher.on("a") == [EVENT]
    assert publisher.published == [("a", EVENT), ("b", EVENT)]


@pytest.mark.kafka
async def test_kafka_publisher_writes_keyed_records(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    publisher = KafkaPublisher(kafka_settings.kafka_bootstrap)
    await publisher.start()
    try:
        await publisher.publish(kafka_settings.topic(EVENTS), EVENT)
    finally:
        await publisher.stop()
    consumer = AIOKafkaConsumer(
        kafka_settings.topic(EVENTS),
        bootstrap_servers=kafka_settings.kafka_bootstrap,
        group_id=f"test-{unique}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert record.key == b"lead-7"
    assert record.value is not None
    assert decode_event(record.value) == EVENT


async def test_an_unreachable_cluster_is_reported() -> None:
    publisher = KafkaPublisher("127.0.0.1:9", request_timeout_ms=2000)
    with pytest.raises(KafkaUnavailableError, match=r"127\.0\.0\.1:9 does not answer"):
        await publisher.start()
