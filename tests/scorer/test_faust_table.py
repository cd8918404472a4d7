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


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, int]] = []
        self.futures: list[asyncio.Future[_Metadata]] = []

    def _ensure_producer(self) -> "_Producer":
        return self  # faust's producer hands out its aiokafka producer

    async def send(self, topic: str, value: bytes, key: bytes, partition: int) -> Any:
        # aiokafka's AIOKafkaProducer.send(topic, value, key, partition)
        self.sent.append((topic, key, value, partition))
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


async def test_states_go_to_store_and_changelog_and_flush_notes_the_offsets() -> None:
    table, fake = make_table({EVENTS: 3, CHANGELOG: 3})
    a, b = LeadState(lead_id="lead-a"), LeadState(lead_id="lead-b")
    await table.save_all([(a, 1), (b, 2)])
    assert fake.data == {b"lead-a": a.to_bytes(), b"lead-b": b.to_bytes()}
    assert [(t, k, p) for t, k, _, p in fake.producer.sent] == [
        (CHANGELOG, b"lead-a", 1),
        (CHANGELOG, b"lead-b", 2),
    ]
    flushing = asyncio.ensure_future(table.flush())
    await asyncio.sleep(0)
    assert not flushing.done()  # waits for the changelog's acks
    assert fake.data.persisted == {}
    fake.producer.futures[0].set_result(_Metadata(1, 40))
    fake.producer.futures[1].set_result(_Metadata(2, 7))
    await flushing
    assert fake.data.persisted == {1: 40, 2: 7}


async def test_a_failed_changelog_write_fails_the_flush() -> None:
    table, fake = make_table({EVENTS: 3, CHANGELOG: 3})
    await table.save_all([(LeadState(lead_id="lead-a"), 0)])
    fake.producer.futures[0].set_exception(RuntimeError("not acked"))
    with pytest.raises(RuntimeError, match="not acked"):
        await table.flush()
    assert fake.data.persisted == {}


async def test_after_a_failed_batch_no_commit_goes_through() -> None:
    table, fake = make_table({EVENTS: 3, CHANGELOG: 3})
    await table.save_all([(LeadState(lead_id="lead-a"), 0)])
    fake.producer.futures[0].set_result(_Metadata(0, 3))
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
    assert len(fake.producer.sent) == 2
