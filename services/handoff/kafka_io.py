"""The Kafka side: one durable producer (events and keyed state) and reading a compacted topic."""

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from schemas.codec import encode_event, encode_key
from schemas.envelope import CloudEvent
from services.common.errors import KafkaUnavailableError
from services.handoff.state import Record


class HandoffProducer:
    """acks=all, idempotent: a returned call means the cluster has the record.
    Implements both `Publisher` (events) and `KeyedStore` (state records)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=1,
            request_timeout_ms=10_000,
        )

    async def start(self) -> None:
        try:
            await self._producer.start()
        except (KafkaError, OSError) as exc:
            await self._producer.stop()
            raise KafkaUnavailableError(self.bootstrap, exc) from exc

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, topic: str, event: CloudEvent) -> None:
        try:
            await self._producer.send_and_wait(topic, encode_event(event), key=encode_key(event))
        except KafkaError as exc:
            raise KafkaUnavailableError(self.bootstrap, exc) from exc

    async def put(self, topic: str, key: str, value: bytes | None) -> None:
        try:
            await self._producer.send_and_wait(topic, value, key=key.encode())
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
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
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
