"""Where the routes write: Kafka through a Publisher, with the service's rules.

- `write` waits for Kafka's acknowledgement (bounded by a timeout) and raises
  PublishUnavailableError otherwise: the API and webhook routes answer 503.
- `write_later` is for the pixel and the click, which answer at once: the
  event goes to a bounded queue that one background task drains in batches
  (one Kafka round trip for many opens and clicks); what cannot be written
  (Kafka unavailable, queue full) is counted.
- Event ids already written by this process are not written again
  (`RecentIds`); the scorer dedupes on event ids too, across replicas.
"""

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from schemas.envelope import CloudEvent
from schemas.event_types import TYPE_PREFIX
from schemas.events import CrmStatusChanged
from services.common.errors import KafkaUnavailableError
from services.common.logging import get_logger
from services.common.publisher import Publisher
from services.ingest.errors import PublishUnavailableError
from services.ingest.metrics import IngestMetrics

log = get_logger(__name__)
BACKGROUND_BATCH = 500


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
        queue_size: int = 10_000,
    ) -> None:
        self.publisher = publisher
        self.metrics = metrics
        self.timeout_s = timeout_s
        self.recent = RecentIds(dedupe_capacity)
        # Protocol isinstance checks are slow: decide once, not per request.
        self._managed = publisher if isinstance(publisher, ManagedPublisher) else None
        self._batching = publisher if isinstance(publisher, BatchPublisher) else None
        self._queue_size = queue_size
        self._queue: asyncio.Queue[tuple[str, str, CloudEvent]] = asyncio.Queue(queue_size)
        self._worker: asyncio.Task[None] | None = None
        self._worker_loop: asyncio.AbstractEventLoop | None = None

    @property
    def connected(self) -> bool:
        return self._managed.connected if self._managed is not None else True

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
                if self._batching is not None:
                    await self._batching.publish_many(topic, events)
                else:
                    for event in events:
                        await self.publisher.publish(topic, event)
        except (KafkaUnavailableError, TimeoutError) as exc:
            log.warning(
                "kafka_write_failed",
                topic=topic,
                events=len(events),
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            raise PublishUnavailableError("Kafka did not acknowledge in time; retry later") from exc
        written: dict[str, int] = {}
        bots: dict[str, int] = {}
        machine: dict[str, int] = {}
        for event in events:
            self.recent.add(event.id)
            written[event.type] = written.get(event.type, 0) + 1
            if event.bot:
                bots[event.bot] = bots.get(event.bot, 0) + 1
                machine[event.type] = machine.get(event.type, 0) + 1
            if isinstance(event, CrmStatusChanged):
                self.metrics.crm_statuses.labels(event.data.status.value).inc()
        for event_type, count in written.items():
            self.metrics.events_written.labels(event_type.removeprefix(TYPE_PREFIX)).inc(count)
        for reason, count in bots.items():
            self.metrics.bot_events.labels(reason).inc(count)
        for event_type, count in machine.items():
            self.metrics.machine_events_written.labels(event_type.removeprefix(TYPE_PREFIX)).inc(
                count
            )

    def write_later(self, route: str, topic: str, event: CloudEvent) -> None:
        """Write after the response; failures are counted, never raised."""
        if not self.connected:
            self.metrics.events_unwritten.labels(route, "kafka_unavailable").inc()
            return
        loop = asyncio.get_running_loop()
        if loop is not self._worker_loop:  # first use, or the app now runs on another loop
            self._queue = asyncio.Queue(self._queue_size)
            self._worker, self._worker_loop = None, loop
        try:
            self._queue.put_nowait((route, topic, event))
        except asyncio.QueueFull:
            self.metrics.events_unwritten.labels(route, "queue_full").inc()
            return
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain_queue())

    async def _drain_queue(self) -> None:
        while True:
            items = [await self._queue.get()]
            while len(items) < BACKGROUND_BATCH and not self._queue.empty():
                items.append(self._queue.get_nowait())
            by_topic: dict[str, list[tuple[str, CloudEvent]]] = {}
            for route, topic, event in items:
                by_topic.setdefault(topic, []).append((route, event))
            for topic, entries in by_topic.items():
                try:
                    await self.write(topic, [event for _, event in entries])
                except PublishUnavailableError:
                    for route, _ in entries:
                        self.metrics.events_unwritten.labels(route, "kafka_unavailable").inc()
            for _ in items:
                self._queue.task_done()

    async def drain(self, timeout_s: float) -> None:
        """Wait for the queued background writes (graceful shutdown), then stop."""
        if self._worker is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout_s)
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
