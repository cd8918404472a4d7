"""Delivering the event log to the scorer's agent a batch at a time.

faust hands every record through its whole per-record path: its `getmany`
checks the flow, the generation, the partition and the highwater per record and
makes a `ConsumerMessage` of each (`_to_message`), the fetcher waits on four new
tasks per record (`Service.wait_first` on the conductor callback, the flow-control
event, stopped and crashed), the conductor takes a lock and decodes, the stream
iterates, sets the current event and acks. On the development machine that cost
~230 us of CPU per record before the agent did anything: more than a bare aiokafka
consume -> score -> produce loop spends on a record in total.

`BatchingConsumer` keeps everything faust does per fetch (the group, flow
control, rebalances, read offsets and gaps, acks and commits, every other topic
record by record through faust's own path) but, for the topics named in
`batch_topics`, takes the fetched records per partition as aiokafka returns them
and gives the conductor one `BatchMessage` per fetch (at most `batch_max`
records, from every partition the fetch brought, each partition's records in log
order): the agent receives one event per batch, whose records are aiokafka's own
`ConsumerRecord`s (no faust message per record). What faust checks per record is
checked once per partition per fetch (records already read dropped, the gap
before the first one, the highwater) and once per batch before it is delivered
(the flow still active and the group's generation unchanged: after a rebalance
the partition is read again from its committed offset). One batch per fetch, not
per partition, matters for latency: the agent waits for its outputs' acks once
per batch, so batches per partition made a fetch over 12 partitions cost 12
sequential round trips, and at 250 events/s the worker fell seconds behind. The
table takes each record's partition from the record, not from faust's current
event.

A batch is acknowledged when the agent has finished with it (`ack_records`,
then the stream acks the batch message, whose offset is the last record's), so a
commit never covers a record that was not processed. It is acknowledged by
offset ranges, one per partition (`ack_spans`): every offset from its first
record's to its last, with faust's bookkeeping (`_acked`, `_acked_index`,
`_n_acked`, the ack waiter), the offsets in between that hold no record
(compaction, transaction markers) included, as faust's gaps would have made them
committable with the record after them.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, TransportT
from faust.types.transports import ConsumerT
from faust.types.tuples import ConsumerMessage, ack_lock
from mode.utils.futures import notify

from services.scorer.record_loop import ConsumedRecord

Span = tuple[TP, int, int]
"""A partition and the first and last offsets (inclusive) a batch covers in it."""


def ack_spans(consumer: Any, spans: Sequence[Span]) -> int:
    """Acknowledge every offset of `spans` as faust's `Consumer.ack` acknowledges one
    message's (the offsets `_new_offset` commits from), under one acquisition of
    faust's ack lock and one notification; offsets below the committed one or already
    acked are skipped, as there. Returns how many offsets were added."""
    acks_enabled_for = consumer.app.topics.acks_enabled_for
    committed_offsets = consumer._committed_offset
    added = 0
    enabled = False
    with ack_lock:
        for tp, first, last in spans:
            if not acks_enabled_for(tp.topic):
                continue
            enabled = True
            committed = committed_offsets[tp]
            if committed is not None and first < committed:
                first = committed
            if first > last:
                continue
            offsets: Sequence[int] = range(first, last + 1)
            index = consumer._acked_index[tp]
            if index and not index.isdisjoint(offsets):
                offsets = [offset for offset in offsets if offset not in index]
            index.update(offsets)
            consumer._acked[tp].extend(offsets)
            added += len(offsets)
        consumer._n_acked += added
    if enabled:
        notify(consumer._waiting_for_ack)
    return added


class BatchMessage(ConsumerMessage):
    """Records fetched together (one or more partitions); stands for the last one."""

    # ConsumerMessage has no __slots__ of its own, so instances take attributes
    records: Sequence[ConsumedRecord]
    spans: Sequence[Span]
    records_acked = False

    @classmethod
    def of(
        cls, records: Sequence[Any], spans: Sequence[Span], generation_id: int
    ) -> "BatchMessage":
        """`records`: aiokafka's records, partition by partition as `spans` (each the
        offsets from the partition's first record of the batch, or the offset after
        its record in the batch before, to its last record) lists them."""
        last = records[-1]
        tp = spans[-1][0]
        timestamp = last.timestamp
        batch = cls(
            tp.topic,
            tp.partition,
            last.offset,
            # seconds, or None as faust's messages (`_to_message`)
            cast(float, None) if timestamp is None else timestamp / 1000.0,
            last.timestamp_type,
            None,
            None,  # key and value: the records carry them (the topic allows empty values)
            None,
            None,
            serialized_key_size=0,
            serialized_value_size=0,
            tp=tp,
            generation_id=generation_id,
        )
        batch.records = records
        batch.spans = spans
        return batch

    def ack_records(self, consumer: ConsumerT) -> None:
        """Mark every offset the batch covers done but its own; call once the batch is
        processed.

        The stream acks the batch message itself (whose offset is the last record's)
        after the agent's body: faust's compiled stream iterator does that without
        calling back into the message, so the records are acked here."""
        if self.records_acked:
            return
        self.records_acked = True
        *spans, (tp, first, last) = self.spans
        if first < last:
            spans.append((tp, first, last - 1))
        ack_spans(consumer, spans)

    def on_final_ack(self, consumer: ConsumerT) -> bool:
        # faust's pure-Python stream path (and take_events) acks through here. Only a
        # batch the agent processed (`ack_records`) is acked: faust also acks what it
        # skips (a batch left in the queue from before a rebalance, whose partition's
        # committed offset is unknown until it is assigned again) and take_events acks
        # a batch whose body failed; acking either would let a commit pass records
        # never scored.
        if not self.records_acked:
            return False
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
        # faust's loop (getmany, then each record to the conductor), with the records of
        # `batch_topics` taken per partition from the fetch and delivered in batches
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                await self.sleep(0)
                if self.should_stop:
                    break
                records, active = await self._wait_next_records(1.0)
                generation = self.app.consumer_generation_id
                if records is None or self.should_stop:
                    continue
                if self.flow_active:
                    await self._deliver_fetch(records, active, generation)
                else:
                    # as faust's getmany: the flow stopped during the fetch (a rebalance)
                    try:
                        await self.perform_seek()
                    except Exception as exc:  # noqa: BLE001 (as faust: logged, not raised)
                        self.log.warning(f"exception performing seek when flow not active {exc}")
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _deliver_fetch(
        self, records: Mapping[TP, list[Any]], active: set[TP] | None, generation: int
    ) -> None:
        batch_topics = self.batch_topics
        singles: dict[TP, list[Any]] = {}
        runs: list[tuple[TP, list[Any]]] = []
        for tp, fetched in records.items():
            if not fetched:
                continue
            if tp.topic in batch_topics:
                if active is None or tp in active or tp in self._buffered_partitions:
                    runs.append((tp, fetched))
            else:
                singles[tp] = fetched
        if singles:
            await self._deliver_singles(singles, active, generation)
        if runs:
            await self._deliver_batches(runs, generation)

    async def _deliver_singles(
        self, records: Mapping[TP, list[Any]], active: set[TP] | None, generation: int
    ) -> None:
        """faust's getmany and _drain_messages for these records, one by one."""
        app = self.app
        callback = self.callback
        read_offsets = self._read_offset
        acks_enabled_for = app.topics.acks_enabled_for
        for tp, record in self.scheduler.iterate(records):
            if not self.flow_active or app.consumer_generation_id != generation:
                break
            if not (active is None or tp in active or tp in self._buffered_partitions):
                continue
            app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            message = self._to_message(tp, record)
            offset = message.offset
            previous = read_offsets[tp]
            if previous is not None and offset < previous:
                continue  # already read (faust drops these too)
            if previous and offset - previous > 1 and acks_enabled_for(tp.topic):
                # offsets with no record (compaction, transaction markers)
                await self._add_gap(tp, previous + 1, offset)
            await self._deliver(callback(message))
            read_offsets[tp] = offset

    async def _deliver_batches(self, runs: list[tuple[TP, list[Any]]], generation: int) -> None:
        """The fetched records of `runs` (each a partition's, in log order) in batches of
        at most `batch_max`; what faust does per record, once per partition."""
        app = self.app
        read_offsets = self._read_offset
        acks_enabled_for = app.topics.acks_enabled_for
        batch_max = self.batch_max
        records: list[Any] = []
        spans: list[Span] = []
        for tp, fetched in runs:
            previous = read_offsets[tp]
            if previous is not None and fetched[0].offset < previous:
                # already read (faust drops these too)
                fetched = [record for record in fetched if record.offset >= previous]
                if not fetched:
                    continue
            first = fetched[0].offset
            if previous is not None and first - previous > 1 and acks_enabled_for(tp.topic):
                # offsets with no record (compaction, transaction markers); faust notes
                # none after a read offset of 0 (`if r_offset`), so its commits stopped
                # at 1 when offset 0 was followed by two or more of them
                await self._add_gap(tp, previous + 1, first)
            app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            start = 0
            while start < len(fetched):
                part = fetched[start : start + batch_max - len(records)]
                start += len(part)
                records.extend(part)
                last = part[-1].offset
                # from the offset after this partition's last record in the batch before
                spans.append((tp, first, last))
                first = last + 1
                if len(records) >= batch_max:
                    if not await self._deliver_batch(records, spans, generation):
                        return
                    records, spans = [], []
        if records:
            await self._deliver_batch(records, spans, generation)

    async def _deliver_batch(self, records: list[Any], spans: list[Span], generation: int) -> bool:
        # as faust's getmany checks before each record: not once the flow stopped or the
        # group moved on (a rebalance); the partition is read again from its committed
        # offset then
        if not (self.flow_active and self.app.consumer_generation_id == generation):
            return False
        await self._deliver(self.callback(BatchMessage.of(records, spans, generation)))
        read_offsets = self._read_offset
        for tp, _, last in spans:
            read_offsets[tp] = last
        return True

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
