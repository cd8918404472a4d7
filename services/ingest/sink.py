"""Where the routes write: Kafka through a Publisher, with the service's rules.

- `write` waits for Kafka's acknowledgement (bounded by a timeout) and raises
  PublishUnavailableError otherwise: the API and webhook routes answer 503.
- `write_later` is for the pixel and the click, which answer at once: the
  write happens after the response, and what cannot be written is counted.
- Event ids already written by this process are not written again
  (`RecentIds`); the scorer dedupes on event ids too, across replicas.
"""

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from schemas.envelope import CloudEvent
from services.common.errors import KafkaUnavailableError
from services.common.logging import get_logger
from services.common.publisher import Publisher
from services.ingest.errors import PublishUnavailableError
from services.ingest.metrics import IngestMetrics

log = get_logger(__name__)


@runtime_checkable
class BatchPublisher(Protocol):
    async def publish_many(self, topic: str, events: Sequence[CloudEvent]) -> None: ...


@runtime_checkable
class ManagedPublisher(Protocol):
    """A publisher with a connection: started and stopped by the app, pinged by /readyz."""

    @property
    def connected(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def ping(self) -> bool: ...


@dataclass
class RecentIds:
    """The last `capacity` event ids written, oldest forgotten first."""

    capacity: int
    _ids: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        if self.capacity <= 0:
            return
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)


class EventSink:
    def __init__(
        self,
        publisher: Publisher,
        metrics: IngestMetrics,
        *,
        timeout_s: float,
        dedupe_capacity: int,
    ) -> None:
        self.publisher = publisher
        self.metrics = metrics
        self.timeout_s = timeout_s
        self.recent = RecentIds(dedupe_capacity)
        self._background: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        if isinstance(self.publisher, ManagedPublisher):
            return self.publisher.connected
        return True

    def is_duplicate(self, event_id: str) -> bool:
        return event_id in self.recent

    async def write(self, topic: str, events: Sequence[CloudEvent]) -> None:
        """Write `events` to `topic`; returns once Kafka acknowledged them all."""
        if not events:
            return
        if not self.connected:
            raise PublishUnavailableError("Kafka is not connected; retry later")
        try:
            async with asyncio.timeout(self.timeout_s):
                if isinstance(self.publisher, BatchPublisher):
                    await self.publisher.publish_many(topic, events)
                else:
                    for event in events:
                        await self.publisher.publish(topic, event)
        except (KafkaUnavailableError, TimeoutError) as exc:
            log.warning(
                "kafka_write_failed", topic=topic, events=len(events), error=type(exc).__name__
            )
            raise PublishUnavailableError("Kafka did not acknowledge in time; retry later") from exc
        for event in events:
            self.recent.add(event.id)
            self.metrics.events_written.labels(event.type.short).inc()
            if event.bot:
                self.metrics.bot_events.labels(event.bot).inc()

    def write_later(self, route: str, topic: str, event: CloudEvent) -> None:
        """Write after the response; failures are counted, never raised."""
        if not self.connected:
            self.metrics.events_unwritten.labels(route, "kafka_unavailable").inc()
            return
        task = asyncio.get_running_loop().create_task(self._write_counted(route, topic, event))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _write_counted(self, route: str, topic: str, event: CloudEvent) -> None:
        try:
            await self.write(topic, [event])
        except PublishUnavailableError:
            self.metrics.events_unwritten.labels(route, "kafka_unavailable").inc()

    async def drain(self, timeout_s: float) -> None:
        """Wait for the background writes (graceful shutdown)."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout_s)
