"""Where the routes write: Kafka through a Publisher, with the service's rules.

- `write` waits for Kafka's acknowledgement (bounded by a timeout) and raises
  PublishUnavailableError otherwise: the API and webhook routes answer 503.
- `write_later` is for the pixel and the click, which answer at once: the
  record goes to a bounded in-memory list that one background task drains in
  batches (one Kafka round trip for many opens and clicks); what cannot be
  written (Kafka unavailable, queue full) is counted.
- Both take `Record`s (events already encoded); a publisher that takes
  records (`RecordPublisher`, the real one) gets them as they are, others
  get the event models back.
- Event ids already written by this process are not written again
  (`RecentIds`); the scorer dedupes on event ids too, across replicas.
"""

import asyncio
import contextlib
import operator
from collections import Counter, OrderedDict, deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from schemas.envelope import CloudEvent
from schemas.event_types import TYPE_PREFIX
from services.common.errors import KafkaUnavailableError
from services.common.logging import get_logger
from services.common.publisher import Publisher
from services.ingest.errors import PublishUnavailableError
from services.ingest.metrics import IngestMetrics
from services.ingest.records import Record

log = get_logger(__name__)
_ID, _TYPE = operator.attrgetter("id"), operator.attrgetter("type")
BACKGROUND_BATCH = 5_000
BACKGROUND_LINGER_S = 0.05


@runtime_checkable
class RecordPublisher(Protocol):
    async def publish_records(self, topic: str, records: Sequence[Record]) -> None: ...


@runtime_checkable
class SubmittingPublisher(Protocol):
    """A publisher that queues records at once and hands back the future of
    their acknowledgement (the real one: `IngestKafkaPublisher`)."""

    def submit_records(self, topic: str, records: Sequence[Record]) -> "asyncio.Future[None]": ...


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
    """The last `capacity` event ids written, oldest forgotten first.

    `ids` is the mapping itself, for `in` checks without a method call per
    event (a request checks each of its ids once)."""

    capacity: int
    ids: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self.ids

    def add(self, event_id: str) -> None:
        self.add_all((event_id,))

    def add_all(self, event_ids: Iterable[str]) -> None:
        """Remember `event_ids` as the newest (an id seen again moves to the newest end)."""
        if self.capacity <= 0:
            return
        ids = self.ids
        if type(event_ids) is list and len(event_ids) == 1:  # one event per request
            event_id = event_ids[0]
            if event_id in ids:
                ids.move_to_end(event_id)
            else:
                ids[event_id] = None
                if len(ids) > self.capacity:
                    ids.popitem(last=False)
            return
        # (type() first: an isinstance check against the Collection ABC costs more
        # than the update for one id)
        if (
            type(event_ids) is not list and not isinstance(event_ids, Collection)
        ) or not ids.keys().isdisjoint(event_ids):
            move = ids.move_to_end
            for event_id in event_ids:
                if event_id in ids:
                    move(event_id)
                else:
                    ids[event_id] = None
        else:  # all new (the common case): added in one call
            ids.update(dict.fromkeys(event_ids))
        forget = ids.popitem
        for _ in range(len(ids) - self.capacity):
            forget(last=False)


class Deadlines:
    """Fails the futures still pending `timeout_s` after they were watched,
    with `TimeoutError`, using one timer for all of them.

    `asyncio.timeout` per request costs a timer, a heap push and a cancel per
    request (~5% of a one-event request's CPU); every wait here has the same
    length, so deadlines come in order and one timer, armed for the oldest
    pending one, serves them all. A future that completes in time is dropped
    from the queue when the timer next passes it."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._watched: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, future: "asyncio.Future[Any]") -> None:
        loop = future.get_loop()
        if loop is not self._loop:  # first use, or the app now runs on another loop
            self._loop, self._timer = loop, None
            self._watched.clear()
        deadline = loop.time() + self.timeout_s
        self._watched.append((deadline, future))
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)

    def __len__(self) -> int:
        return len(self._watched)

    def _expire(self) -> None:
        self._timer = None
        loop = self._loop
        if loop is None:
            return
        now, watched = loop.time(), self._watched
        while watched:
            deadline, future = watched[0]
            if not future.done():
                if deadline > now:
                    self._timer = loop.call_at(deadline, self._expire)
                    return
                future.set_exception(TimeoutError(f"no acknowledgement in {self.timeout_s} s"))
            watched.popleft()


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
        self._records = publisher if isinstance(publisher, RecordPublisher) else None
        self._submitting = publisher if isinstance(publisher, SubmittingPublisher) else None
        self._deadlines = Deadlines(timeout_s)
        self._batching = publisher if isinstance(publisher, BatchPublisher) else None
        self._queue_size = queue_size
        self._written: dict[str, Any] = {}
        self._pending: list[tuple[str, str, Record]] = []
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._worker_loop: asyncio.AbstractEventLoop | None = None

    @property
    def connected(self) -> bool:
        return self._managed.connected if self._managed is not None else True

    async def write(self, topic: str, records: Sequence[Record], *, remember: bool = True) -> None:
        """Write `records` to `topic`; returns once Kafka acknowledged them all.
        `remember`: keep their ids for dedupe (not for the pixel's and the
        click's fresh random ids, which would only push out ids a client may resend)."""
        if not records:
            return
        if not self.connected:
            raise PublishUnavailableError("Kafka is not connected; retry later")
        try:
            if self._submitting is not None:  # the real publisher: one timer for all writes
                acknowledged = self._submitting.submit_records(topic, records)
                self._deadlines.watch(acknowledged)
                await acknowledged
            else:
                await self._publish(topic, records)
        except (KafkaUnavailableError, TimeoutError) as exc:
            log.warning(
                "kafka_write_failed",
                topic=topic,
                events=len(records),
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            raise PublishUnavailableError("Kafka did not acknowledge in time; retry later") from exc
        if remember:
            self.recent.add_all(list(map(_ID, records)))  # (map: a loop in C)
        self._count(records)

    async def _publish(self, topic: str, records: Sequence[Record]) -> None:
        """Other publishers (in tests: models, one by one), within the timeout."""
        async with asyncio.timeout(self.timeout_s):
            if self._records is not None:
                await self._records.publish_records(topic, records)
            elif self._batching is not None:
                await self._batching.publish_many(topic, [r.event() for r in records])
            else:
                for record in records:
                    await self.publisher.publish(topic, record.event())

    def _count(self, records: Sequence[Record]) -> None:
        """Metrics once per batch: a few label lookups, not a few per event."""
        if len(records) == 1:
            written: Mapping[str, int] = {records[0].type: 1}
        else:
            written = Counter(map(_TYPE, records))  # counted in C
        bots: Counter[str] | None = None  # (made only when needed: rare)
        machine: Counter[str] | None = None
        for record in records:
            if record.bot or record.crm_status:  # rare: API events carry neither
                if record.bot:
                    if bots is None or machine is None:
                        bots, machine = Counter(), Counter()
                    bots[record.bot] += 1
                    machine[record.type] += 1
                if record.crm_status:
                    self.metrics.crm_statuses.labels(record.crm_status).inc()
        children = self._written
        for event_type, count in written.items():
            child = children.get(event_type)
            if child is None:  # a few types: their series bound once
                label = event_type.removeprefix(TYPE_PREFIX)
                child = children[event_type] = self.metrics.events_written.labels(label)
            child.inc(count)
        if bots is None or machine is None:
            return
        for reason, count in bots.items():
            self.metrics.bot_events.labels(reason).inc(count)
        for event_type, count in machine.items():
            self.metrics.machine_events_written.labels(event_type.removeprefix(TYPE_PREFIX)).inc(
                count
            )

    def write_later(self, route: str, topic: str, record: Record) -> None:
        """Write after the response; failures are counted, never raised."""
        if not self.connected:
            self.metrics.events_unwritten.labels(route, "kafka_unavailable").inc()
            return
        if len(self._pending) >= self._queue_size:
            self.metrics.events_unwritten.labels(route, "queue_full").inc()
            return
        self._pending.append((route, topic, record))
        if self._wake is None or self._worker is None or self._worker.done():
            self._start_worker()
        else:
            self._wake.set()

    def _start_worker(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._worker_loop or self._wake is None or self._idle is None:
            # first use, or the app now runs on another loop
            self._wake, self._idle, self._worker_loop = asyncio.Event(), asyncio.Event(), loop
        self._wake.set()
        self._worker = loop.create_task(self._drain_pending(self._wake, self._idle))

    async def _drain_pending(self, wake: asyncio.Event, idle: asyncio.Event) -> None:
        while True:
            if not self._pending:
                idle.set()
                wake.clear()
                await wake.wait()
                continue
            idle.clear()
            if len(self._pending) < BACKGROUND_BATCH:
                # Nobody waits for these writes: gather more per Kafka round trip
                # (each costs ~100 us of CPU in aiokafka, whatever its size).
                await asyncio.sleep(BACKGROUND_LINGER_S)
            items = self._pending[:BACKGROUND_BATCH]
            del self._pending[:BACKGROUND_BATCH]
            by_topic: dict[str, list[tuple[str, Record]]] = {}
            for route, topic, record in items:
                by_topic.setdefault(topic, []).append((route, record))
            for topic, entries in by_topic.items():
                try:
                    await self.write(topic, [record for _, record in entries], remember=False)
                except PublishUnavailableError:
                    for route, _ in entries:
                        self.metrics.events_unwritten.labels(route, "kafka_unavailable").inc()

    async def drain(self, timeout_s: float) -> None:
        """Wait for the pending background writes (graceful shutdown), then stop."""
        if self._worker is not None:
            if self._idle is not None and not self._worker.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), timeout_s)
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
