"""Kafka's default partitioner, remembering the hash of recent keys.

aiokafka's producer picks the partition of a record sent without one with
`DefaultPartitioner`: murmur2 of the key in pure Python (~7 us per key on the
development machine), so every output the scorer sends (a segment change or a
hand-off, keyed by lead id) paid it. The same leads come back again and again;
`KeyPartitioner` computes a key's murmur2 once, compiled (`murmur2.py`), and
keeps it (at most `max_keys`, then it starts again), and picks the partition
exactly as `DefaultPartitioner` does, so every record lands where it did before.
"""

from collections.abc import Sequence

from aiokafka.partitioner import DefaultPartitioner

from services.scorer.murmur2 import positive_murmur2

_DEFAULT = DefaultPartitioner()


class KeyPartitioner:
    """A drop-in `partitioner=` for aiokafka's producer (and faust's
    `producer_partitioner`): the same partitions as the default one."""

    __slots__ = ("_hashes", "max_keys")

    def __init__(self, max_keys: int = 200_000) -> None:
        self.max_keys = max_keys
        self._hashes: dict[bytes, int] = {}

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            chosen: int = _DEFAULT(key, all_partitions, available)  # a random one
            return chosen
        hashes = self._hashes
        hashed = hashes.get(key)
        if hashed is None:
            if len(hashes) >= self.max_keys:
                hashes.clear()
            hashed = hashes[key] = positive_murmur2(key)
        return all_partitions[hashed % len(all_partitions)]
