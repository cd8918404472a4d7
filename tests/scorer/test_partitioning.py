"""KeyPartitioner picks exactly the partitions of aiokafka's default partitioner."""

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from services.scorer.partitioning import KeyPartitioner

DEFAULT = DefaultPartitioner()
partition_lists = st.integers(min_value=1, max_value=64).map(lambda n: list(range(n)))


@given(keys=st.lists(st.binary(max_size=140), max_size=30), partitions=partition_lists)
def test_the_same_partition_as_the_default_partitioner(
    keys: list[bytes], partitions: list[int]
) -> None:
    partitioner = KeyPartitioner(max_keys=7)  # small: the memory starts again on the way
    for key in keys + keys:  # each key computed, then remembered
        expected = DEFAULT(key, partitions, partitions)
        assert partitioner(key, partitions, partitions) == expected


def test_a_remembered_key_follows_a_change_of_partition_count() -> None:
    partitioner = KeyPartitioner()
    key = b"lead-000042"
    for count in (3, 12, 5):
        partitions = list(range(count))
        assert partitioner(key, partitions, partitions) == DEFAULT(key, partitions, partitions)


def test_no_key_picks_an_available_partition() -> None:
    partitioner = KeyPartitioner()
    assert all(partitioner(None, [0, 1, 2], [1]) == 1 for _ in range(20))


def test_the_memory_is_bounded() -> None:
    partitioner = KeyPartitioner(max_keys=10)
    for n in range(100):
        partitioner(f"lead-{n}".encode(), [0, 1, 2], [0, 1, 2])
    assert len(partitioner._hashes) <= 10
