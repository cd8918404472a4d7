"""The producer of the ingest service: acks=all, idempotent, reconnectable, batched.

Unlike services.common.publisher.KafkaPublisher it can be created before
Kafka answers and started again after a failed start (a fresh aiokafka
producer per attempt), it writes a batch with one wait for all acks, and it
can ping the cluster for /readyz.
"""

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

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
        """Write `events` in order; returns once Kafka acknowledged every one."""
        producer = self._require()
        try:
            pending = [
                await producer.send(topic, encode_event(event), key=encode_key(event))
                for event in events
            ]
            await asyncio.gather(*pending)
        except KafkaError as exc:
            raise KafkaUnavailableError(self.bootstrap, exc) from exc

    async def ping(self) -> bool:
        """True when a broker answers a metadata request now."""
        if self._producer is None:
            return False
        try:
            await self._producer.client.fetch_all_metadata()
        except (KafkaError, OSError):
            return False
        return True
