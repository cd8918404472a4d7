"""The producer of the ingest service: acks=all, idempotent, reconnectable, batched.

Unlike services.common.publisher.KafkaPublisher it can be created before
Kafka answers and started again after a failed start (a fresh aiokafka
producer per attempt), it writes a batch with one wait for all acks, and it
can ping the cluster for /readyz.
"""

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner

from schemas.codec import encode_event, encode_key
from schemas.envelope import CloudEvent
from services.common.errors import KafkaUnavailableError


class IngestKafkaPublisher:
    def __init__(
        self, bootstrap: str, *, linger_ms: int = 5, request_timeout_ms: int = 10_000
    ) -> None:
        self.bootstrap = bootstrap
        self._linger_ms = linger_ms
        self._request_timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = DefaultPartitioner()

    @property
    def connected(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Connect; KafkaUnavailableError when the cluster does not answer (call again later)."""
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=self._linger_ms,
            request_timeout_ms=self._request_timeout_ms,
            max_batch_size=1_048_576,
        )
        try:
            await producer.start()
        except (KafkaError, OSError) as exc:
            await producer.stop()
            raise KafkaUnavailableError(self.bootstrap, exc) from exc
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    def _require(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise KafkaUnavailableError(self.bootstrap, RuntimeError("not connected"))
        return self._producer

    async def publish(self, topic: str, event: CloudEvent) -> None:
        await self.publish_many(topic, [event])

    async def publish_many(self, topic: str, events: Sequence[CloudEvent]) -> None:
        """Write `events`; returns once Kafka acknowledged every one.

        Records are grouped per partition (the same murmur2 partitioner as the
        Java client and aiokafka's `send`, so a lead always lands on one
        partition) and sent as one batch per partition, in order: much less
        work per record than one `send` each.
        """
        producer = self._require()
        try:
            partitions = sorted(await producer.partitions_for(topic))
            grouped: dict[int, list[tuple[bytes | None, bytes]]] = {}
            for event in events:
                key = encode_key(event)
                partition = self._partitioner(key, partitions, partitions)
                grouped.setdefault(partition, []).append((key, encode_event(event)))
            pending = []
            for partition, records in grouped.items():
                batch = producer.create_batch()
                for key, value in records:
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        pending.append(await self._submit(producer, batch, topic, partition))
                        batch = producer.create_batch()
                        if batch.append(key=key, value=value, timestamp=None) is None:
                            raise MessageSizeTooLargeError(f"a record of {len(value)} bytes")
                pending.append(await self._submit(producer, batch, topic, partition))
            await asyncio.gather(*pending)
        except KafkaError as exc:
            raise KafkaUnavailableError(self.bootstrap, exc) from exc

    async def _submit(
        self, producer: AIOKafkaProducer, batch: Any, topic: str, partition: int
    ) -> "asyncio.Future[Any]":
        """Queue one record batch. aiokafka 0.14's add_batch subtracts the total time
        waited on every pass of its loop, so under concurrent batches it gives up
        long before its timeout (KafkaTimeoutError, the batch not queued): retry
        until our own deadline."""
        deadline = time.monotonic() + self._request_timeout_ms / 1000
        while True:
            try:
                future: asyncio.Future[Any] = await producer.send_batch(
                    batch, topic, partition=partition
                )
                return future
            except KafkaTimeoutError:
                if time.monotonic() >= deadline:
                    raise

    async def ping(self) -> bool:
        """True when a broker answers a metadata request now."""
        if self._producer is None:
            return False
        try:
            await self._producer.client.fetch_all_metadata()
        except (KafkaError, OSError):
            return False
        return True
