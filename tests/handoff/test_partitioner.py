"""The hand-off producer's partitioning is Kafka's (murmur2), so keys land where every
other client puts them; and queued writes are all awaited."""

import asyncio

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from services.handoff.kafka_io import CachedPartitioner, murmur2
from services.handoff.state import all_durable


@given(st.binary(max_size=200))
def test_murmur2_is_kafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@given(st.lists(st.binary(min_size=1, max_size=60), max_size=50), st.integers(1, 64))
def test_cached_partitioner_picks_the_default_partition(keys: list[bytes], count: int) -> None:
    partitions = list(range(count))
    cached, default = CachedPartitioner(size=7), DefaultPartitioner()
    for key in keys + keys:  # the second pass hits the cache (or a cleared one)
        assert cached(key, partitions, partitions) == default(key, partitions, partitions)


def test_a_record_without_key_goes_to_an_available_partition() -> None:
    assert CachedPartitioner()(None, [0, 1, 2], [2]) == 2


async def test_all_durable_awaits_every_write_then_raises_the_first_failure() -> None:
    done: list[int] = []

    async def write(n: int, fail: bool = False) -> None:
        await asyncio.sleep(0)
        done.append(n)
        if fail:
            raise RuntimeError(f"write {n}")

    with pytest.raises(RuntimeError, match="write 1"):
        await all_durable([write(0), write(1, True), write(2, True), write(3)])
    assert done == [0, 1, 2, 3]
