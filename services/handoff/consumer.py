"""The consumers: hand-offs to deliver, and CRM status changes (the feedback loop).

Offsets are committed only after every record of a batch was dealt with
(delivered, dead-lettered, or a recognised duplicate), so a crash never
skips a hand-off; it can only make us see some again, and the progress
record turns those into no-ops.
"""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import OffsetAndMetadata

from schemas.codec import EventDecodeError, decode_event
from schemas.data import EventRejectedData
from schemas.event_types import EventType
from schemas.events import CrmStatusChanged, EventRejected, HandoffRequested
from schemas.topics import HANDOFFS
from services.common.logging import get_logger
from services.handoff.delivery import Deliverer
from services.handoff.metrics import HandoffMetrics
from services.handoff.progress import awaiting_sales
from services.handoff.state import AssignmentBook, ProgressBook

log = get_logger(__name__)
Batch = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


def redrive_mark(event: HandoffRequested) -> int:
    """The `redrive` extension a redriven hand-off carries (0: an original)."""
    extra = event.model_extra or {}
    try:
        return int(extra.get("redrive", 0))
    except (TypeError, ValueError):
        return 0


async def _consume(
    consumer: AIOKafkaConsumer,
    handle: Callable[[Batch], Awaitable[None]],
    stop: asyncio.Event,
    max_records: int,
) -> None:
    while not stop.is_set():
        batch = await consumer.getmany(timeout_ms=500, max_records=max_records)
        if not batch:
            continue
        await handle(batch)
        offsets = {
            tp: OffsetAndMetadata(records[-1].offset + 1, "") for tp, records in batch.items()
        }
        try:
            await consumer.commit(offsets)
        except CommitFailedError as exc:
            # The group rebalanced while we worked: the new owner of these partitions
            # sees the records again, and the progress record makes them no-ops.
            log.warning("commit_failed_after_rebalance", error=str(exc)[:300])


class OffsetTracker:
    """Per partition, the offsets handed out and finished; what may be committed is
    everything below the oldest unfinished one (records finish out of order)."""

    def __init__(self) -> None:
        self._started: dict[TopicPartition, deque[int]] = {}
        self._done: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    def start(self, tp: TopicPartition, offset: int) -> None:
        started = self._started.setdefault(tp, deque())
        if started and offset <= started[-1]:  # re-fetched after a rebalance: start over
            started.clear()
            self._done.pop(tp, None)
        started.append(offset)
        self._done.get(tp, set()).discard(offset)  # a stale finish from before a reset

    def finish(self, tp: TopicPartition, offset: int) -> None:
        started, done = self._started.get(tp), self._done.setdefault(tp, set())
        if started is None or offset < started[0]:
            return  # from before a rebalance reset
        done.add(offset)
        while started and started[0] in done:
            done.discard(started[0])
            self._next[tp] = started.popleft() + 1

    def committable(self, assigned: set[TopicPartition]) -> dict[TopicPartition, int]:
        """Offsets to commit now (advanced since the last commit, partitions we own)."""
        return {
            tp: offset
            for tp, offset in self._next.items()
            if tp in assigned and self._committed.get(tp) != offset
        }

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        self._committed.update(offsets)


class HandoffConsumer:
    """Deliveries overlap: records keep being fetched while earlier ones are delivered
    (at most `concurrency` deliveries at once, `concurrency * 4` records in hand); one
    lead's hand-offs still run one after the other, in offset order. Offsets are
    committed every `commit_interval_s` up to the oldest record not yet dealt with, so
    a crash never skips one; on stop the records in hand finish and are committed."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        deliverer: Deliverer,
        concurrency: int,
        rejected_topic: str,
        commit_interval_s: float = 0.2,
    ) -> None:
        self._consumer = consumer
        self._deliverer = deliverer
        self._slots = asyncio.Semaphore(concurrency)
        self._room = asyncio.Semaphore(concurrency * 4)
        self._concurrency = concurrency
        self._rejected_topic = rejected_topic
        self._commit_interval_s = commit_interval_s
        self._offsets = OffsetTracker()
        self._last_of_lead: dict[bytes, asyncio.Task[None]] = {}
        self._in_hand: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        last_commit = loop.time()
        try:
            while not stop.is_set() and self._failure is None:
                batch = await self._consumer.getmany(timeout_ms=100, max_records=self._concurrency)
                for tp, records in batch.items():
                    for record in records:
                        await self._room.acquire()
                        self._start(tp, record)
                if loop.time() - last_commit >= self._commit_interval_s:
                    await self._commit()
                    last_commit = loop.time()
        finally:
            if self._in_hand:
                await asyncio.wait(list(self._in_hand))
            await self._commit()
        if self._failure is not None:
            raise self._failure

    def _start(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> None:
        self._offsets.start(tp, record.offset)
        key = record.key or b""
        task = asyncio.ensure_future(self._lead(record, self._last_of_lead.get(key)))
        self._last_of_lead[key] = task
        self._in_hand.add(task)

        def finished(done: "asyncio.Task[None]") -> None:
            self._in_hand.discard(done)
            self._room.release()
            if self._last_of_lead.get(key) is done:
                del self._last_of_lead[key]
            if done.cancelled() or done.exception() is not None:
                if self._failure is None:  # stop fetching; nothing past it is committed
                    self._failure = (
                        done.exception() if not done.cancelled() else asyncio.CancelledError()
                    )
                return
            self._offsets.finish(tp, record.offset)

        task.add_done_callback(finished)

    async def _lead(
        self, record: ConsumerRecord[bytes, bytes], previous: "asyncio.Task[None] | None"
    ) -> None:
        """After the lead's previous hand-off (offset order); different leads overlap."""
        if previous is not None:
            await asyncio.wait([previous])
            if previous.cancelled() or previous.exception() is not None:
                raise RuntimeError("an earlier hand-off of this lead failed")
        async with self._slots:
            await self._one(record)

    async def _commit(self) -> None:
        offsets = self._offsets.committable(self._consumer.assignment())
        if not offsets:
            return
        try:
            await self._consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced while we worked: the new owner of these partitions
            # sees the records again, and the progress record makes them no-ops.
            log.warning("commit_failed_after_rebalance", error=str(exc)[:300])
            return
        self._offsets.committed(offsets)

    async def _one(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            event = decode_event(record.value or b"")
            if not isinstance(event, HandoffRequested):
                raise EventDecodeError([f"type: expected {EventType.HANDOFF_REQUESTED}"])
        except EventDecodeError as exc:
            await self._reject(record, exc)
            return
        await self._deliverer.deliver(event, redrive_mark(event))

    async def _reject(self, record: ConsumerRecord[bytes, bytes], exc: EventDecodeError) -> None:
        self._deliverer.metrics.handoffs.labels("rejected").inc()
        log.warning("handoff_rejected", offset=record.offset, errors=exc.errors[:5])
        rejected = EventRejected(
            id=f"{record.topic}:{record.partition}:{record.offset}",
            source="/handoff",
            time=self._deliverer.now(),
            data=EventRejectedData(
                reason="not a valid hand-off",
                errors=exc.errors[:20],
                route=f"kafka:{HANDOFFS}",
                payload=(record.value or b"").decode("utf-8", "replace")[:100_000],
            ),
        )
        await self._deliverer.publisher.publish(self._rejected_topic, rejected)


class FeedbackConsumer:
    """CRM status changes from the event log: free capacity, recycle, end follow-ups."""

    MARKER = EventType.CRM_STATUS_CHANGED.value.encode()

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        assignments: AssignmentBook,
        progress: ProgressBook,
        metrics: HandoffMetrics | None = None,
    ) -> None:
        self._consumer = consumer
        self._assignments = assignments
        self._progress = progress
        self._metrics = metrics

    async def run(self, stop: asyncio.Event) -> None:
        await _consume(self._consumer, self._handle, stop, 500)

    async def _handle(self, batch: Batch) -> None:
        for records in batch.values():
            for record in records:
                if record.value is None or self.MARKER not in record.value:
                    continue  # most of the event log is behaviour: skip without parsing
                try:
                    event = decode_event(record.value)
                except EventDecodeError:
                    continue  # the ingest service owns validation of the event log
                if isinstance(event, CrmStatusChanged):
                    await self.apply(event)

    async def apply(self, event: CrmStatusChanged) -> None:
        data = event.data
        await self._assignments.crm_status(event.subject, data.status)
        progress = (
            self._progress.get(data.handoff_id) if data.handoff_id else None
        ) or self._progress.latest_for_lead(event.subject)
        if progress is not None and awaiting_sales(progress):
            await self._progress.save(progress.model_copy(update={"crm_status": data.status}))
            qualified_at = progress.qualified_at or progress.notified_at
            if self._metrics is not None and qualified_at is not None:
                waited = max(0.0, (event.time - qualified_at).total_seconds())
                self._metrics.qualified_to_sales_status_seconds.labels(data.status.value).observe(
                    waited
                )
        log.info("crm_status_applied", lead_id=event.subject, status=data.status.value)
