"""`hotlead handoff redrive`: replay dead letters onto the hand-off topic.

Each dead-lettered hand-off is published again with its own id (the same
idempotency keys: hand-off id, lead id for the CRM upsert) and a `redrive`
extension holding this run's mark, which tells the service to try it again
rather than treat it as a duplicate. What is read is committed under the
redrive consumer group, so a second run replays only new dead letters.
"""

import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import OffsetAndMetadata

from schemas.codec import EventDecodeError, decode_event
from schemas.data import HandoffRequestedData
from schemas.events import HandoffDeadLettered, HandoffRequested
from schemas.topics import DLQ, HANDOFFS
from services.common.publisher import Publisher
from services.common.topics import topic_partitions
from services.handoff.settings import HandoffSettings

SOURCE = "/handoff/redrive"


@dataclass(frozen=True, slots=True)
class RedriveReport:
    read: int
    republished: int
    skipped: int


def redriven(handoff: HandoffRequestedData, mark: int) -> HandoffRequested:
    return HandoffRequested.model_validate(
        {
            "id": handoff.handoff_id,
            "source": SOURCE,
            "subject": handoff.lead_id,
            "time": handoff.trigger_event_time,
            "data": handoff,
            "redrive": mark,
        }
    )


async def redrive(
    settings: HandoffSettings, publisher: Publisher, *, mark: int | None = None
) -> RedriveReport:
    mark = mark if mark is not None else int(time.time() * 1000)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.handoff_group_id}-redrive",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        topic = settings.topic(DLQ)
        tps = await topic_partitions(consumer, topic)
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        latest: dict[str, HandoffRequestedData] = {}
        read = skipped = 0
        pending = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue
                    read += 1
                    try:
                        event = decode_event(record.value or b"")
                    except EventDecodeError:
                        skipped += 1
                        continue
                    if isinstance(event, HandoffDeadLettered):
                        latest[event.data.handoff.handoff_id] = event.data.handoff
                    else:
                        skipped += 1
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        for handoff in latest.values():
            await publisher.publish(settings.topic(HANDOFFS), redriven(handoff, mark))
        await consumer.commit({tp: OffsetAndMetadata(ends[tp], "") for tp in tps})
        return RedriveReport(read, len(latest), skipped)
    finally:
        await consumer.stop()
