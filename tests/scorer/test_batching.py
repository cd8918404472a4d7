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
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from services.scorer.batching import (
    BatchingApp,
    BatchingConsumer,
    BatchMessage,
    BatchStream,
    wait_while_busy,
)

TOPIC = "batching-test.events"


def message(tp: TP, offset: int) -> ConsumerMessage:
    return ConsumerMessage(
        tp.topic, tp.partition, offset, 0.0, 0, None, b"k", b"v", None, tp=tp, generation_id=1
    )


APPS: list[BatchingApp] = []


def make_app() -> BatchingApp:
    app = BatchingApp("batching-test", broker="kafka://127.0.0.1:9", store="memory://")
    app.batch_topics([TOPIC], batch_max=500)
    APPS.append(app)
    return app


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
    app = make_app()
    consumer = app.consumer
    app.topics._acking_topics.add(TOPIC)
    tp = TP(TOPIC, 1)
    records = [message(tp, offset) for offset in (10, 11, 12)]
    batch = BatchMessage.of(records)
    assert (batch.tp, batch.offset, batch.records) == (tp, 12, records)
    assert batch.value is None
    assert batch.key is None

    # what faust's compiled stream does after the agent's body: ack the batch's offset
    consumer.ack(batch)
    assert consumer._acked[tp] == [12]
    consumer._committed_offset[tp] = 10
    assert consumer._new_offset(tp) is None  # 10 and 11 not acked: nothing to commit

    batch.ack_records(consumer)
    assert sorted(consumer._acked[tp]) == [10, 11, 12]
    assert consumer._new_offset(tp) == 13
    assert all(record.acked for record in records[:-1])  # the batch stands for the last


def test_the_pure_python_stream_path_acks_every_record_through_the_batch() -> None:
    app = make_app()
    consumer = app.consumer
    app.topics._acking_topics.add(TOPIC)
    tp = TP(TOPIC, 0)
    batch = BatchMessage.of([message(tp, offset) for offset in (0, 1, 2, 3)])
    batch.incref()
    assert batch.ack(consumer)  # refcount 0: the final ack
    assert consumer._new_offset(tp) == 4


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


async def test_a_fetch_is_one_batch_across_partitions_other_topics_per_record() -> None:
    app = make_app()
    app.batch_topics([TOPIC], batch_max=2)
    consumer = app.consumer
    consumer.batch_max = 2
    fetcher = _Fetcher()
    events0, events1, other = TP(TOPIC, 0), TP(TOPIC, 1), TP("other", 0)
    fetched = [
        (events0, message(events0, 0)),
        (events1, message(events1, 7)),
        (other, message(other, 3)),
        (events0, message(events0, 1)),
        (events0, message(events0, 2)),
        (other, message(other, 4)),
    ]

    async def getmany(**_: float) -> Any:
        for item in fetched:
            yield item
        fetcher._stopped.set()  # one fetch, then the fetcher stops

    delivered: list[Any] = []

    async def callback(delivery: Any) -> None:
        delivered.append(delivery)

    app.consumer_generation_id = 1  # the records' generation
    consumer.getmany = getmany  # type: ignore[method-assign]
    consumer.callback = callback
    await consumer._drain_messages(fetcher)

    singles = [(m.topic, m.offset) for m in delivered if not isinstance(m, BatchMessage)]
    batches = [
        [(r.partition, r.offset) for r in m.records]
        for m in delivered
        if isinstance(m, BatchMessage)
    ]
    assert singles == [("other", 3), ("other", 4)]
    # in fetch order, each partition's records in log order, at most batch_max per batch
    assert batches == [[(0, 0), (1, 7)], [(0, 1), (0, 2)]]
    assert consumer._read_offset[events0] == 2
    assert consumer._read_offset[events1] == 7
    assert consumer._read_offset[other] == 4


async def test_batches_fetched_before_a_rebalance_are_not_delivered_after_it() -> None:
    app = make_app()
    consumer = app.consumer
    consumer.batch_max = 2
    fetcher = _Fetcher()
    tp = TP(TOPIC, 0)
    fetched = [(tp, message(tp, offset)) for offset in range(5)]  # generation 1

    async def getmany(**_: float) -> Any:
        for item in fetched:
            yield item
        fetcher._stopped.set()

    delivered: list[Any] = []

    async def callback(delivery: Any) -> None:
        delivered.append(delivery)
        app.consumer_generation_id = 2  # a rebalance starts after the first batch

    app.consumer_generation_id = 1
    consumer.getmany = getmany  # type: ignore[method-assign]
    consumer.callback = callback
    await consumer._drain_messages(fetcher)
    assert [[r.offset for r in m.records] for m in delivered] == [[0, 1]]
    assert consumer._read_offset[tp] == 1


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


def test_acking_many_at_once_books_as_acking_one_by_one() -> None:
    other = "batching-test.other"  # a topic without acks
    states = []
    for bulk in (False, True):
        app = make_app()
        consumer = app.consumer
        app.topics._acking_topics.add(TOPIC)
        tp0, tp1, tp_other = TP(TOPIC, 0), TP(TOPIC, 1), TP(other, 0)
        consumer._committed_offset[tp0] = 5
        done = message(tp0, 7)
        consumer.ack(done)  # acked before: skipped
        messages = [
            *(message(tp0, offset) for offset in (3, 5, 6, 7, 8)),  # 3: below the commit
            *(message(tp1, offset) for offset in (0, 1, 1)),  # offset 1 twice
            message(tp_other, 4),
            done,
        ]
        if bulk:
            consumer.ack_many(messages)
        else:
            for m in messages:
                consumer.ack(m)
        assert all(m.acked for m in messages)
        states.append(
            (
                dict(consumer._acked),
                dict(consumer._acked_index),
                consumer._n_acked,
                consumer._new_offset(tp0),
                consumer._new_offset(tp1),
            )
        )
    assert states[0] == states[1]
    assert states[1][3:] == (9, 2)


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
