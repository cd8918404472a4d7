"""The worker's output sink: a BatchSink over faust's aiokafka producer (looked up
when sending: faust starts it with the app), whose partitioner, the one BatchSink
picks partitions with, is KeyPartitioner."""

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import ProducerClosed

from schemas.topics import HANDOFFS, SEGMENTS
from services.scorer.app import create_app
from services.scorer.partitioning import KeyPartitioner
from services.scorer.rules import load_rules
from services.scorer.settings import ScorerSettings
from services.scorer.sink import BatchSink, send_record_batch


async def test_the_worker_sends_outputs_with_faust_producer_and_its_partitioner() -> None:
    settings = ScorerSettings(
        scorer_store="memory://", scorer_sweep_interval_s=0, topic_prefix="sink-test."
    )
    scorer_app = create_app(settings, load_rules())
    sink = scorer_app.scorer.sink
    assert isinstance(sink, BatchSink)
    assert (sink._segments, sink._handoffs) == (
        settings.topic(SEGMENTS),
        settings.topic(HANDOFFS),
    )
    # what faust builds its aiokafka producer with
    producer_settings = scorer_app.app.producer._settings_default()  # type: ignore[attr-defined]
    assert isinstance(producer_settings["partitioner"], KeyPartitioner)
    assert producer_settings["max_batch_size"] == 524_288  # a batch's outputs per partition
    assert producer_settings["acks"] == -1
    with pytest.raises(Exception, match="not yet started"):
        sink._producer()  # looked up when sending, once faust has started it


async def test_a_batch_sent_while_the_producer_stops_is_refused() -> None:
    # aiokafka's own producer has the private state send_record_batch reads
    real = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9")  # never started
    assert real._message_accumulator._closed is False
    await real._message_accumulator.close()  # what stop() runs
    assert real._message_accumulator._closed is True
    await real.stop()

    class Accumulator:
        _closed = False

    class Producer:
        _message_accumulator = Accumulator()

        async def send_batch(self, batch: object, topic: str, *, partition: int) -> object:
            self._message_accumulator._closed = True  # stop() ran while this waited
            return asyncio.get_running_loop().create_future()

    with pytest.raises(ProducerClosed):
        await send_record_batch(Producer(), object(), "t", 0)  # type: ignore[arg-type]
