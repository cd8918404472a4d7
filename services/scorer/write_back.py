"""Lead states stored once per commit, not once per batch: `WriteBack`.

A lead's state must be in the table (the partition's RocksDB store and the
changelog) before the offsets of the events behind it are committed, and only
once the outputs those events produced are acknowledged by Kafka. It need
not be stored after every batch: the worker commits about once a second, and
encoding a state (~1.7 KB of JSON, 4-9 us) and writing it to RocksDB were
~18 % of the worker's CPU when every batch stored every lead it touched. A
lead scored in several batches between two commits is now encoded and
written once, with its latest state.

So a batch only marks the leads it changed *dirty* (`mark`), keeping the live
state objects the core works on: they stay here, whatever the state cache
drops, until they are stored, and every later batch, sweep and GET /leads
reads them from here first. `store` encodes every dirty state, writes them to
the table (RocksDB now, the changelog by the commit: `FaustLeadTable`) and
hands them to the state cache. The scorer calls it (`BatchScorer.drain`)

- before every offset commit (a commit hook, then the changelog's acks are
  awaited, then the offsets committed),
- before a rebalance moves partitions (and the changelog is flushed before
  the states of revoked and assigned partitions are dropped),
- before a sweep (which reads the table's leads) and after each of its chunks
  (whose outputs come from the clock: a replay would not make them again), and
- when more than `max_dirty` leads wait (a memory bound),

always holding the scorer's lock, and only once the batch in flight has
completed. That is what makes a stored state safe: batches run one at a time
under that lock, so when no batch is in flight every change in a live state
object comes from a batch whose outputs Kafka has acknowledged. (In overlap
mode the next batch changes the same objects before the previous batch's
acks are in: that is why states were encoded at the hand-over before; now
nothing is encoded until the batch in flight has completed.)

If anything fails between marking and storing (a batch raises half way, its
outputs' acks fail, a write fails), the dirty objects may hold changes whose
outputs were never acknowledged, mixed with changes of earlier batches that
were: nothing can be stored from them. The scorer drops them (`drop`), and
refuses to score or store anything again (`BatchScorer` keeps the failure):
a later batch would read those leads from the table, which is behind by
every dirty state, and store a state that skipped events; their log
positions would then hide those events from the restart. The worker restarts
from its last commit, which the stored states cover.
"""

from collections.abc import Iterable
from typing import Protocol

from services.scorer.state import LeadState
from services.scorer.state_cache import StateCache

Encoded = tuple[bytes, bytes, int]
"""A state as the table stores it: (lead id, LeadState bytes, partition)."""

MAX_DIRTY = 20_000
"""Leads waiting to be stored before they are stored without waiting for a commit."""


def encode_states(states: Iterable[tuple[LeadState, int]]) -> list[Encoded]:
    return [(state.lead_id.encode(), state.to_bytes(), partition) for state, partition in states]


class EncodedStore(Protocol):
    async def save_encoded(self, records: list[Encoded]) -> None:
        """Store states already encoded (to the changelog by the next flush)."""
        ...


class WriteBack:
    """The states changed since they were last stored, by lead."""

    __slots__ = ("cache", "dirty", "max_dirty", "table")

    def __init__(self, table: EncodedStore, cache: StateCache, max_dirty: int = MAX_DIRTY) -> None:
        self.table = table
        self.cache = cache
        self.max_dirty = max_dirty
        self.dirty: dict[tuple[str, int], tuple[LeadState, int]] = {}
        """By (lead id, partition): a lead id keyed to two partitions (a producer whose
        key is not the subject, a changed partition count) has a state in each."""

    def __len__(self) -> int:
        return len(self.dirty)

    @property
    def full(self) -> bool:
        return len(self.dirty) >= self.max_dirty

    def get(self, lead_id: str, partition: int) -> LeadState | None:
        """The lead's live state, if it changed since it was last stored (in `partition`)."""
        kept = self.dirty.get((lead_id, partition))
        return kept[0] if kept is not None else None

    def mark(self, touched: dict[tuple[str, int], tuple[LeadState, int]]) -> None:
        """These states changed: store them by the next commit."""
        self.dirty.update(touched)

    async def store(self) -> int:
        """Encode and write every dirty state; returns how many. The caller holds the
        scorer's lock, no batch is in flight and nothing failed (see above)."""
        dirty = self.dirty
        if not dirty:
            return 0
        self.dirty = {}  # (if the write fails, the scorer refuses everything after it)
        states = dirty.values()
        await self.table.save_encoded(encode_states(states))
        self.cache.put_all(states, self.cache.epoch)
        return len(dirty)

    def drop(self) -> None:
        """Forget every dirty state: after a failure, they cannot be stored."""
        self.dirty = {}
