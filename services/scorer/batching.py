"""Delivering the event log to the scorer's agent a batch at a time.

faust hands every record through its whole per-record path: the fetcher
waits on four new tasks per record (`Service.wait_first` on the conductor
callback, the flow-control event, stopped and crashed), the conductor takes a
lock and decodes, the stream iterates, sets the current event and acks. On the
development machine that costs ~230 us of CPU per record before the agent does
anything: more than a bare aiokafka consume -> score -> produce loop spends on
a record in total.

`BatchingConsumer` keeps everything faust does per fetch (the group, flow
control, rebalances, read offsets and gaps, acks and commits, every other topic
record by record) but, for the topics named in `batch_topics`, gives the
conductor one `BatchMessage` per fetch (at most `batch_max` records, from every
partition the fetch brought, each partition's records in log order): the agent
receives one event per batch. One batch per fetch, not per partition, matters
for latency: the agent waits for its outputs' acks once per batch, so batches
per partition made a fetch over 12 partitions cost 12 sequential round trips,
and at 250 events/s the worker fell seconds behind. The table takes each
record's partition from the record, not from faust's current event.
A batch is acknowledged when the agent has finished with it (`ack_records`,
then the stream acks the batch message, whose offset is the last record's), so
a commit never covers a record that was not processed.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, TransportT
from faust.types.transports import ConsumerT
from faust.types.tuples import ConsumerMessage, Message, ack_lock
from mode.utils.futures import notify


class BatchMessage(ConsumerMessage):
    """Records fetched together (one or more partitions); stands for the last one."""

    # ConsumerMessage has no __slots__ of its own, so instances take attributes
    records: Sequence[Message]

    @classmethod
    def of(cls, records: Sequence[Message]) -> "BatchMessage":
        last = records[-1]
        batch = cls(
            last.topic,
            last.partition,
            last.offset,
            last.timestamp,
            last.timestamp_type,
            None,
            None,  # key and value: the records carry them (the topic allows empty values)
            None,
            None,
            serialized_key_size=0,
            serialized_value_size=sum(record.serialized_value_size for record in records),
            tp=last.tp,
            generation_id=last.generation_id,
        )
        batch.records = records
        return batch

    def ack_records(self, consumer: ConsumerT) -> None:
        """Mark every record but the last done; call once the batch is processed.

        The stream acks the batch message itself (whose offset is the last
        record's) after the agent's body: faust's compiled stream iterator does
        that without calling back into the message, so the records are acked here.
        """
        records = self.records[:-1]
        if isinstance(consumer, BatchingConsumer):
            consumer.ack_many(records)
        else:
            for record in records:
                consumer.ack(record)

    def on_final_ack(self, consumer: ConsumerT) -> bool:
        # faust's pure-Python stream path acks through here
        self.ack_records(consumer)
        return bool(consumer.ack(self))


def wait_while_busy(fetcher: Any, busy_wait_ms: int, busy_min_bytes: int) -> None:
    """Make aiokafka's `fetcher` wait for more records while records keep coming.

    faust builds aiokafka's consumer with `fetch_min_bytes=1` (the broker answers
    a fetch as soon as one record is there, else after 1.5 s): under a live
    trickle every record or two made a fetch of its own, and each fetch costs a
    request, a response over every partition and two cross-thread wake-ups
    (`getmany`), whatever it brings. A fixed wait instead (every fetch waits
    `busy_wait_ms` for `busy_min_bytes`) would make an idle worker fetch every
    `busy_wait_ms` (~0.08 core at 10 ms, 12 partitions). So: after a fetch that
    brought records, the next waits up to `busy_wait_ms` for `busy_min_bytes`;
    after one that brought none, the next answers at the first record (faust's
    values), so the first record after a pause is not held back."""
    idle = (fetcher._fetch_max_wait_ms, 1)
    busy = (busy_wait_ms, busy_min_bytes)
    fetch = fetcher._proc_fetch_request

    async def fetch_then_set_wait(assignment: Any, node_id: int, request: Any) -> bool:
        brought: bool = await fetch(assignment, node_id, request)
        # read by the fetcher when it makes its next request (_get_actions_per_node)
        fetcher._fetch_max_wait_ms, fetcher._fetch_min_bytes = busy if brought else idle
        return brought

    fetcher._proc_fetch_request = fetch_then_set_wait


class BatchingConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's consumer thread; its fetches wait for more records while records keep
    coming (`wait_while_busy`, `BatchingApp.fetch_wait`)."""

    async def on_start(self) -> None:
        await super().on_start()
        app = self.app
        if isinstance(app, BatchingApp) and app.fetch_wait_ms is not None:
            fetcher = self._consumer._fetcher  # type: ignore[union-attr]
            wait_while_busy(fetcher, app.fetch_wait_ms, app.fetch_min_bytes)


class BatchingConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer, delivering `batch_topics` in batches, and running
    `before_commit` hooks before it commits offsets."""

    batch_topics: frozenset[str] = frozenset()
    batch_max = 500
    before_commit: tuple[Callable[[], Awaitable[None]], ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app = self.app
        if isinstance(app, BatchingApp):
            self.batch_topics = app.batched_topics
            self.batch_max = app.batch_max
            self.before_commit = app.commit_hooks

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return BatchingConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def ack_many(self, messages: Iterable[Message]) -> None:
        """`Consumer.ack` for each message, with the same bookkeeping (what
        `_new_offset` commits from), under one acquisition of faust's ack lock and one
        notification: per record, faust's `ack` was ~5 % of the worker's CPU."""
        enabled: dict[str, bool] = {}
        acks_enabled_for = self.app.topics.acks_enabled_for
        committed_offsets = self._committed_offset
        acked_indexes = self._acked_index
        acked_lists = self._acked
        unacked = self._unacked_messages
        added = 0
        with ack_lock:
            for message in messages:
                if message.acked:
                    continue
                message.acked = True
                topic = message.topic
                acking = enabled.get(topic)
                if acking is None:
                    acking = enabled[topic] = acks_enabled_for(topic)
                if not acking:
                    continue
                tp, offset = message.tp, message.offset
                committed = committed_offsets[tp]
                if committed is None or offset >= committed:
                    index = acked_indexes[tp]
                    if offset not in index:
                        unacked.discard(message)
                        index.add(offset)
                        acked_lists[tp].append(offset)
                        added += 1
            self._n_acked += added
        if enabled:
            notify(self._waiting_for_ack)

    async def _commit_offsets(
        self, offsets: Mapping[TP, int], start_new_transaction: bool = True
    ) -> bool:
        # e.g. wait until the changelog holds the states of the events being committed;
        # if that fails, nothing is committed and the error crashes the worker
        for hook in self.before_commit:
            await hook()
        committed: bool = await super()._commit_offsets(
            offsets, start_new_transaction=start_new_transaction
        )
        return committed

    async def _drain_messages(self, fetcher: Any) -> None:
        callback = self.callback
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        read_offsets = self._read_offset
        batch_topics = self.batch_topics
        batch_max = self.batch_max
        acks_enabled_for = self.app.topics.acks_enabled_for
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                fetched = self.getmany(timeout=1.0)
                await self.sleep(0)
                if self.should_stop:
                    break
                batch: list[Message] = []
                last_offsets: dict[TP, int] = {}
                async for tp, message in fetched:
                    offset = message.offset
                    seen = last_offsets.get(tp)
                    previous = seen if seen is not None else read_offsets[tp]
                    if previous is not None and offset < previous:
                        continue  # already read (faust drops these too)
                    if previous and offset - previous > 1 and acks_enabled_for(message.topic):
                        # offsets with no record (compaction, transaction markers)
                        await self._add_gap(tp, previous + 1, offset)
                    last_offsets[tp] = offset
                    if tp.topic in batch_topics:
                        batch.append(message)
                    else:
                        await self._deliver(callback(message))
                        read_offsets[tp] = offset
                for start in range(0, len(batch), batch_max):
                    chunk = batch[start : start + batch_max]
                    if not self._current(chunk[-1]):
                        break
                    await self._deliver(callback(BatchMessage.of(chunk)))
                    for record in chunk:
                        read_offsets[record.tp] = record.offset
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    def _current(self, message: Message) -> bool:
        """Whether a record fetched earlier may still be delivered: as faust's getmany
        checks per record, not once the flow stopped or the group moved on (a
        rebalance); the partition is read again from its committed offset then."""
        return bool(self.flow_active) and (message.generation_id == self.app.consumer_generation_id)

    async def _deliver(self, delivery: Any) -> None:
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()
        # as faust: delivering waits while a rebalance suspends the flow
        await self.wait_first(delivery, self.suspend_flow.wait())


class BatchStream(faust.Stream):  # type: ignore[type-arg]
    """faust's stream, whose `take_events` sleeps while nothing comes.

    `take_events(n, within)` waits for its buffer to fill with
    `wait_for_stopped(buffer_full, timeout=within)` in a loop, idle or not: at the
    agent's 2 ms, 500 wake-ups a second, ~0.07 core of an idle worker (mostly
    outside Python: the event loop's timed epoll waits). Here, a processor notes
    each value's arrival (before take_events buffers it), and the wait first
    sleeps until a value has arrived since the last wait (or the stream stops),
    then waits for the buffer to fill at most `within`, as before."""

    _arrived: asyncio.Event | None = None

    def take_events(self, max_: int, within: Any) -> Any:
        arrived = self._arrived = asyncio.Event()

        def note_arrival(value: Any) -> Any:
            arrived.set()
            return value

        self.add_processor(note_arrival)  # runs before take_events' own (added after)
        return super().take_events(max_, within)

    async def wait_for_stopped(self, *coros: Any, **kwargs: Any) -> bool:
        arrived = self._arrived
        if arrived is not None:
            if not arrived.is_set() and await super().wait_for_stopped(arrived):  # type: ignore[arg-type]
                return True  # stopped
            arrived.clear()  # a value from now on is noted for the next wait
        stopped: bool = await super().wait_for_stopped(*coros, **kwargs)
        return stopped


class BatchingTransport(faust_aiokafka.Transport):
    Consumer = BatchingConsumer


class BatchingApp(faust.App):
    """A faust app whose consumer delivers `batch_topics` in batches of `batch_max`
    and awaits the `before_commit` hooks before committing offsets. Configure both
    before the worker starts (its consumer reads them when it is made)."""

    batched_topics: frozenset[str] = frozenset()
    batch_max = 500
    commit_hooks: tuple[Callable[[], Awaitable[None]], ...] = ()
    fetch_wait_ms: int | None = None
    fetch_min_bytes = 1

    def batch_topics(self, topics: Sequence[str], batch_max: int) -> None:
        self.batched_topics = frozenset(topics)
        self.batch_max = batch_max

    def fetch_wait(self, max_wait_ms: int, min_bytes: int) -> None:
        """After a fetch that brought records, the next waits on the broker for
        `min_bytes` or `max_wait_ms`, whichever comes first (`wait_while_busy`)."""
        self.fetch_wait_ms = max_wait_ms
        self.fetch_min_bytes = min_bytes

    def before_commit(self, hook: Callable[[], Awaitable[None]]) -> None:
        self.commit_hooks = (*self.commit_hooks, hook)

    def _new_transport(self) -> TransportT:
        return BatchingTransport(self.conf.broker_consumer, self)
