"""States stored once per commit (`write_back.py`): never before every output scored
so far is acknowledged, once per lead however many batches changed it, nothing
stored (or scored) after a failure, and the worker's commit stores before it
flushes the changelog."""

import asyncio
import random
from collections.abc import Awaitable, Iterable
from datetime import timedelta

import pytest

from schemas.codec import encode_event
from services.scorer.faust_table import FaustLeadTable
from services.scorer.memory import MemorySink, MemoryTable
from services.scorer.metrics import ScorerMetrics
from services.scorer.outputs import Output
from services.scorer.processor import BatchScorer, Record
from services.scorer.rules import load_rules
from services.scorer.state import LeadState
from services.scorer.write_back import Encoded
from tests.scorer.test_faust_table import CHANGELOG, EVENTS, _Fake, _Metadata
from tests.scorer.test_processor import T0, qualifying
from tests.scorer.test_processor import records as as_records
from tests.scorer.test_processor_overlap import HeldSink, scorer_for
from tests.scorer.test_state_cache import RECORDS, batches

RULES = load_rules()


class CheckingTable(MemoryTable):
    """Fails the test if a state is stored while an output sent is not acknowledged."""

    def __init__(self, sink: HeldSink) -> None:
        super().__init__()
        self.sink = sink
        self.saves: list[list[Encoded]] = []

    async def save_encoded(self, records: list[Encoded]) -> None:
        for ack in self.sink.acks:
            assert ack.done(), "a state stored before its outputs' acks"
            assert ack.exception() is None
        self.saves.append(records)
        await super().save_encoded(records)


async def plain_states(size: int = 50) -> dict[str, tuple[bytes, int]]:
    """Each batch stored before the next is scored (nothing overlapped, nothing kept)."""
    table = MemoryTable()
    scorer = BatchScorer(RULES, table, MemorySink(), ScorerMetrics(), clock=lambda: 0.0)
    for batch in batches(RECORDS, size):
        await scorer.score_batch(batch)
        await scorer.drain()
    return table.states


async def ack_later(sink: HeldSink, rng: random.Random) -> None:
    """Acknowledges the outputs sent so far, in order, a few loop turns late each."""
    while True:
        for ack in list(sink.acks):
            if not ack.done():
                for _ in range(rng.randrange(4)):
                    await asyncio.sleep(0)
                ack.set_result(None)
        await asyncio.sleep(0)


@pytest.mark.parametrize("seed", range(4))
async def test_never_stored_before_the_acks_and_each_lead_once_per_commit(seed: int) -> None:
    rng = random.Random(seed)
    sink = HeldSink()
    table = CheckingTable(sink)
    scorer = scorer_for(table, sink)
    acking = asyncio.ensure_future(ack_later(sink, rng))
    touched: set[str] = set()
    try:
        for batch in batches(RECORDS, rng.choice((7, 20, 50))):
            await scorer.score_batch(batch)
            touched.update(record.key.decode() for record in batch if record.key)
            if rng.random() < 0.3:  # a commit
                dirty = {lead for lead, _ in scorer.write_back.dirty}
                saves = len(table.saves)
                await scorer.drain()
                # the leads scored since the last commit (bot events change nothing),
                # each once, in one write
                assert dirty <= touched
                assert dirty
                stored = [key.decode() for save in table.saves[saves:] for key, _, _ in save]
                assert len(table.saves) - saves == 1
                assert sorted(stored) == sorted(dirty)
                touched.clear()
        await scorer.drain()
    finally:
        acking.cancel()
    assert table.states == await plain_states()  # byte for byte
    stored_total = scorer.metrics.registry.get_sample_value("hotlead_scorer_states_stored_total")
    assert stored_total == sum(len(save) for save in table.saves)


async def test_fewer_states_are_encoded_than_batches_touch() -> None:
    table = MemoryTable()
    scorer = scorer_for(table, MemorySink(), overlap=False)
    parts = batches(RECORDS, 20)
    touched = sum(len({r.key for r in batch}) for batch in parts)
    for batch in parts:
        await scorer.score_batch(batch)
    await scorer.drain()
    stored = scorer.metrics.registry.get_sample_value("hotlead_scorer_states_stored_total")
    assert stored == len(table.states) == len({r.key for r in RECORDS})
    assert touched > 2 * len(table.states)  # what storing after every batch wrote


async def test_many_dirty_leads_are_stored_before_the_commit_once_acknowledged() -> None:
    sink = HeldSink()
    table = CheckingTable(sink)
    scorer = scorer_for(table, sink, max_dirty=10)
    first = batches(RECORDS, 50)[0]
    assert len({r.key for r in first}) >= 10
    scoring = asyncio.ensure_future(scorer.score_batch(first))
    await asyncio.sleep(0.01)
    assert not scoring.done()  # too many dirty leads: waits for its acks to store them
    assert table.states == {}
    sink.acks[0].set_result(None)
    await scoring
    assert len(table.states) == len({r.key for r in first})
    assert len(scorer.write_back) == 0


class BrokenTable(MemoryTable):
    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    async def save_encoded(self, records: list[Encoded]) -> None:
        if self.broken:
            raise OSError("disk full")
        await super().save_encoded(records)


async def test_a_failed_store_refuses_every_later_batch_and_store() -> None:
    table = BrokenTable()
    scorer = scorer_for(table, MemorySink(), overlap=False)
    parts = batches(RECORDS, 50)
    await scorer.score_batch(parts[0])
    await scorer.drain()
    stored = dict(table.states)
    await scorer.score_batch(parts[1])
    table.broken = True
    with pytest.raises(OSError, match="disk full"):
        await scorer.drain()
    table.broken = False
    # a later batch would read the leads of batch 1 from the table (behind) and store
    # states whose positions hide batch 1's events from the restart
    with pytest.raises(RuntimeError, match="restart from the last commit"):
        await scorer.score_batch(parts[2])
    with pytest.raises(RuntimeError, match="restart from the last commit"):
        await scorer.drain()
    with pytest.raises(RuntimeError, match="restart from the last commit"):
        await scorer.sweep()
    assert table.states == stored
    assert len(scorer.write_back) == 0
    assert len(scorer.cache) == 0


class FailingSendSink(MemorySink):
    async def send(self, outputs: list[Output]) -> Awaitable[object]:
        raise ConnectionError("producer closed")


async def test_a_failed_send_leaves_nothing_to_store() -> None:
    table = MemoryTable()
    scorer = scorer_for(table, MemorySink())
    parts = batches(RECORDS, 50)
    await scorer.score_batch(parts[0])  # completed, dirty
    scorer.sink = FailingSendSink()
    with pytest.raises(ConnectionError):
        await scorer.score_batch(parts[1])
    with pytest.raises(RuntimeError):
        await scorer.drain()
    assert table.states == {}  # batch 0's states were dirty: batch 1 changed some of them
    lead = parts[0][0].key.decode()  # type: ignore[union-attr]
    assert scorer.current(lead, parts[0][0].partition) is None  # only the table now


async def test_a_rebalance_drop_waits_for_the_batch_in_flight_and_stores_first() -> None:
    sink = HeldSink()
    table = CheckingTable(sink)
    scorer = scorer_for(table, sink)
    first = batches(RECORDS, 50)[0]
    await scorer.score_batch(first)  # in flight
    dropping = asyncio.ensure_future(scorer.drop_partitions({0, 1, 2}))
    await asyncio.sleep(0.01)
    assert not dropping.done()  # waits for the outputs' acks
    second = asyncio.ensure_future(scorer.score_batch(batches(RECORDS, 50)[1]))
    await asyncio.sleep(0.01)
    assert not second.done()  # and no batch runs before the drop is through
    sink.acks[0].set_result(None)
    await dropping
    assert set(table.states) == {r.key.decode() for r in first if r.key}
    await second  # scored after the drop: its leads read from the table
    assert len(scorer.write_back) > 0


async def test_the_worker_table_stores_at_the_drain_and_sends_the_changelog_at_the_flush() -> None:
    fake = _Fake({EVENTS: 3, CHANGELOG: 3})
    table = FaustLeadTable(fake, fake, EVENTS, 3)  # type: ignore[arg-type]
    scorer = BatchScorer(RULES, table, MemorySink(), ScorerMetrics(), clock=lambda: 0.0)
    first = batches(RECORDS, 50)[0]
    await scorer.score_batch(first)
    assert fake.data == {}  # nothing stored before the commit
    await scorer.drain()  # the first commit hook
    leads = {r.key for r in first}
    assert set(fake.data) == leads  # RocksDB (here a dict) now
    assert fake.producer.sent == []  # the changelog: at the flush, the second hook
    flushing = asyncio.ensure_future(table.flush())
    await asyncio.sleep(0)
    assert {key for _, key, _, _ in fake.producer.sent} == leads
    assert not flushing.done()  # the offsets wait for the changelog's acks
    for future, (partition, records) in zip(
        fake.producer.futures,
        sorted({p: 0 for _, _, _, p in fake.producer.sent}.items()),
        strict=True,
    ):
        future.set_result(_Metadata(partition, records))
    await flushing


def test_the_worker_commits_only_after_storing_then_flushing() -> None:
    from services.scorer.app import create_app
    from services.scorer.settings import ScorerSettings

    settings = ScorerSettings(
        scorer_store="memory://", scorer_sweep_interval_s=0, topic_prefix="wb-test."
    )
    scorer_app = create_app(settings, RULES)
    hooks = scorer_app.app.commit_hooks  # type: ignore[attr-defined]
    assert [hook.__name__ for hook in hooks] == ["drain", "flush_table"]
    assert hooks[1] == scorer_app.scorer.flush_table


class FailingFlushTable(MemoryTable):
    async def flush(self) -> None:
        raise ConnectionError("changelog write failed")


async def test_a_failed_changelog_flush_stops_the_scorer() -> None:
    # the commit is refused (the table's failure), and nothing more is stored either
    table = FailingFlushTable()
    scorer = scorer_for(table, MemorySink())
    await scorer.score_batch(RECORDS[:40])
    await scorer.drain()
    stored = dict(table.states)
    await scorer.score_batch(RECORDS[40:80])
    with pytest.raises(ConnectionError):
        await scorer.flush_table()
    assert len(scorer.write_back) == 0
    with pytest.raises(RuntimeError, match="restart from the last commit"):
        await scorer.drain()
    assert table.states == stored


def test_the_worker_commits_by_time_only() -> None:
    # every commit stores the states changed since the last one: faust's default of a
    # commit per 10,000 acked records would store them again every 10,000 events
    from services.scorer.app import create_app
    from services.scorer.settings import ScorerSettings

    settings = ScorerSettings(
        scorer_store="memory://",
        scorer_sweep_interval_s=0,
        topic_prefix="wb-test.",
        scorer_commit_interval_s=2.5,
    )
    conf = create_app(settings, RULES).app.conf
    assert conf.broker_commit_interval == 2.5
    assert conf.broker_commit_every >= 2**31


class PartitionedTable(MemoryTable):
    """One store per partition, as FaustLeadTable (one RocksDB per partition)."""

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[tuple[str, int], bytes] = {}

    def load(self, lead_id: str, partition: int | None = None) -> LeadState | None:
        raw = self.stored.get((lead_id, partition or 0))
        return LeadState.from_bytes(raw) if raw is not None else None

    async def save_encoded(self, records: list[Encoded]) -> None:
        for key, raw, partition in records:
            self.stored[(key.decode(), partition)] = raw

    def leads(self) -> Iterable[tuple[LeadState, int]]:
        for (_, partition), raw in list(self.stored.items()):
            yield LeadState.from_bytes(raw), partition


async def test_a_lead_keyed_to_two_partitions_keeps_a_state_in_each() -> None:
    # a producer whose key is not the lead id puts one lead on two partitions: each
    # partition's offset is committed, so each partition's state must be stored
    table = PartitionedTable()
    scorer = scorer_for(table, MemorySink(), overlap=False)
    first, second = qualifying("lead-x")
    await scorer.score_batch([Record(b"lead-x", encode_event(first), 0, 10)])
    await scorer.score_batch([Record(b"other-key", encode_event(second), 1, 20)])
    await scorer.score_batch([Record(b"lead-x", encode_event(second), 0, 11)])
    await scorer.drain()  # the commit of offsets 11 (partition 0) and 20 (partition 1)
    on_0, on_1 = table.load("lead-x", 0), table.load("lead-x", 1)
    assert on_0 is not None
    assert on_1 is not None
    assert (on_0.events_applied, on_0.position) == (2, 11)  # both events, one state
    assert (on_1.events_applied, on_1.position) == (1, 20)


class SnapshotSink(MemorySink):
    """Keeps a copy of what the table held when each emit began."""

    def __init__(self, table: PartitionedTable) -> None:
        super().__init__()
        self.table = table
        self.stored_at_emit: list[dict[tuple[str, int], bytes]] = []

    async def emit(self, outputs: list[Output]) -> None:
        self.stored_at_emit.append(dict(self.table.stored))
        await super().emit(outputs)


async def test_a_sweep_stores_each_chunk_once_its_outputs_are_acknowledged() -> None:
    # a sweep's outputs come from the clock, not the log: a crash between them and the
    # store would forget the segment changes they announced (and reuse their ids)
    table = PartitionedTable()
    sink = SnapshotSink(table)
    scorer = scorer_for(table, sink, overlap=False)
    events = [*qualifying("lead-a"), *qualifying("lead-b")]
    await scorer.score_batch(as_records(events))
    await scorer.drain()
    before = dict(table.stored)
    sink.stored_at_emit.clear()
    assert await scorer.sweep(T0 + timedelta(days=90), chunk=1) == 2
    first, second = sink.stored_at_emit
    assert first == before
    # the second chunk's emit found the first chunk's swept state stored already
    assert [key for key in before if second[key] != before[key]] == [("lead-a", 0)]
    changed = [key for key, raw in table.stored.items() if before[key] != raw]
    assert sorted(changed) == [("lead-a", 0), ("lead-b", 0)]
    assert len(scorer.write_back) == 0
