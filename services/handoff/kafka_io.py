"""The Kafka side: one durable producer (events and keyed state) and reading a compacted topic."""

import asyncio
from collections.abc import Awaitable

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from services.common.errors import KafkaUnavailableError
from services.common.publisher import KafkaPublisher
from services.common.topics import topic_partitions
from services.handoff.state import Record


class HandoffProducer(KafkaPublisher):
    """The shared durable publisher (acks=all, idempotent), which also writes raw
    keyed state records: both `Publisher` (events) and `KeyedStore` (state)."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, linger_ms=1)

    async def put(self, topic: str, key: str, value: bytes | None) -> None:
        await (await self.enqueue(topic, key, value))

    async def enqueue(self, topic: str, key: str, value: bytes | None) -> Awaitable[None]:
        try:
            sent = await self._producer.send(topic, value, key=key.encode())
        except KafkaError as exc:
            raise KafkaUnavailableError(self.bootstrap, exc) from exc
        return self._acknowledged(sent)

    async def _acknowledged(self, sent: "asyncio.Future[object]") -> None:
        try:
            await sent
        except KafkaError as exc:
            raise KafkaUnavailableError(self.bootstrap, exc) from exc


async def read_keyed_topic(bootstrap: str, topic: str) -> list[Record]:
    """Every record of a (compacted) topic up to its end at call time, in offset order
    per partition (keys never move between partitions, so per-key order holds)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        await consumer.start()
    except (KafkaError, OSError) as exc:
        await consumer.stop()
        raise KafkaUnavailableError(bootstrap, exc) from exc
    try:
        tps = await topic_partitions(consumer, topic)
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        records: list[Record] = []
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, messages in batch.items():
                for message in messages:
                    if message.offset < ends[tp] and message.key is not None:
                        records.append((message.key.decode(), message.value))
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return records
    finally:
        await consumer.stop()
