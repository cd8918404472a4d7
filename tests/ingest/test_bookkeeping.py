"""RecentIds (the last `capacity` ids, oldest forgotten first), the key hash cache and
`fill` (records into an aiokafka batch)."""

from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch

from services.ingest.kafka import KeyHashes, fill, partition_of
from services.ingest.records import Record
from services.ingest.sink import RecentIds


def test_recent_ids_forget_the_oldest_first() -> None:
    recent = RecentIds(3)
    recent.add_all(["a", "b", "c"])
    recent.add("a")  # seen again: now the newest
    recent.add_all(["d", "e"])
    assert list(recent.ids) == ["a", "d", "e"]
    assert ("a" in recent, "b" in recent, "c" in recent) == (True, False, False)


def test_a_batch_larger_than_the_capacity_keeps_its_newest_ids() -> None:
    recent = RecentIds(2)
    recent.add_all(["x", "y", "z"])
    assert list(recent.ids) == ["y", "z"]


def test_no_capacity_remembers_nothing() -> None:
    recent = RecentIds(0)
    recent.add_all(["a"])
    assert "a" not in recent


def test_key_hashes_remember_and_stay_bounded() -> None:
    hashes = KeyHashes(capacity=2)
    first = hashes(b"lead-1")
    assert hashes.known == {b"lead-1": first}
    hashes(b"lead-2")
    hashes(b"lead-3")  # over capacity: forgotten at once, then remembered again
    assert len(hashes.known) <= 2
    assert partition_of(hashes(b"lead-1"), [0, 1, 2]) == partition_of(first, [0, 1, 2])


class PlainBuilder(BatchBuilder):
    """A subclass: `fill` must take aiokafka's own `append` for it."""


def records_in(batch: BatchBuilder) -> list[tuple[int, bytes | None, bytes | None]]:
    return [(r.offset, r.key, r.value) for r in DefaultRecordBatch(bytearray(batch._build()))]


def test_fill_writes_what_append_writes_and_splits_full_batches() -> None:
    records = [Record(f"ev-{i}", "t", f"lead-{i}".encode(), b"v" * 400) for i in range(30)]
    direct, plain = BatchBuilder(4096, 0), PlainBuilder(4096, 0)
    left = fill(direct, records, 0)
    assert 0 < left < len(records)  # 4 KiB hold fewer than 30 records of 400 bytes
    assert fill(plain, records, 0) == left
    assert direct.record_count() == plain.record_count() == left
    assert records_in(direct) == records_in(plain)
    assert [value for _, _, value in records_in(direct)] == [r.value for r in records[:left]]
    rest = BatchBuilder(1 << 20, 0)
    assert fill(rest, records, left) == len(records)
    assert [key for _, key, _ in records_in(rest)] == [r.key for r in records[left:]]
