"""What a batched fetch lets faust commit is what faust's own record-by-record path
lets it commit, whatever the offsets (holes, records already read, offsets already
committed or acked) and however many of the batches were processed (hypothesis)."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scorer.batching import BatchingApp, BatchingConsumer, BatchMessage, ack_spans

TOPIC = "batching-offsets.events"
APPS: list[BatchingApp] = []


@pytest.fixture(autouse=True)
def close_consumer_threads() -> Iterator[None]:
    yield
    while APPS:
        thread = getattr(APPS.pop().consumer, "_thread", None)
        if thread is not None:
            thread.thread_loop.close()


def record(tp: TP, offset: int) -> Any:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", b"v", None, 1, 1, ())


class _Fetcher:
    def __init__(self) -> None:
        self._stopped = asyncio.Event()


def consumer_for(
    fetches: list[dict[TP, list[int]]], before: dict[TP, tuple[int | None, int | None]]
) -> tuple[BatchingConsumer, _Fetcher, list[Any]]:
    """A consumer whose partitions are at (committed, read) offsets `before`, fetching
    `fetches` (offsets by partition), and the list its deliveries go to."""
    app = BatchingApp("batching-offsets", broker="kafka://127.0.0.1:9", store="memory://")
    APPS.append(app)
    app.batch_topics([TOPIC], batch_max=500)
    app.topics._acking_topics.add(TOPIC)
    app.consumer_generation_id = 1
    consumer = app.consumer
    assert isinstance(consumer, BatchingConsumer)
    for tp, (committed, read) in before.items():
        consumer._committed_offset[tp] = committed
        consumer._read_offset[tp] = read
    fetcher = _Fetcher()
    pending = list(fetches)
    delivered: list[Any] = []

    async def wait_next_records(_timeout: float) -> tuple[dict[TP, list[Any]], None]:
        if len(pending) <= 1:
            fetcher._stopped.set()
        offsets = pending.pop(0) if pending else {}
        return {tp: [record(tp, offset) for offset in os] for tp, os in offsets.items()}, None

    async def callback(delivery: Any) -> None:
        delivered.append(delivery)

    consumer._wait_next_records = wait_next_records  # type: ignore[method-assign]
    consumer.highwater = lambda tp: 10_000  # type: ignore[method-assign]
    consumer.callback = callback
    return consumer, fetcher, delivered


TPS = [TP(TOPIC, partition) for partition in range(3)]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Any, ...]:
    """Two fetches over 1-3 partitions (offsets with holes), from states just after an
    assignment (read offset = committed offset, as faust's seek sets them), a batch size,
    and how many of the batches the agent finished."""
    fetches: list[dict[TP, list[int]]] = [{}, {}]
    before: dict[TP, tuple[int | None, int | None]] = {}
    for tp in TPS[: draw(st.integers(1, 3))]:
        committed = draw(st.none() | st.integers(1, 6))  # (faust's seek: 0 is None)
        steps = draw(st.lists(st.sampled_from([1, 1, 1, 2, 3]), max_size=14))
        offset = (committed or 0) + draw(st.integers(0, 2))
        offsets = []
        for step in steps:
            offsets.append(offset)
            offset += step
        cut = draw(st.integers(0, len(offsets)))
        fetches[0][tp], fetches[1][tp] = offsets[:cut], offsets[cut:]
        before[tp] = (committed, committed)
    batch_max = draw(st.integers(1, 5))
    done = draw(st.integers(0, 40))
    return fetches, before, batch_max, done


def offsets_to_commit(consumer: BatchingConsumer) -> dict[TP, int | None]:
    return {tp: consumer._new_offset(tp) for tp in TPS}


@settings(max_examples=150, deadline=None)
@given(scenarios())
async def test_a_batch_path_commits_what_faust_s_record_path_commits(
    scenario: tuple[Any, ...],
) -> None:
    fetches, before, batch_max, done = scenario
    # faust's own getmany and _drain_messages: a message per record, acked one by one
    faust, faust_fetcher, messages = consumer_for(fetches, before)
    await FaustConsumer._drain_messages(faust, faust_fetcher)
    batched, fetcher, batches = consumer_for(fetches, before)
    batched.batch_max = batch_max
    await batched._drain_messages(fetcher)

    assert all(isinstance(batch, BatchMessage) for batch in batches)
    assert all(len(batch.records) <= batch_max for batch in batches)
    delivered = [(r.partition, r.offset) for batch in batches for r in batch.records]
    assert sorted(delivered) == sorted((m.partition, m.offset) for m in messages)
    assert dict(batched._read_offset) == dict(faust._read_offset)

    # the agent finished the first `done` batches (in order, as it scores them)
    finished = {(r.partition, r.offset) for batch in batches[:done] for r in batch.records}
    for batch in batches[:done]:
        batch.ack_records(batched)
        batched.ack(batch)  # the stream's ack of the batch message
    for message in messages:
        if (message.partition, message.offset) in finished:
            faust.ack(message)
    first_commits = offsets_to_commit(batched)
    faust_first_commits = offsets_to_commit(faust)
    for tp in TPS:
        commit, faust_commit = first_commits[tp], faust_first_commits[tp]
        committed = before.get(tp, (None, None))[0]
        records = [o for p, o in delivered if p == tp.partition]
        processed = [o for o in records if (tp.partition, o) in finished]
        assert processed == records[: len(processed)], scenario  # in log order
        # up to the last record processed, whatever offsets without a record there were
        # (faust gets there too, if sometimes a commit later: below)
        expected = processed[-1] + 1 if processed else committed
        assert commit_rounds(batched, tp, commit) == expected, scenario
        if faust_commit is not None:  # never behind faust
            assert commit is not None, scenario
            assert commit >= faust_commit, scenario
        faust_final = commit_rounds(faust, tp, faust_commit)
        assert faust_final is None or (expected is not None and faust_final <= expected)


def commit_rounds(consumer: BatchingConsumer, tp: TP, offset: int | None) -> int | None:
    """The offset committed after commits while `_new_offset` has a new one (starting
    with `offset`, `_new_offset`'s first answer)."""
    committed = consumer._committed_offset[tp]
    while offset is not None and (committed is None or offset > committed):
        committed = consumer._committed_offset[tp] = offset
        offset = consumer._new_offset(tp)
    return committed


async def test_a_hole_after_offset_0_is_committed_with_the_record_after_it() -> None:
    tp = TPS[0]
    fetches: list[dict[TP, list[int]]] = [{tp: [0]}, {tp: [3]}]  # 1 and 2: no record
    faust, faust_fetcher, messages = consumer_for(fetches, {})
    await FaustConsumer._drain_messages(faust, faust_fetcher)
    batched, fetcher, batches = consumer_for(fetches, {})
    await batched._drain_messages(fetcher)
    for message in messages:
        faust.ack(message)
    for batch in batches:
        batch.ack_records(batched)
        batched.ack(batch)
    assert batched._new_offset(tp) == 4
    # faust notes no gap after a read offset of 0: its commits stop at 1
    assert faust._new_offset(tp) == 1
    faust._committed_offset[tp] = 1
    assert faust._new_offset(tp) is None


@settings(max_examples=100, deadline=None)
@given(
    committed=st.none() | st.integers(0, 30),
    acked=st.sets(st.integers(0, 40), max_size=10),
    spans=st.lists(
        st.tuples(st.sampled_from(TPS[:2]), st.integers(0, 30), st.integers(0, 12)), max_size=4
    ),
)
def test_acking_spans_books_as_acking_each_offset_one_by_one(
    committed: int | None, acked: set[int], spans: list[tuple[TP, int, int]]
) -> None:
    other = TP("batching-offsets.other", 0)  # a topic without acks
    states = []
    for by_span in (False, True):
        consumer, _, _ = consumer_for([], {})
        for tp in TPS[:2]:
            consumer._committed_offset[tp] = committed
            for offset in sorted(acked):
                consumer.ack(record_message(tp, offset))
        todo = [(tp, first, first + length - 1) for tp, first, length in spans]
        todo.append((other, 0, 3))
        if by_span:
            ack_spans(consumer, todo)
        else:
            for tp, first, last in todo:
                for offset in range(first, last + 1):
                    consumer.ack(record_message(tp, offset))
        states.append(
            (
                {tp: sorted(offsets) for tp, offsets in consumer._acked.items()},
                dict(consumer._acked_index),
                consumer._n_acked,
                offsets_to_commit(consumer),
            )
        )
    assert states[0] == states[1]


def record_message(tp: TP, offset: int) -> Any:
    from faust.types.tuples import ConsumerMessage

    return ConsumerMessage(
        tp.topic, tp.partition, offset, 0.0, 0, None, b"k", b"v", None, tp=tp, generation_id=1
    )
