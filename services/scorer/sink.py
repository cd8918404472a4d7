"""The scorer's outputs on Kafka, a record batch per partition: `BatchSink`.

A scored batch has ~0.3 outputs per event (segment changes to
hotlead.segments.v1, hand-offs to hotlead.handoffs.v1). Sent one
`producer.send` each, every output paid a future, a metadata lookup, a
partitioner call and an accumulator call (~4.5 % of the worker's CPU, plus
~3 % in aiokafka's sender for the per-record futures). Like the table's
changelog (changelog.py), `BatchSink` groups a scored batch's outputs by
topic and partition and sends each group as one record batch
(`create_batch` / `send_batch`: one future per batch).

What stays as it was:

- partitions: each output's partition is picked by the producer's own
  partitioner (`KeyPartitioner` in the worker and the bench: murmur2 of the
  key, as Java's client), from the topic's partitions in the producer's
  metadata, exactly as `producer.send` picks it; keys and values are the same
  bytes;
- order per key: a lead's outputs of a batch are appended in the order the
  core gave them, to one batch per topic and partition, and a batch is
  queued after the batches sent before it (aiokafka's sender keeps one batch
  in flight per partition and puts a retried batch back in front, so the
  order per partition holds; the producer is not idempotent, so a retry may
  write a batch twice: the outputs' deterministic ids make that harmless);
- acks: `send` returns an awaitable that completes once every record batch
  is acknowledged, and raises if one failed (`emit` awaits it); a batch
  the producer refuses raises from `send` itself. The scorer stops on either
  (processor.py, in_flight.py);
- size: a group larger than the producer's `max_batch_size` is split into
  several record batches, as changelog.py does;
- a producer stopping: `send` refused, as `producer.send` is (`send_record_batch`).

faust needs nothing here: `kafka_producer(app)` is the aiokafka producer
under faust's (started with the app), and faust's producer flush flushes its
accumulator, batches sent with `send_batch` included.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import ProducerClosed
from aiokafka.producer.message_accumulator import BatchBuilder

from services.scorer.outputs import HandoffOutput, Output


class BatchSink:
    """Writes outputs with a producer (acks=all) as one record batch per topic and
    partition; `send` returns what completes once every batch is acknowledged."""

    def __init__(
        self, producer: Callable[[], AIOKafkaProducer], segments: str, handoffs: str
    ) -> None:
        self._producer = producer
        """The (started) producer; looked up when sending (faust starts it with the app)."""
        self._segments = segments
        self._handoffs = handoffs

    async def emit(self, outputs: list[Output]) -> None:
        await (await self.send(outputs))

    async def send(self, outputs: list[Output]) -> Awaitable[object]:
        if not outputs:
            return asyncio.gather()  # done
        producer = self._producer()
        groups = await self._group(producer, outputs)
        futures: list[asyncio.Future[Any]] = []
        for (topic, partition), records in groups.items():
            batch = producer.create_batch()
            for key, value in records:
                if batch.append(timestamp=None, key=key, value=value) is None:  # full
                    futures.append(await send_record_batch(producer, batch, topic, partition))
                    batch = producer.create_batch()
                    batch.append(timestamp=None, key=key, value=value)  # a first one fits
            futures.append(await send_record_batch(producer, batch, topic, partition))
        return asyncio.gather(*futures)

    async def _group(
        self, producer: AIOKafkaProducer, outputs: list[Output]
    ) -> dict[tuple[str, int], list[tuple[bytes, bytes]]]:
        """The outputs' keys and values per topic and partition, in the outputs' order;
        partitions picked by the producer's partitioner as `producer.send` does."""
        partitioner = producer._partitioner  # the one `send` uses
        client = producer.client
        metadata = producer._metadata
        handoffs = self._handoffs
        segments = self._segments
        partitions: dict[str, tuple[list[int], list[int]]] = {}
        groups: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
        for output in outputs:
            topic = handoffs if isinstance(output, HandoffOutput) else segments
            known = partitions.get(topic)
            if known is None:
                await client._wait_on_metadata(topic)  # as `send` does
                known = partitions[topic] = (
                    list(metadata.partitions_for_topic(topic)),
                    list(metadata.available_partitions_for_topic(topic)),
                )
            key = output.key()
            partition: int = partitioner(key, *known)
            group = groups.get((topic, partition))
            if group is None:
                group = groups[(topic, partition)] = []
            group.append((key, output.encode()))
        return groups


async def send_record_batch(
    producer: AIOKafkaProducer, batch: BatchBuilder, topic: str, partition: int
) -> "asyncio.Future[Any]":
    """`producer.send_batch`, refused once the producer is stopping.

    aiokafka checks that its accumulator is open only when `send_batch` starts; one
    that waited for room (the partition's previous batch still queued) while the
    producer stopped appends after the final flush, and its future never completes.
    `producer.send` checks again after each wait and raises ProducerClosed: so
    does this, after the fact (the batch may still go out; nothing waits for it)."""
    future: asyncio.Future[Any] = await producer.send_batch(batch, topic, partition=partition)
    # (aiokafka's private state; tests/scorer/test_sink.py guards that it is there)
    accumulator = getattr(producer, "_message_accumulator", None)
    if getattr(accumulator, "_closed", False):
        raise ProducerClosed()
    return future
