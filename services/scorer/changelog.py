"""The table's changelog records, sent a commit at a time: `ChangelogWriter`.

The changelog only has to hold a state before the offsets of the events
behind it are committed (the commit hook waits for it), not when the batch
is stored. So, like Kafka Streams' record cache, the states a batch stored
wait here until the next commit (or until `max_pending` leads wait), the
latest state of a lead replacing the one before, and go out then as one
record batch per partition (aiokafka's `create_batch` / `send_batch`: one
future per batch, where `send` made a future, a metadata lookup and an
accumulator call per record, and a produce request per batch scored).

A lead scored in several batches between two commits is sent once, with
its latest state. A crash before the commit loses nothing the commit
covered: the worker restarts from the last commit and scores those events
again (the local store may be ahead of the changelog meanwhile; the
rewrite of a state by a duplicate puts the changelog level again).
"""

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaProducer

from services.scorer.sink import send_record_batch
from services.scorer.write_back import Encoded


class ChangelogFailed(RuntimeError):
    """States could not be sent to the changelog: nothing may be committed after them."""


MAX_PENDING = 20_000
"""Leads whose states wait for the commit before they are sent anyway (memory bound)."""


class ChangelogWriter:
    """States waiting for the changelog, the latest per lead, per partition."""

    def __init__(
        self, producer: Callable[[], AIOKafkaProducer], max_pending: int = MAX_PENDING
    ) -> None:
        self._producer = producer
        """The (started) producer; looked up when sending (faust starts it with the app)."""
        self.max_pending = max_pending
        self._waiting: dict[int, dict[bytes, bytes]] = {}
        self._count = 0
        self._sent: list[tuple[asyncio.Future[Any], int]] = []
        """Batches sent and not yet awaited by `flush`: (future, records in the batch)."""
        self._lock = asyncio.Lock()
        """Held while sending and flushing: a flush returns only once every state noted
        before it is acknowledged, even with a send (max_pending) or another flush (a
        commit and a rebalance) under way."""
        self._error: BaseException | None = None
        """Set once states could not be handed to the producer: they are gone, so every
        later send and flush raises (no commit may pass them)."""

    def __len__(self) -> int:
        """States waiting to be sent."""
        return self._count

    async def add(self, topic: str, records: Iterable[Encoded]) -> None:
        """Note states for the changelog (a later state of a lead replaces an earlier
        one still waiting); sends them all once `max_pending` leads wait."""
        waiting = self._waiting
        count = self._count
        for key, raw, partition in records:
            states = waiting.get(partition)
            if states is None:
                states = waiting[partition] = {}
            before = len(states)
            states[key] = raw
            count += len(states) - before
        self._count = count
        if count >= self.max_pending:
            await self.send(topic)

    async def send(self, topic: str) -> None:
        """Send every state waiting, one record batch per partition (and per
        `max_batch_size` bytes); `flush` awaits their acks."""
        async with self._lock:
            await self._send(topic)

    async def _send(self, topic: str) -> None:
        if self._error is not None:
            raise ChangelogFailed(
                f"changelog states were lost ({self._error!r}): no offsets are committed"
                " after them; restart the worker to score those events again"
            ) from self._error
        waiting, self._waiting, self._count = self._waiting, {}, 0
        if not waiting:
            return
        try:
            await self._send_batches(topic, waiting)
        except BaseException as exc:
            self._error = exc
            raise

    async def _send_batches(self, topic: str, waiting: dict[int, dict[bytes, bytes]]) -> None:
        producer = self._producer()
        sent = self._sent
        for partition, states in waiting.items():
            batch = producer.create_batch()
            count = 0
            for key, raw in states.items():
                if batch.append(timestamp=None, key=key, value=raw) is None:  # full
                    sent.append((await send_record_batch(producer, batch, topic, partition), count))
                    batch = producer.create_batch()
                    count = 0
                    batch.append(timestamp=None, key=key, value=raw)  # a first record always fits
                count += 1
            sent.append((await send_record_batch(producer, batch, topic, partition), count))

    async def flush(self, topic: str) -> dict[int, int]:
        """Send what waits, then wait for every batch sent so far; raises if one failed.
        Returns the offset of the last record written per partition."""
        async with self._lock:
            await self._send(topic)
            sent = self._sent
            if not sent:
                return {}
            # kept until every ack is in: after a failed (or cancelled) wait, the next
            # flush waits for the same batches again and fails again, never passes them
            results = await asyncio.gather(*(future for future, _ in sent))
            self._sent = []
        last: dict[int, int] = {}
        for metadata, (_, count) in zip(results, sent, strict=True):
            partition = metadata.topic_partition.partition
            offset = metadata.offset + count - 1  # a batch's future has its base offset
            if offset > last.get(partition, -1):
                last[partition] = offset
        return last
