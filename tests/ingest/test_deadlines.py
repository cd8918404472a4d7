"""One timer for every wait on Kafka (sink.Deadlines) and the sink's use of it:
a write not acknowledged within the timeout is a 503 (PublishUnavailableError)."""

import asyncio
from collections.abc import Sequence

import pytest

from services.ingest.errors import PublishUnavailableError
from services.ingest.metrics import IngestMetrics
from services.ingest.records import Record
from services.ingest.sink import Deadlines, EventSink


async def test_pending_futures_fail_after_the_timeout_done_ones_are_left_alone() -> None:
    deadlines = Deadlines(0.05)
    loop = asyncio.get_running_loop()
    slow, quick = loop.create_future(), loop.create_future()
    deadlines.watch(slow)
    deadlines.watch(quick)
    quick.set_result("acked")
    await asyncio.sleep(0.01)
    later = loop.create_future()
    deadlines.watch(later)  # watched 10 ms later: expires 10 ms later
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(slow, 1)
    assert not later.done()
    assert quick.result() == "acked"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(later, 1)
    assert len(deadlines) == 0


async def test_a_future_acknowledged_in_time_keeps_its_result() -> None:
    deadlines = Deadlines(0.02)
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    deadlines.watch(future)
    loop.call_later(0.005, future.set_result, None)
    assert await future is None
    await asyncio.sleep(0.04)  # the timer passes it without touching it
    assert future.result() is None
    assert len(deadlines) == 0


class Submitting:
    """A publisher that queues and acknowledges only when told to."""

    def __init__(self) -> None:
        self.waiting: list[tuple[str, Sequence[Record], asyncio.Future[None]]] = []

    def submit_records(self, topic: str, records: Sequence[Record]) -> "asyncio.Future[None]":
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((topic, records, future))
        return future

    async def publish(self, topic: str, event: object) -> None:
        raise AssertionError("the sink must submit records")


RECORD = Record("ev-1", "hotlead.page.viewed", b"lead-1", b"{}")


async def test_the_sink_answers_unavailable_when_kafka_does_not_ack_in_time() -> None:
    publisher = Submitting()
    sink = EventSink(publisher, IngestMetrics(), timeout_s=0.05, dedupe_capacity=10)
    with pytest.raises(PublishUnavailableError):
        await sink.write("t", [RECORD])
    assert "ev-1" not in sink.recent  # not acknowledged: not remembered


async def test_the_sink_returns_once_acknowledged_and_remembers_the_ids() -> None:
    publisher = Submitting()
    sink = EventSink(publisher, IngestMetrics(), timeout_s=5, dedupe_capacity=10)
    write = asyncio.ensure_future(sink.write("t", [RECORD]))
    await asyncio.sleep(0)
    [(topic, records, future)] = publisher.waiting
    assert (topic, list(records)) == ("t", [RECORD])
    assert not write.done()
    future.set_result(None)
    await write
    assert "ev-1" in sink.recent
