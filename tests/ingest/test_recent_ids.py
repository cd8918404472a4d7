"""RecentIds: the last `capacity` ids, oldest forgotten first, re-added ids kept longest."""

from services.ingest.kafka import KeyHashes, partition_of
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
