"""The consumers: hand-offs to deliver, and CRM status changes (the feedback loop).

Offsets are committed only after every record of a batch was dealt with
(delivered, dead-lettered, or a recognised duplicate), so a crash never
skips a hand-off; it can only make us see some again, and the progress
record turns those into no-ops.
"""

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
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


class HandoffConsumer:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        deliverer: Deliverer,
        concurrency: int,
        rejected_topic: str,
    ) -> None:
        self._consumer = consumer
        self._deliverer = deliverer
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._rejected_topic = rejected_topic

    async def run(self, stop: asyncio.Event) -> None:
        await _consume(self._consumer, self._handle, stop, self._concurrency * 8)

    async def _handle(self, batch: Batch) -> None:
        by_lead: dict[bytes, list[ConsumerRecord[bytes, bytes]]] = defaultdict(list)
        for records in batch.values():
            for record in records:
                by_lead[record.key or b""].append(record)
        await asyncio.gather(*(self._lead(records) for records in by_lead.values()))

    async def _lead(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """One lead's hand-offs in order; different leads run side by side."""
        async with self._slots:
            for record in records:
                await self._one(record)

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
