"""StateCache, and BatchScorer keeping states between batches: the same results
as reading every state from the table, and nothing kept that may be stale (a
failed batch, a rebalance, a drop while a batch runs)."""

import pytest
from faust.types import TP

from schemas.codec import encode_event
from schemas.topics import EVENTS
from services.scorer.app import create_app
from services.scorer.memory import MemorySink, MemoryTable
from services.scorer.metrics import ScorerMetrics
from services.scorer.outputs import Output
from services.scorer.processor import BatchScorer, Record
from services.scorer.rules import load_rules
from services.scorer.settings import ScorerSettings
from services.scorer.state import LeadState
from services.scorer.state_cache import StateCache
from tests.scorer.corpus import build_corpus

RULES = load_rules()
CORPUS = build_corpus(60, 12)
PARTITIONS = 3


def corpus_records() -> list[Record]:
    """The corpus as the consumer gives it: each lead in one partition, offsets per partition."""
    next_offset = [0] * PARTITIONS
    out = []
    for event in CORPUS:
        lead = event.subject or ""
        partition = int(lead.rsplit("-", 1)[-1]) % PARTITIONS
        out.append(Record(lead.encode(), encode_event(event), partition, next_offset[partition]))
        next_offset[partition] += 1
    return out


RECORDS = corpus_records()


def batches(records: list[Record], size: int) -> list[list[Record]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


async def run(
    cache: StateCache | None, size: int = 50, commit_every: int = 1
) -> tuple[MemoryTable, MemorySink]:
    """Scores the corpus; `drain` (the worker's commit) after every `commit_every` batches."""
    table, sink = MemoryTable(), MemorySink()
    scorer = BatchScorer(RULES, table, sink, ScorerMetrics(), clock=lambda: 0.0, cache=cache)
    for n, batch in enumerate(batches(RECORDS, size), 1):
        await scorer.score_batch(batch)
        if n % commit_every == 0:
            await scorer.drain()
    await scorer.drain()
    return table, sink


def state(lead: str, partition: int = 0) -> tuple[LeadState, int]:
    return LeadState(lead_id=lead), partition


def test_keeps_the_most_recently_stored_and_checks_the_partition() -> None:
    cache = StateCache(2)
    a, b, c = state("a"), state("b", 1), state("c")
    cache.put_all([a, b], cache.epoch)
    assert cache.get("a", 0) is a[0]  # a read does not make it recent...
    assert cache.get("b", 0) is None  # stored in partition 1, not 0
    cache.put_all([a], cache.epoch)  # ...storing it again (after its batch) does
    cache.put_all([c], cache.epoch)
    assert len(cache) == 2
    assert cache.get("b", 1) is None  # the least recently used went
    assert cache.get("a", 0) is a[0]
    assert cache.get("c", 0) is c[0]


def test_a_drop_forgets_its_partitions_and_a_batch_begun_before_keeps_nothing() -> None:
    cache = StateCache(10)
    cache.put_all([state("a", 0), state("b", 1), state("c", 2)], cache.epoch)
    begun = cache.epoch
    assert cache.drop_partitions({0, 2}) == 2
    assert cache.get("a", 0) is None
    assert cache.get("c", 2) is None
    assert cache.get("b", 1) is not None
    cache.put_all([state("d", 1)], begun)  # began before the drop
    assert cache.get("d", 1) is None
    cache.clear()
    assert len(cache) == 0
    assert StateCache(0).get("a", 0) is None
    empty = StateCache(0)
    empty.put_all([state("a")], empty.epoch)
    assert len(empty) == 0


@pytest.mark.parametrize("capacity", [1_000, 7])
async def test_scores_exactly_as_reading_every_state_from_the_table(capacity: int) -> None:
    # stored after every batch, nothing kept: every batch reads its states from the table
    plain_table, plain_sink = await run(None)
    table, sink = await run(StateCache(capacity), commit_every=5)
    assert table.states == plain_table.states  # byte for byte
    assert [e.encode() for e in sink.emitted] == [e.encode() for e in plain_sink.emitted]
    assert len(plain_sink.emitted) > 50  # segment changes and hand-offs happened


class FailingSink(MemorySink):
    def __init__(self, fail_on: int) -> None:
        super().__init__()
        self.calls = 0
        self.fail_on = fail_on

    async def emit(self, outputs: list[Output]) -> None:
        self.calls += 1
        if self.calls == self.fail_on:
            raise ConnectionError("broker gone")
        await super().emit(outputs)


async def test_a_failed_batch_drops_what_was_not_stored_and_a_restart_scores_it_fully() -> None:
    # The core changes states in place: had the failed batch's changes been kept (or
    # stored), its redelivery would find its events applied and emit nothing.
    _, plain_sink = await run(None)
    table, sink = MemoryTable(), FailingSink(fail_on=3)
    cache = StateCache(1_000)
    scorer = BatchScorer(RULES, table, sink, ScorerMetrics(), clock=lambda: 0.0, cache=cache)
    parts = batches(RECORDS, 50)
    await scorer.score_batch(parts[0])
    await scorer.drain()  # a commit: batch 0 stored
    after_commit = len(sink.emitted)
    await scorer.score_batch(parts[1])  # outputs acknowledged, states not stored yet
    with pytest.raises(ConnectionError):
        await scorer.score_batch(parts[2])
    assert len(cache) == 0
    assert len(scorer.write_back) == 0  # batch 1's states too: batch 2 changed some of them
    stored = dict(table.states)
    with pytest.raises(RuntimeError, match="restart from the last commit"):
        await scorer.drain()  # nothing is stored after a failure...
    with pytest.raises(RuntimeError, match="restart from the last commit"):
        await scorer.score_batch(parts[2])  # ...nor scored (from a table behind)
    assert table.states == stored
    # the worker restarts from the last commit: batch 1 on
    restart = len(sink.emitted)
    restarted = BatchScorer(
        RULES, table, sink, ScorerMetrics(), clock=lambda: 0.0, cache=StateCache(1_000)
    )
    for batch in parts[1:]:
        await restarted.score_batch(batch)
    await restarted.drain()
    replayed = [e.encode() for e in sink.emitted[restart:]]
    assert replayed == [e.encode() for e in plain_sink.emitted[after_commit:]]
    plain_table, _ = await run(None)
    assert table.states == plain_table.states


async def test_a_drop_stores_everything_first() -> None:
    cache = StateCache(1_000)
    table, sink = MemoryTable(), MemorySink()
    scorer = BatchScorer(RULES, table, sink, ScorerMetrics(), clock=lambda: 0.0, cache=cache)
    await scorer.score_batch(RECORDS[:40])
    await scorer.drain()
    await scorer.score_batch(RECORDS[40:80])  # dirty: not stored yet
    dirty = {lead: partition for lead, partition in scorer.write_back.dirty}
    assert dirty
    dropped = await scorer.drop_partitions({0, 2})
    assert len(scorer.write_back) == 0
    assert {lead: table.states[lead][1] for lead in dirty} == dirty  # stored before the drop
    assert dropped > 0
    assert all(partition == 1 for _, (_, partition) in cache._states.items())
    await scorer.score_batch(RECORDS[80:120])
    assert await scorer.drop_partitions({0, 1, 2}) > 0
    assert len(cache) == 0
    assert len(scorer.write_back) == 0
    plain_table = MemoryTable()
    plain = BatchScorer(RULES, plain_table, MemorySink(), ScorerMetrics(), clock=lambda: 0.0)
    for batch in batches(RECORDS[:120], 40):
        await plain.score_batch(batch)
        await plain.drain()
    assert table.states == plain_table.states  # dropping lost nothing


async def test_the_worker_drops_the_states_of_revoked_and_assigned_partitions() -> None:
    settings = ScorerSettings(
        scorer_store="memory://", scorer_sweep_interval_s=0, topic_prefix="cache-test."
    )
    scorer = create_app(settings, RULES)
    cache = scorer.scorer.cache
    assert cache.capacity == settings.scorer_state_cache_size > 0
    events = settings.topic(EVENTS)
    cache.put_all([state("a", 0), state("b", 1), state("c", 2)], cache.epoch)
    await scorer.app.on_partitions_revoked.send({TP(events, 0)})
    assert cache.get("a", 0) is None
    assert cache.get("b", 1) is not None
    await scorer.app.on_partitions_assigned.send({TP(events, 1), TP(events, 2)})
    assert len(cache) == 0
