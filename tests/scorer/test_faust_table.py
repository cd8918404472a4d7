"""FaustLeadTable's writes: store, changelog, persisted offsets at flush, and the
partition check that tolerates a changelog whose metadata is not there yet."""

import asyncio
from typing import Any

import pytest
from faust.exceptions import PartitionsMismatch
from faust.types import TP

from services.scorer.faust_table import FaustLeadTable
from services.scorer.state import LeadState

EVENTS, CHANGELOG = "t.hotlead.events.v1", "scorer-leads-changelog"


class _Metadata:
    def __init__(self, partition: int, offset: int) -> None:
        self.topic_partition = TP(CHANGELOG, partition)
        self.offset = offset


class _Store(dict[bytes, bytes]):
    def __init__(self) -> None:
        super().__init__()
        self.persisted: dict[int, int] = {}

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        assert tp.topic == CHANGELOG
        self.persisted[tp.partition] = offset


class _Batch:
    """aiokafka's BatchBuilder: `append` returns None once `room` records are in."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.records: list[tuple[bytes, bytes]] = []

    def append(self, *, timestamp: float | None, key: bytes, value: bytes) -> object | None:
        if len(self.records) >= self.room:
            return None
        self.records.append((key, value))
        return object()


class _Producer:
    def __init__(self, room: int = 100) -> None:
        self.room = room
        self.sent: list[tuple[str, bytes, bytes, int]] = []
        self.batches: list[list[tuple[bytes, bytes]]] = []
        self.futures: list[asyncio.Future[_Metadata]] = []

    def _ensure_producer(self) -> "_Producer":
        return self  # faust's producer hands out its aiokafka producer

    def create_batch(self) -> _Batch:
        return _Batch(self.room)

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int) -> Any:
        # aiokafka's AIOKafkaProducer.send_batch: one future per batch (its base offset)
        self.sent.extend((topic, key, value, partition) for key, value in batch.records)
        self.batches.append(batch.records)
        future: asyncio.Future[_Metadata] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


class _Fake:
    """Just the attributes of faust's app and table that FaustLeadTable uses."""

    def __init__(self, partitions: dict[str, int | None]) -> None:
        self.producer = _Producer()
        self.data = _Store()
        self.counts = partitions
        self.consumer = self
        self.changelog_topic = self

    def topic_partitions(self, topic: str) -> int | None:
        return self.counts.get(topic)

    def get_topic_name(self) -> str:
        return CHANGELOG


def make_table(partitions: dict[str, int | None]) -> tuple[FaustLeadTable, _Fake]:
    fake = _Fake(partitions)
    return FaustLeadTable(fake, fake, EVENTS, 3), fake  # type: ignore[arg-type]


async def test_states_go_to_store_now_and_to_the_changelog_at_flush() -> None:
    table, fake = make_table({EVENTS: 3, CHANGELOG: 3})
    a, b = LeadState(lead_id="lead-a"), LeadState(lead_id="lead-b")
    await table.save_all([(a, 1), (b, 2)])
    assert fake.data == {b"lead-a": a.to_bytes(), b"lead-b": b.to_bytes()}
    assert fake.producer.sent == []  # the changelog waits for the commit (flush)
    flushing = asyncio.ensure_future(table.flush())
    await asyncio.sleep(0)
    assert [(t, k, p) for t, k, _, p in fake.producer.sent] == [
        (CHANGELOG, b"lead-a", 1),
        (CHANGELOG, b"lead-b", 2),
    ]
    assert not flushing.done()  # waits for the changelog's acks
    assert fake.data.persisted == {}
    fake.producer.futures[0].set_result(_Metadata(1, 40))
    fake.producer.futures[1].set_result(_Metadata(2, 7))
    await flushing
    assert fake.data.persisted == {1: 40, 2: 7}


async def test_a_lead_stored_twice_between_commits_goes_to_the_changelog_once() -> None:
    table, fake = make_table({EVENTS: 3, CHANGELOG: 3})
    first, other = LeadState(lead_id="lead-a"), LeadState(lead_id="lead-b")
    await table.save_all([(first, 0), (other, 0)])
    later = LeadState(lead_id="lead-a", events_applied=9)
    await table.save_all([(later, 0)])
    assert fake.data[b"lead-a"] == later.to_bytes()  # the store has the latest at once
    flushing = asyncio.ensure_future(table.flush())
    await asyncio.sleep(0)
    # one batch for the partition: the latest state of each lead, once
    assert fake.producer.batches == [[(b"lead-a", later.to_bytes()), (b"lead-b", other.to_bytes())]]
    fake.producer.futures[0].set_result(_Metadata(0, 10))  # base offset of 2 records
    await flushing
    assert fake.data.persisted == {0: 11}


async def test_full_batches_are_sent_as_several_and_the_last_offset_noted() -> None:
    table, fake = make_table({EVENTS: 3, CHANGELOG: 3})
    fake.producer.room = 2
    states = [LeadState(lead_id=f"lead-{n}") for n in range(5)]
    await table.save_all([(state, 1) for state in states])
    flushing = asyncio.ensure_future(table.flush())
    await asyncio.sleep(0)
    assert [len(batch) for batch in fake.producer.batches] == [2, 2, 1]
    assert [key for _, key, _, _ in fake.producer.sent] == [f"lead-{n}".encode() for n in range(5)]
    for future, base in zip(fake.producer.futures, (100, 102, 104), strict=True):
        future.set_result(_Metadata(1, base))
    await flushing
    assert fake.data.persisted == {1: 104}


async def test_many_waiting_states_are_sent_before_the_commit() -> None:
    table, fake = make_table({EVENTS: 3, CHANGELOG: 3})
    table._changelog.max_pending = 3
    await table.save_all([(LeadState(lead_id=f"lead-{n}"), n % 3) for n in range(2)])
    assert fake.producer.sent == []
    await table.save_all([(LeadState(lead_id="lead-0"), 0)])  # the same lead: still 2
    assert fake.producer.sent == []
    await table.save_all([(LeadState(lead_id="lead-9"), 2)])
    assert len(fake.producer.sent) == 3  # sent at once; flush still awaits their acks
    flushing = asyncio.ensure_future(table.flush())
    await asyncio.sleep(0)
    assert not flushing.done()
    for future, partition in zip(fake.producer.futures, (0, 1, 2), strict=True):
        future.set_result(_Metadata(partition, 5))
    await flushing
    assert fake.data.persisted == {0: 5, 1: 5, 2: 5}


async def test_a_failed_changelog_write_fails_the_flush() -> None:
    table, fake = make_table({EVENTS: 3, CHANGELOG: 3})
    await table.save_all([(LeadState(lead_id="lead-a"), 0)])
    flushing = asyncio.ensure_future(table.flush())
    await asyncio.sleep(0)
    fake.producer.futures[0].set_exception(RuntimeError("not acked"))
    with pytest.raises(RuntimeError, match="not acked"):
        await flushing
    assert fake.data.persisted == {}


async def test_after_a_failed_batch_no_commit_goes_through() -> None:
    table, fake = make_table({EVENTS: 3, CHANGELOG: 3})
    await table.save_all([(LeadState(lead_id="lead-a"), 0)])
    table.fail(ValueError("scoring failed"))
    with pytest.raises(RuntimeError, match="no offsets are committed"):
        await table.flush()
    assert fake.data.persisted == {}


@pytest.mark.parametrize("changelog", [None, 0])
async def test_a_changelog_without_metadata_yet_is_checked_again_later(
    changelog: int | None,
) -> None:
    table, fake = make_table({EVENTS: 3, CHANGELOG: changelog})
    await table.save_all([(LeadState(lead_id="lead-a"), 0)])  # no PartitionsMismatch
    fake.counts[CHANGELOG] = 6
    with pytest.raises(PartitionsMismatch, match="changelog scorer-leads-changelog: 6"):
        await table.save_all([(LeadState(lead_id="lead-a"), 0)])


async def test_once_verified_the_counts_are_not_read_again() -> None:
    table, fake = make_table({EVENTS: 3, CHANGELOG: 3})
    await table.save_all([(LeadState(lead_id="lead-a"), 0)])
    fake.counts[CHANGELOG] = 0
    await table.save_all([(LeadState(lead_id="lead-b"), 0)])
    assert len(table._changelog) == 2  # both waiting for the changelog, no error


async def test_states_sent_during_a_flush_are_awaited_by_the_next_one() -> None:
    table, fake = make_table({EVENTS: 3, CHANGELOG: 3})
    table._changelog.max_pending = 2
    await table.save_all([(LeadState(lead_id="lead-a"), 0)])
    flushing = asyncio.ensure_future(table.flush())
    await asyncio.sleep(0)
    assert len(fake.producer.futures) == 1  # lead-a's batch, its ack not in yet
    # a batch scored meanwhile makes 2 leads wait: sent, but after the flush
    saving = asyncio.ensure_future(
        table.save_all([(LeadState(lead_id="lead-b"), 1), (LeadState(lead_id="lead-c"), 1)])
    )
    await asyncio.sleep(0)
    assert len(fake.producer.futures) == 1
    fake.producer.futures[0].set_result(_Metadata(0, 4))
    await flushing
    await saving
    assert fake.data.persisted == {0: 4}
    assert len(fake.producer.futures) == 2  # sent once the flush was done
    second = asyncio.ensure_future(table.flush())
    await asyncio.sleep(0)
    assert not second.done()  # waits for the batch sent in between
    fake.producer.futures[1].set_result(_Metadata(1, 8))
    await second
    assert fake.data.persisted == {0: 4, 1: 9}


async def test_a_flush_waiting_behind_a_failed_one_fails_too() -> None:
    # a commit hook's flush queued behind a rebalance's flush whose batch fails must
    # not find "nothing pending" and let the commit pass
    table, fake = make_table({EVENTS: 3, CHANGELOG: 3})
    await table.save_all([(LeadState(lead_id="lead-a"), 0)])
    first = asyncio.ensure_future(table._changelog.flush(CHANGELOG))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(table.flush())
    await asyncio.sleep(0)
    fake.producer.futures[0].set_exception(RuntimeError("not acked"))
    with pytest.raises(RuntimeError, match="not acked"):
        await first
    with pytest.raises(RuntimeError, match="not acked"):
        await second
    with pytest.raises(RuntimeError, match="no offsets are committed"):
        await table.flush()  # and every later commit
    assert fake.data.persisted == {}


async def test_states_lost_in_a_failed_send_fail_every_later_flush() -> None:
    table, fake = make_table({EVENTS: 3, CHANGELOG: 3})
    await table.save_all([(LeadState(lead_id="lead-a"), 0), (LeadState(lead_id="lead-b"), 1)])

    async def refuse(batch: object, topic: str, *, partition: int) -> Any:
        raise RuntimeError("producer closed")

    fake.producer.send_batch = refuse  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="producer closed"):
        await table._changelog.send(CHANGELOG)
    assert len(table._changelog) == 0  # the states waiting are gone with the send
    with pytest.raises(RuntimeError, match="changelog states were lost"):
        await table._changelog.flush(CHANGELOG)
    assert fake.data.persisted == {}
