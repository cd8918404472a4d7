"""Publishing events to Kafka: one small protocol, a real and an in-memory implementation.

`KafkaPublisher` writes with acks=all and an idempotent producer, so a
returned `publish()` means the cluster has the record. `MemoryPublisher`
keeps what it was given, for unit tests of pure code.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.codec import encode_event, encode_key
from schemas.envelope import CloudEvent
from services.common.errors import KafkaUnavailableError


class Publisher(Protocol):
    async def publish(self, topic: str, event: CloudEvent) -> None:
        """Write `event` to `topic`, keyed by its subject; return once it is acknowledged."""
        ...


class KafkaPublisher:
    """Durable writes: acks=all, idempotent, keyed by lead id."""

    def __init__(
        self,
        bootstrap: str,
        *,
        linger_ms: int = 2,
        request_timeout_ms: int = 10_000,
        partitioner: Callable[[bytes | None, Sequence[int], Sequence[int]], int] | None = None,
    ) -> None:
        """`partitioner`: aiokafka's partitioner protocol (key, all partitions, available
        ones -> partition); None keeps aiokafka's default (murmur2 of the key)."""
        self.bootstrap = bootstrap
        extra: dict[str, Any] = {} if partitioner is None else {"partitioner": partitioner}
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            request_timeout_ms=request_timeout_ms,
            **extra,
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


@dataclass
class MemoryPublisher:
    """Keeps published events in memory, in order, per topic."""

    published: list[tuple[str, CloudEvent]] = field(default_factory=list)

    async def publish(self, topic: str, event: CloudEvent) -> None:
        self.published.append((topic, event))

    def on(self, topic: str) -> list[CloudEvent]:
        return [event for name, event in self.published if name == topic]
