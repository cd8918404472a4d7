"""The producer of the ingest service: acks=all, idempotent, reconnectable, batched.

Unlike services.common.publisher.KafkaPublisher it can be created before
Kafka answers and started again after a failed start (a fresh aiokafka
producer per attempt), it writes a batch with one wait for all acks, and it
can ping the cluster for /readyz.
"""

import asyncio
import operator
import random
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder

from schemas.envelope import CloudEvent
from services.common.errors import KafkaUnavailableError
from services.ingest.records import Record

HASH_CACHE_SIZE = 100_000
MAX_BATCH_BYTES = 1_048_576
MAX_RECORD_BYTES = MAX_BATCH_BYTES - 1024
"""Larger records are refused before sending (the broker's default limit is ~1 MiB
per batch); the batch and record headers fit in the rest."""
_KEY, _VALUE = operator.attrgetter("key"), operator.attrgetter("value")


class KeyHashes:
    """murmur2 of record keys (aiokafka's is pure Python, a few us per key),
    remembered for the most recent keys: leads come back."""

    def __init__(self, capacity: int = HASH_CACHE_SIZE) -> None:
        self.capacity = capacity
        self.known: dict[bytes, int] = {}
        """The remembered hashes (read it directly on hot paths)."""

    def __call__(self, key: bytes) -> int:
        value = self.known.get(key)
        if value is None:
            if len(self.known) >= self.capacity:
                self.known.clear()  # cheap and bounded; hot keys come back at once
            value = self.known[key] = murmur2(key)
        return value


def partition_of(key_hash: int, partitions: Sequence[int]) -> int:
    """The partition the Java client and aiokafka's DefaultPartitioner choose."""
    return partitions[(key_hash & 0x7FFFFFFF) % len(partitions)]


def fill(batch: BatchBuilder, records: Sequence[Record], start: int) -> int:
    """Append `records[start:]` to an empty `batch` until it is full; the index
    of the first record left out (len(records) when all are in).

    aiokafka's `BatchBuilder.append` costs ~1 us per record on top of its C
    record builder (keyword arguments, serializer checks); for the
    BatchBuilder of aiokafka 0.14 without serializers (what `create_batch`
    gives this producer), records go to the C builder directly, as `append`
    would add them. Anything else takes `append`."""
    builder = getattr(batch, "_builder", None)
    if (
        type(batch) is not BatchBuilder
        or builder is None
        or batch._key_serializer is not None
        or batch._value_serializer is not None
        or batch._closed
        or batch._relative_offset != 0
    ):
        for index in range(start, len(records)):
            record = records[index]
            if batch.append(key=record.key, value=record.value, timestamp=None) is None:
                return index
        return len(records)
    headers: list[tuple[str, bytes]] = []
    append, offset = builder.append, 0
    for record in records[start:] if start else records:
        # (offset, timestamp, key, value, headers), positional: keywords cost more
        if append(offset, None, record.key, record.value, headers) is None:
            batch.close()
            break
        offset += 1
    batch._relative_offset = offset
    return start + offset


class IngestKafkaPublisher:
    def __init__(
        self, bootstrap: str, *, linger_ms: int = 0, request_timeout_ms: int = 10_000
    ) -> None:
        self.bootstrap = bootstrap
        self._linger_ms = linger_ms
        self._request_timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None
        self._hashes = KeyHashes()
        self._waiting: list[tuple[str, Sequence[Record], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Connect; KafkaUnavailableError when the cluster does not answer (call again later)."""
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=self._linger_ms,
            request_timeout_ms=self._request_timeout_ms,
            max_batch_size=MAX_BATCH_BYTES,
        )
        try:
            await producer.start()
        except (KafkaError, OSError) as exc:
            await producer.stop()
            raise KafkaUnavailableError(self.bootstrap, exc) from exc
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    def _require(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise KafkaUnavailableError(self.bootstrap, RuntimeError("not connected"))
        return self._producer

    async def publish(self, topic: str, event: CloudEvent) -> None:
        await self.publish_records(topic, [Record.of(event)])

    async def publish_many(self, topic: str, events: Sequence[CloudEvent]) -> None:
        await self.publish_records(topic, [Record.of(event) for event in events])

    async def publish_records(self, topic: str, records: Sequence[Record]) -> None:
        """Write `records`; returns once Kafka acknowledged every one (see `submit_records`)."""
        await self.submit_records(topic, records)

    def submit_records(self, topic: str, records: Sequence[Record]) -> "asyncio.Future[None]":
        """Queue `records`; the future is done once Kafka acknowledged every one
        (KafkaUnavailableError otherwise). Raises KafkaUnavailableError at once
        when not connected.

        Group commit: the records of all callers that arrive while a write is
        under way go out together in the next one, one record batch per
        partition (aiokafka's cost is per batch and per produce request, not
        per record). Partitions are chosen like the Java client and
        aiokafka's `send` (murmur2 of the key), so a lead always lands on one
        partition, in order. A caller that stops waiting (its future
        cancelled or failed, e.g. by a deadline) does not stop the write.
        """
        producer = self._require()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        if not records:
            done.set_result(None)
            return done
        self._waiting.append((topic, records, done))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_waiting(producer))
        return done

    async def _write_waiting(self, producer: AIOKafkaProducer) -> None:
        """Write what callers left in `_waiting` until nothing is left."""
        while self._waiting:
            waiting, self._waiting = self._waiting, []
            try:
                refused = await self._write(producer, waiting)
            except KafkaError as exc:
                error = KafkaUnavailableError(self.bootstrap, exc)
                for *_, done in waiting:
                    if not done.done():
                        done.set_exception(error)
                continue
            except BaseException as exc:  # cancelled, or a bug: nobody may wait forever
                for *_, done in (*waiting, *self._waiting):
                    if not done.done():
                        done.set_exception(KafkaUnavailableError(self.bootstrap, exc))
                self._waiting = []
                raise
            for *_, done in waiting:
                if not done.done():
                    too_large = refused.get(id(done))
                    if too_large is None:
                        done.set_result(None)
                    else:
                        done.set_exception(KafkaUnavailableError(self.bootstrap, too_large))

    async def _write(
        self,
        producer: AIOKafkaProducer,
        waiting: list[tuple[str, Sequence[Record], "asyncio.Future[None]"]],
    ) -> dict[int, KafkaError]:
        """One batch per partition for everything waiting; the callers with a
        record too large for any batch, by id of their future: none of their
        records is written (the broker would refuse a whole batch with it, the
        other callers' records too)."""
        # per topic: its partitions (sorted) and a list of records for each
        grouped: dict[str, tuple[list[int], list[list[Record]]]] = {}
        refused: dict[int, KafkaError] = {}
        hashes = self._hashes
        known = hashes.known  # partition_of, inlined: two calls less per record
        for topic, records, done in waiting:
            # all of them together fit in one record (the common case): none is too large
            values = sum(map(len, map(_VALUE, records)))
            if values + sum(map(len, filter(None, map(_KEY, records)))) <= MAX_RECORD_BYTES:
                too_large = None
            else:
                too_large = [
                    r for r in records if len(r.value) + len(r.key or b"") > MAX_RECORD_BYTES
                ]
            if too_large:
                refused[id(done)] = MessageSizeTooLargeError(
                    f"a record of {len(too_large[0].value)} bytes"
                )
                continue
            if topic not in grouped:
                partitions = sorted(await producer.partitions_for(topic))
                grouped[topic] = (partitions, [[] for _ in partitions])
            lists = grouped[topic][1]
            count = len(lists)
            for record in records:
                key = record.key
                if key is None:  # aiokafka's choice for records without a key
                    position = random.randrange(count)  # noqa: S311 (not security)
                else:
                    key_hash = known.get(key)
                    if key_hash is None:
                        key_hash = hashes(key)
                    position = (key_hash & 0x7FFFFFFF) % count
                lists[position].append(record)
        acks = []
        for topic, (partitions, lists) in grouped.items():
            for partition, entries in zip(partitions, lists, strict=True):
                start = 0
                while start < len(entries):
                    batch = producer.create_batch()
                    filled = fill(batch, entries, start)
                    if filled == start:  # an empty batch takes any record: never here
                        raise MessageSizeTooLargeError("a record larger than an empty batch")
                    start = filled
                    acks.append(await self._submit(producer, batch, topic, partition))
        await asyncio.gather(*acks)
        return refused

    async def _submit(
        self, producer: AIOKafkaProducer, batch: Any, topic: str, partition: int
    ) -> "asyncio.Future[Any]":
        """Queue one record batch. aiokafka 0.14's add_batch subtracts the total time
        waited on every pass of its loop, so under concurrent batches it gives up
        long before its timeout (KafkaTimeoutError, the batch not queued): retry
        until our own deadline."""
        deadline = time.monotonic() + self._request_timeout_ms / 1000
        while True:
            try:
                future: asyncio.Future[Any] = await producer.send_batch(
                    batch, topic, partition=partition
                )
                return future
            except KafkaTimeoutError:
                if time.monotonic() >= deadline:
                    raise

    async def ping(self) -> bool:
        """True when a broker answers a metadata request now."""
        if self._producer is None:
            return False
        try:
            await self._producer.client.fetch_all_metadata()
        except (KafkaError, OSError):
            return False
        return True
