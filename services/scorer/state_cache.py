"""Decoded lead states kept in memory between batches.

Reading a state from the table costs a store read and a JSON decode (~25 us on
the development machine, ~15 % of the worker's CPU); an event log interleaves
leads, so most batches read most of their states again. `StateCache` keeps the
most recently stored ones, as the objects the core works on (which also keeps
the core's per-state fit cache warm).

It is only ever as new as the table: a state goes in once it is stored
(`put_all`, from `WriteBack.store`; until then the state lives in the
scorer's dirty set, whatever this cache drops). Whatever may have made a
kept state stale empties the cache instead: a failure (the core changes
states in place, and a failed batch's changes were not stored), and every
partition revoked or assigned in a rebalance (the table of an assigned
partition is recovered from its changelog, which another worker may have
written meanwhile; the scorer stores everything first, under its lock, so
no batch straddles the drop). Every drop bumps `epoch`, and a `put_all`
begun in an earlier epoch keeps nothing.
"""

from collections import OrderedDict
from collections.abc import Iterable

from services.scorer.state import LeadState


class StateCache:
    """At most `capacity` lead states (least recently stored dropped first); 0: none."""

    __slots__ = ("_states", "capacity", "epoch")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._states: OrderedDict[str, tuple[LeadState, int]] = OrderedDict()
        self.epoch = 0
        """Bumped by every drop: a batch that began in another epoch keeps nothing."""

    def __len__(self) -> int:
        return len(self._states)

    def get(self, lead_id: str, partition: int) -> LeadState | None:
        """The kept state of a lead stored in `partition`, or None.

        A read does not make a state recent: the batch that read it puts it back
        (`put_all`) once stored, which does (a bot event's lead stays where it was)."""
        kept = self._states.get(lead_id)
        if kept is None or kept[1] != partition:
            return None
        return kept[0]

    def put_all(self, states: Iterable[tuple[LeadState, int]], epoch: int) -> None:
        """Keep states just stored by a batch that began in `epoch` (if still current)."""
        if epoch != self.epoch or not self.capacity:
            return
        kept = self._states
        for state, partition in states:
            kept[state.lead_id] = (state, partition)
            kept.move_to_end(state.lead_id)
        while len(kept) > self.capacity:
            kept.popitem(last=False)

    def drop_partitions(self, partitions: Iterable[int]) -> int:
        """Forget the states of these partitions; returns how many were dropped."""
        self.epoch += 1
        gone = set(partitions)
        if not gone:
            return 0
        stale = [lead for lead, (_, partition) in self._states.items() if partition in gone]
        for lead in stale:
            del self._states[lead]
        return len(stale)

    def clear(self) -> None:
        """Forget every state (after a failure: kept states may have been changed)."""
        self.epoch += 1
        self._states.clear()
