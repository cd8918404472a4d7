"""The worker's output sink: a BatchSink over faust's aiokafka producer (looked up
when sending: faust starts it with the app), whose partitioner, the one BatchSink
picks partitions with, is KeyPartitioner."""

import pytest

from schemas.topics import HANDOFFS, SEGMENTS
from services.scorer.app import create_app
from services.scorer.partitioning import KeyPartitioner
from services.scorer.rules import load_rules
from services.scorer.settings import ScorerSettings
from services.scorer.sink import BatchSink


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
