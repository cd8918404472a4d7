"""The hand-off consumer: different leads overlap, one lead stays in order, and the
committed offset never passes a record that is still being delivered."""

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from schemas.codec import encode_event
from schemas.events import HandoffRequested
from services.handoff.consumer import HandoffConsumer
from tests.handoff.samples import handoff_event

P0, P1 = TopicPartition("handoffs", 0), TopicPartition("handoffs", 1)


def record(
    tp: TopicPartition, offset: int, lead: str, sequence: int
) -> ConsumerRecord[bytes, bytes]:
    value = encode_event(handoff_event(lead, sequence))
    return ConsumerRecord(
        tp.topic, tp.partition, offset, 0, 0, lead.encode(), value, None, len(lead), len(value), ()
    )


@dataclass
class FakeConsumer:
    batches: list[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]]
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        if self.batches:
            return self.batches.pop(0)
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    def assignment(self) -> set[TopicPartition]:
        return {P0, P1}

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})

    def committed(self, tp: TopicPartition) -> int | None:
        return next((c[tp] for c in reversed(self.commits) if tp in c), None)


@dataclass
class GatedDeliverer:
    """Delivers at once, except hand-offs listed in `gates`, which wait for their gate."""

    gates: dict[str, asyncio.Event]
    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)

    async def deliver(self, event: HandoffRequested, redrive: int = 0) -> None:
        handoff_id = event.data.handoff_id
        self.started.append(handoff_id)
        if handoff_id in self.gates:
            await self.gates[handoff_id].wait()
        self.finished.append(handoff_id)


async def wait_for(condition: Any) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_leads_overlap_one_lead_in_order_commits_stop_at_the_unfinished() -> None:
    gate = asyncio.Event()
    consumer = FakeConsumer(
        [
            {P0: [record(P0, 0, "a", 1), record(P0, 1, "b", 1)], P1: [record(P1, 0, "c", 1)]},
            {P0: [record(P0, 2, "a", 2)]},  # a's second hand-off, in a later batch
        ]
    )
    deliverer = GatedDeliverer({"ho-a-1": gate})
    handoffs = HandoffConsumer(consumer, deliverer, 4, "rejected", commit_interval_s=0.0)  # type: ignore[arg-type]
    stop = asyncio.Event()
    running = asyncio.create_task(handoffs.run(stop))

    await wait_for(lambda: {"ho-b-1", "ho-c-1"} <= set(deliverer.finished))
    await wait_for(lambda: consumer.committed(P1) == 1)
    assert deliverer.started == ["ho-a-1", "ho-b-1", "ho-c-1"]  # a's second waits for its first
    assert consumer.committed(P0) is None  # offset 0 is still being delivered

    gate.set()
    await wait_for(lambda: consumer.committed(P0) == 3)
    assert deliverer.finished.index("ho-a-1") < deliverer.finished.index("ho-a-2")
    stop.set()
    await asyncio.wait_for(running, 5)


async def test_stop_finishes_the_records_in_hand_and_commits_them() -> None:
    gate = asyncio.Event()
    consumer = FakeConsumer([{P0: [record(P0, 7, "a", 1)]}])
    deliverer = GatedDeliverer({"ho-a-1": gate})
    handoffs = HandoffConsumer(consumer, deliverer, 4, "rejected", commit_interval_s=60)  # type: ignore[arg-type]
    stop = asyncio.Event()
    running = asyncio.create_task(handoffs.run(stop))
    await wait_for(lambda: deliverer.started == ["ho-a-1"])
    stop.set()
    await asyncio.sleep(0.3)
    assert not running.done()  # waits for the delivery in hand
    gate.set()
    await asyncio.wait_for(running, 5)
    assert consumer.committed(P0) == 8


async def test_a_failed_delivery_stops_the_consumer_and_is_not_committed() -> None:
    class Broken(GatedDeliverer):
        async def deliver(self, event: HandoffRequested, redrive: int = 0) -> None:
            if event.data.handoff_id == "ho-b-1":
                raise ConnectionError("kafka went away")
            await super().deliver(event, redrive)

    consumer = FakeConsumer([{P0: [record(P0, 0, "a", 1), record(P0, 1, "b", 1)]}])
    handoffs = HandoffConsumer(consumer, Broken({}), 4, "rejected", commit_interval_s=0.0)  # type: ignore[arg-type]
    with pytest.raises(ConnectionError, match="kafka went away"):
        await asyncio.wait_for(handoffs.run(asyncio.Event()), 5)
    assert consumer.committed(P0) == 1  # a (offset 0) is done; b (offset 1) is not
