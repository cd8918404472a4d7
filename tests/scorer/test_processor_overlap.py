"""BatchScorer with `overlap`: the next batch is scored while the outputs of the
one before wait for their acks. Same results as without; states stored (at a
drain: the worker's commit) only once every output is acknowledged; a failed
ack loses nothing."""

import asyncio
from collections.abc import Awaitable
from datetime import timedelta

import pytest

from services.scorer.memory import MemorySink, MemoryTable
from services.scorer.metrics import ScorerMetrics
from services.scorer.outputs import Output
from services.scorer.processor import BatchScorer
from services.scorer.rules import load_rules
from services.scorer.state_cache import StateCache
from services.scorer.write_back import MAX_DIRTY
from tests.scorer.events import T0
from tests.scorer.test_state_cache import RECORDS, batches

RULES = load_rules()


def scorer_for(
    table: MemoryTable,
    sink: MemorySink,
    cache: int = 1_000,
    overlap: bool = True,
    max_dirty: int = MAX_DIRTY,
) -> BatchScorer:
    return BatchScorer(
        RULES,
        table,
        sink,
        ScorerMetrics(),
        clock=lambda: 0.0,
        cache=StateCache(cache),
        overlap=overlap,
        max_dirty=max_dirty,
    )


async def run(overlap: bool, cache: int = 1_000) -> tuple[MemoryTable, MemorySink]:
    table, sink = MemoryTable(), MemorySink()
    scorer = scorer_for(table, sink, cache, overlap)
    for batch in batches(RECORDS, 50):
        await scorer.score_batch(batch)
    await scorer.drain()
    return table, sink


def encoded(outputs: list[Output]) -> list[bytes]:
    return [output.encode() for output in outputs]


@pytest.mark.parametrize("cache", [1_000, 5, 0])
async def test_scores_exactly_as_waiting_for_each_batch(cache: int) -> None:
    plain_table, plain_sink = await run(overlap=False, cache=0)
    table, sink = await run(overlap=True, cache=cache)
    assert table.states == plain_table.states  # byte for byte
    assert encoded(sink.emitted) == encoded(plain_sink.emitted)


class HeldSink(MemorySink):
    """Outputs 'sent' at once; their acks come when the test says (or fail)."""

    def __init__(self) -> None:
        super().__init__()
        self.acks: list[asyncio.Future[object]] = []

    async def send(self, outputs: list[Output]) -> Awaitable[object]:
        self.emitted.extend(outputs)
        ack: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack


async def test_states_are_stored_only_once_every_output_is_acknowledged() -> None:
    table, sink = MemoryTable(), HeldSink()
    scorer = scorer_for(table, sink)
    first, second = batches(RECORDS, 50)[:2]
    await scorer.score_batch(first)  # sent, not acknowledged: nothing stored
    assert sink.emitted
    assert table.states == {}
    scoring = asyncio.create_task(scorer.score_batch(second))
    await asyncio.sleep(0.01)
    assert not scoring.done()  # the second batch was scored and sent, and waits for the first
    assert len(sink.acks) == 2
    sink.acks[0].set_result(None)
    await scoring
    assert table.states == {}  # the first batch completed: its states wait for the commit
    draining = asyncio.create_task(scorer.drain())
    await asyncio.sleep(0.01)
    # nothing stored while the second batch's outputs wait, not even the first batch's
    # leads: the second batch changed some of the same objects
    assert not draining.done()
    assert table.states == {}
    sink.acks[1].set_result(None)
    await draining
    plain_table = MemoryTable()
    plain = scorer_for(plain_table, MemorySink(), overlap=False)
    for batch in (first, second):
        await plain.score_batch(batch)
        await plain.drain()
    assert table.states == plain_table.states


async def test_a_failed_ack_loses_nothing_when_scored_again_from_the_last_commit() -> None:
    _, plain_sink = await run(overlap=False)
    table, sink = MemoryTable(), HeldSink()
    scorer = scorer_for(table, sink)
    parts = batches(RECORDS, 50)
    await scorer.score_batch(parts[0])
    first_outputs = len(sink.emitted)
    sink.acks[0].set_result(None)
    await scorer.drain()  # a commit: batch 0's states are stored
    stored = dict(table.states)
    await scorer.score_batch(parts[1])
    sink.acks[1].set_result(None)
    await scorer.score_batch(parts[2])  # batch 1 is completed here: its states are dirty
    sink.acks[2].set_exception(ConnectionError("broker gone"))
    with pytest.raises((ConnectionError, RuntimeError)):
        # completing batch 2 fails: here, or in the background just before
        await scorer.score_batch(parts[3])
    assert len(scorer.cache) == 0  # (and the worker's table refuses every later commit)
    assert len(scorer.write_back) == 0
    with pytest.raises(RuntimeError):
        await scorer.drain()
    assert table.states == stored  # batch 1's states were dirty: dropped, never stored
    for ack in sink.acks[3:]:
        ack.cancel()  # dropped with the failure
    # the worker restarts from the last commit (batch 0)
    restart = len(sink.emitted)
    restarted = scorer_for(table, sink)
    for batch in parts[1:]:
        await restarted.score_batch(batch)
        for ack in sink.acks:
            if not ack.done():
                ack.set_result(None)
    await restarted.drain()
    plain_table, _ = await run(overlap=False)
    assert table.states == plain_table.states
    replayed = encoded(sink.emitted[restart:])
    assert replayed == encoded(plain_sink.emitted)[first_outputs:]


async def test_the_last_batch_completes_once_acknowledged_without_waiting_for_a_drain() -> None:
    table, sink = MemoryTable(), HeldSink()
    scorer = scorer_for(table, sink)
    scorer.metrics = metrics = ScorerMetrics()
    first = batches(RECORDS, 50)[0]
    await scorer.score_batch(first)
    lead = first[-1].key.decode()  # type: ignore[union-attr]
    latest = scorer.current(lead, first[-1].partition)  # GET /leads: at once, from memory
    assert latest is not None
    assert latest.position == first[-1].offset
    await asyncio.sleep(0.01)
    assert (
        metrics.registry.get_sample_value("hotlead_scorer_handoffs_total", {"reason": "threshold"})
        is None
    )
    sink.acks[0].set_result(None)
    for _ in range(100):
        await asyncio.sleep(0.001)
        if scorer.in_flight.batch is None:
            break
    assert scorer.in_flight.batch is None  # completed: the metrics do not wait for a commit
    handoffs = sum(type(o).__name__ == "HandoffRequested" for o in sink.emitted)
    counted = sum(
        s.value
        for m in metrics.registry.collect()
        for s in m.samples
        if s.name == "hotlead_scorer_handoffs_total"
    )
    assert counted == handoffs
    assert table.states == {}  # the states wait for the commit
    assert metrics.registry.get_sample_value("hotlead_scorer_states_unstored") > 0  # type: ignore[operator]


async def test_a_failure_completing_in_the_background_stops_every_later_batch() -> None:
    table, sink = MemoryTable(), HeldSink()
    scorer = scorer_for(table, sink)
    await scorer.score_batch(batches(RECORDS, 50)[0])
    sink.acks[0].set_exception(ConnectionError("broker gone"))
    await asyncio.sleep(0.01)  # the background completion fails
    assert table.states == {}
    with pytest.raises(RuntimeError):
        await scorer.score_batch(batches(RECORDS, 50)[1])
    with pytest.raises(RuntimeError):
        await scorer.drain()


async def test_a_sweep_completes_the_batch_in_flight_first() -> None:
    table, sink = MemoryTable(), MemorySink()
    scorer = scorer_for(table, sink)
    await scorer.score_batch(batches(RECORDS, 50)[0])
    assert table.states == {}
    await scorer.sweep(T0 + timedelta(days=3650))
    assert table.states
    plain_table = MemoryTable()
    plain = scorer_for(plain_table, MemorySink(), overlap=False)
    await plain.score_batch(batches(RECORDS, 50)[0])
    await plain.sweep(T0 + timedelta(days=3650))
    assert table.states == plain_table.states
