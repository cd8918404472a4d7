"""BatchingConsumer and BatchMessage: a batch's records are acked together, and
commit hooks run (and can veto) before offsets are committed."""

import asyncio
import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

import faust
import pytest
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.structs import ConsumerRecord
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from services.scorer.batching import (
    BatchingApp,
    BatchingConsumer,
    BatchMessage,
    BatchStream,
    Span,
    wait_while_busy,
)

TOPIC = "batching-test.events"


def message(tp: TP, offset: int) -> ConsumerMessage:
    return ConsumerMessage(
        tp.topic, tp.partition, offset, 0.0, 0, None, b"k", b"v", None, tp=tp, generation_id=1
    )


def record(tp: TP, offset: int) -> Any:
    """A record as aiokafka's fetcher returns it."""
    return ConsumerRecord(
        tp.topic, tp.partition, offset, 1_700_000_000_000 + offset, 0, b"k", b"v", None, 1, 1, ()
    )


def batch_of(tp: TP, offsets: list[int], first: int | None = None) -> BatchMessage:
    spans: list[Span] = [(tp, offsets[0] if first is None else first, offsets[-1])]
    return BatchMessage.of([record(tp, offset) for offset in offsets], spans, 1)


APPS: list[BatchingApp] = []


def make_app() -> BatchingApp:
    app = BatchingApp("batching-test", broker="kafka://127.0.0.1:9", store="memory://")
    app.batch_topics([TOPIC], batch_max=500)
    APPS.append(app)
    return app


def acking_consumer() -> Any:
    """The consumer of a new app, acks enabled for TOPIC (as an agent's topic has them)."""
    app = make_app()
    app.topics._acking_topics.add(TOPIC)
    return app.consumer


@pytest.fixture(autouse=True)
def close_consumer_threads() -> Iterator[None]:
    """The consumer (never started here) made an event loop for its thread: close it."""
    yield
    while APPS:
        app = APPS.pop()
        thread = getattr(app.consumer, "_thread", None)
        if thread is not None:
            thread.thread_loop.close()


def test_the_consumer_takes_its_settings_from_the_app() -> None:
    app = make_app()

    async def hook() -> None: ...

    app.before_commit(hook)
    consumer = app.consumer
    assert isinstance(consumer, BatchingConsumer)
    assert consumer.batch_topics == frozenset({TOPIC})
    assert consumer.batch_max == 500
    assert consumer.before_commit == (hook,)


def test_a_batch_commits_up_to_its_last_record_only_once_all_are_acked() -> None:
    consumer = acking_consumer()
    tp = TP(TOPIC, 1)
    batch = batch_of(tp, [10, 11, 12])
    assert (batch.tp, batch.offset, batch.generation_id) == (tp, 12, 1)
    assert [r.offset for r in batch.records] == [10, 11, 12]
    assert batch.timestamp == 1_700_000_000.012  # faust's: seconds
    assert batch.value is None
    assert batch.key is None

    # what faust's compiled stream does after the agent's body: ack the batch's offset
    consumer.ack(batch)
    assert consumer._acked[tp] == [12]
    consumer._committed_offset[tp] = 10
    assert consumer._new_offset(tp) is None  # 10 and 11 not acked: nothing to commit

    batch.ack_records(consumer)
    assert sorted(consumer._acked[tp]) == [10, 11, 12]
    assert consumer._n_acked == 3
    assert consumer._new_offset(tp) == 13
    batch.ack_records(consumer)  # once only
    assert consumer._n_acked == 3


def test_a_batch_acks_the_offsets_between_its_records_but_not_past_them() -> None:
    consumer = acking_consumer()
    tp0, tp1 = TP(TOPIC, 0), TP(TOPIC, 1)
    # offsets 4 and 6-8 hold no record (compaction, transaction markers); tp1's records
    # start after the offset its batch before ended at (20)
    records = [record(tp0, offset) for offset in (3, 5, 9)] + [record(tp1, 22)]
    batch = BatchMessage.of(records, [(tp0, 3, 9), (tp1, 21, 22)], 1)
    assert (batch.tp, batch.offset) == (tp1, 22)
    batch.ack_records(consumer)
    assert consumer._acked[tp0] == [3, 4, 5, 6, 7, 8, 9]
    assert consumer._acked[tp1] == [21]  # the batch's own offset: the stream's ack
    consumer._committed_offset[tp1] = 21
    assert consumer._new_offset(tp0) == 10
    assert consumer._new_offset(tp1) == 22  # 22 not acked yet
    assert consumer.ack(batch)
    assert consumer._new_offset(tp1) == 23


def test_the_pure_python_stream_path_acks_a_processed_batch_through_the_message() -> None:
    consumer = acking_consumer()
    tp = TP(TOPIC, 0)
    batch = batch_of(tp, [0, 1, 2, 3])
    batch.ack_records(consumer)  # the agent, once the batch is scored
    batch.incref()
    assert batch.ack(consumer)  # refcount 0: the final ack
    assert consumer._new_offset(tp) == 4


def test_a_batch_never_processed_is_not_acked_by_the_stream() -> None:
    # faust's pure-Python stream acks the messages it skips (a batch queued before a
    # rebalance), and take_events acks a batch whose body failed: neither may let a
    # commit pass records that were never scored
    consumer = acking_consumer()
    tp = TP(TOPIC, 0)
    batch = batch_of(tp, [0, 1, 2, 3])
    batch.incref()
    assert not batch.ack(consumer)
    assert consumer._new_offset(tp) is None
    assert consumer._acked[tp] == []


async def test_commit_hooks_run_before_the_offsets_are_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app()
    calls: list[str] = []

    async def flush() -> None:
        calls.append("hook")

    async def commit(self: Any, offsets: Any, start_new_transaction: bool = True) -> bool:
        calls.append("commit")
        return True

    monkeypatch.setattr(faust_aiokafka.Consumer, "_commit_offsets", commit)
    app.before_commit(flush)
    assert await app.consumer._commit_offsets({TP(TOPIC, 0): 5})
    assert calls == ["hook", "commit"]


async def test_a_failing_commit_hook_commits_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app()
    committed: list[Any] = []

    async def flush() -> None:
        raise RuntimeError("changelog write failed")

    async def commit(self: Any, offsets: Any, start_new_transaction: bool = True) -> bool:
        committed.append(offsets)
        return True

    monkeypatch.setattr(faust_aiokafka.Consumer, "_commit_offsets", commit)
    app.before_commit(flush)
    with pytest.raises(RuntimeError, match="changelog write failed"):
        await app.consumer._commit_offsets({TP(TOPIC, 0): 5})
    assert committed == []


class _Fetcher:
    def __init__(self) -> None:
        self._stopped = asyncio.Event()


def fetching(
    consumer: BatchingConsumer, fetches: list[dict[TP, list[Any]]]
) -> tuple[_Fetcher, list[Any]]:
    """Make `consumer` fetch `fetches` (records by partition, as aiokafka returns them),
    then stop; returns the fetcher to drain and the list its deliveries go to."""
    fetcher = _Fetcher()
    delivered: list[Any] = []

    async def wait_next_records(_timeout: float) -> tuple[dict[TP, list[Any]], None]:
        if len(fetches) == 1:
            fetcher._stopped.set()  # the last fetch
        return fetches.pop(0), None

    async def callback(delivery: Any) -> None:
        delivered.append(delivery)

    consumer._wait_next_records = wait_next_records  # type: ignore[method-assign]
    consumer.highwater = lambda tp: 1_000  # type: ignore[method-assign]
    consumer.callback = callback
    return fetcher, delivered


async def test_a_fetch_is_one_batch_across_partitions_other_topics_per_record() -> None:
    app = make_app()
    consumer = app.consumer
    consumer.batch_max = 2
    events0, events1, other = TP(TOPIC, 0), TP(TOPIC, 1), TP("other", 0)
    fetch = {
        events0: [record(events0, offset) for offset in (0, 1, 2)],
        other: [record(other, 3), record(other, 4)],
        events1: [record(events1, 7)],
    }
    app.consumer_generation_id = 1  # the records' generation
    fetcher, delivered = fetching(consumer, [fetch])
    await consumer._drain_messages(fetcher)

    singles = [(m.topic, m.offset) for m in delivered if not isinstance(m, BatchMessage)]
    batches = [m for m in delivered if isinstance(m, BatchMessage)]
    assert singles == [("other", 3), ("other", 4)]  # faust's messages, one by one
    assert all(type(m) is ConsumerMessage and m.generation_id == 1 for m in delivered[:2])
    # each partition's records in log order, at most batch_max per batch
    assert [[(r.partition, r.offset) for r in m.records] for m in batches] == [
        [(0, 0), (0, 1)],
        [(0, 2), (1, 7)],
    ]
    assert [m.spans for m in batches] == [[(events0, 0, 1)], [(events0, 2, 2), (events1, 7, 7)]]
    assert batches[0].records[0] is fetch[events0][0]  # aiokafka's own records
    # the fetch's generation: the stream skips a batch delivered after a rebalance too
    assert [m.generation_id for m in batches] == [1, 1]
    assert consumer._read_offset[events0] == 2
    assert consumer._read_offset[events1] == 7
    assert consumer._read_offset[other] == 4


async def test_batches_fetched_before_a_rebalance_are_not_delivered_after_it() -> None:
    app = make_app()
    consumer = app.consumer
    consumer.batch_max = 2
    tp = TP(TOPIC, 0)
    app.consumer_generation_id = 1
    fetcher, delivered = fetching(consumer, [{tp: [record(tp, offset) for offset in range(5)]}])

    async def callback(delivery: Any) -> None:
        delivered.append(delivery)
        app.consumer_generation_id = 2  # a rebalance starts after the first batch

    consumer.callback = callback
    await consumer._drain_messages(fetcher)
    assert [[r.offset for r in m.records] for m in delivered] == [[0, 1]]
    assert consumer._read_offset[tp] == 1


async def test_a_fetch_the_flow_stopped_during_is_not_delivered_but_seeks_back() -> None:
    app = make_app()
    consumer = app.consumer
    tp = TP(TOPIC, 0)
    app.consumer_generation_id = 1
    fetcher, delivered = fetching(consumer, [{tp: [record(tp, 0)]}])
    seeks: list[bool] = []

    async def perform_seek() -> None:
        seeks.append(True)

    consumer.perform_seek = perform_seek  # type: ignore[method-assign]
    consumer.flow_active = False  # stopped while the fetch was under way (a rebalance)
    await consumer._drain_messages(fetcher)
    assert delivered == []
    assert seeks == [True]  # as faust's getmany: back to the committed offsets
    assert consumer._read_offset[tp] is None


async def test_records_already_read_are_dropped_and_the_gap_before_the_first_noted() -> None:
    app = make_app()
    consumer = app.consumer
    app.topics._acking_topics.add(TOPIC)
    tp = TP(TOPIC, 0)
    app.consumer_generation_id = 1
    consumer._read_offset[tp] = 5
    fetches = [{tp: [record(tp, offset) for offset in (3, 4, 5, 6)]}, {tp: [record(tp, 9)]}]
    fetcher, delivered = fetching(consumer, fetches)
    await consumer._drain_messages(fetcher)
    # 3 and 4 were read before (faust drops them; 5, the read offset, it delivers again)
    assert [[r.offset for r in m.records] for m in delivered] == [[5, 6], [9]]
    assert [m.spans for m in delivered] == [[(tp, 5, 6)], [(tp, 9, 9)]]
    # faust's gap: 7 and 8 (and 9, as faust notes it)
    assert [(gap.begin, gap.end) for gap in consumer._gap[tp]] == [(7, 10)]
    assert consumer._read_offset[tp] == 9
    for batch in delivered:
        batch.ack_records(consumer)
        consumer.ack(batch)
    assert consumer._new_offset(tp) == 10


async def test_paused_partitions_are_not_delivered() -> None:
    app = make_app()
    consumer = app.consumer
    tp0, tp1 = TP(TOPIC, 0), TP(TOPIC, 1)
    app.consumer_generation_id = 1
    fetcher, delivered = fetching(consumer, [{tp0: [record(tp0, 0)], tp1: [record(tp1, 0)]}])

    async def wait_next_records(_timeout: float) -> tuple[dict[TP, list[Any]], set[TP]]:
        fetcher._stopped.set()
        # faust's active partitions: tp1 was paused since the fetch was made
        return {tp0: [record(tp0, 0)], tp1: [record(tp1, 0)]}, {tp0}

    consumer._wait_next_records = wait_next_records  # type: ignore[method-assign]
    await consumer._drain_messages(fetcher)
    assert [m.spans for m in delivered] == [[(tp0, 0, 0)]]
    assert consumer._read_offset[tp1] is None


class _AiokafkaFetcher:
    """aiokafka's Fetcher: the two attributes each fetch request is made from."""

    def __init__(self, brings: list[bool]) -> None:
        self._fetch_max_wait_ms = 1500
        self._fetch_min_bytes = 1
        self.brings = brings
        self.requests: list[tuple[int, int]] = []

    async def _proc_fetch_request(self, assignment: Any, node_id: int, request: Any) -> bool:
        self.requests.append((self._fetch_max_wait_ms, self._fetch_min_bytes))
        return self.brings.pop(0)


async def test_fetches_wait_for_more_only_while_records_keep_coming() -> None:
    fetcher = _AiokafkaFetcher([False, True, True, False, True])
    wait_while_busy(fetcher, 10, 65_536)
    for _ in range(5):
        await fetcher._proc_fetch_request(None, 1, None)  # as the fetcher's routine calls it
    assert fetcher.requests == [
        (1500, 1),  # faust's: answered at the first record
        (1500, 1),
        (10, 65_536),  # the one before brought records: wait for more
        (10, 65_536),
        (1500, 1),  # the one before brought none
    ]
    assert (fetcher._fetch_max_wait_ms, fetcher._fetch_min_bytes) == (10, 65_536)


def test_aiokafka_makes_each_fetch_from_the_attributes_wait_while_busy_sets() -> None:
    routine = inspect.getsource(Fetcher._fetch_requests_routine)
    assert "self._proc_fetch_request(" in routine  # looked up on the instance
    actions = inspect.getsource(Fetcher._get_actions_per_node)
    assert "self._fetch_max_wait_ms,\n                self._fetch_min_bytes," in actions


@pytest.mark.parametrize(("stream_class", "most"), [(BatchStream, 1), (faust.Stream, None)])
async def test_an_idle_take_events_sleeps_instead_of_polling(
    stream_class: type, most: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = BatchingApp(
        "batching-test", broker="kafka://127.0.0.1:9", store="memory://", Stream=stream_class
    )
    APPS.append(app)
    stream = app.stream(app.channel())
    assert type(stream) is stream_class
    waits = 0
    wait_for_stopped = faust.Stream.wait_for_stopped

    async def counted(self: Any, *args: Any, **kwargs: Any) -> bool:
        nonlocal waits
        waits += 1
        stopped: bool = await wait_for_stopped(self, *args, **kwargs)
        return stopped

    monkeypatch.setattr(faust.Stream, "wait_for_stopped", counted)

    async def take() -> None:
        async for _ in stream.take_events(10, within=0.002):
            pass

    task = asyncio.ensure_future(take())
    await asyncio.sleep(0.2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    if most is not None:
        assert waits <= most  # one wait, for the first value to arrive
    else:
        assert waits >= 20  # faust's: one wait every 2 ms
