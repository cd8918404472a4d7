"""Durable state of the service: assignment state and per-hand-off progress.

Both live in compacted Kafka topics (hotlead.assignments.v1 and
hotlead.handoff-progress.v1), one record per key, read back in full at
start. The books below keep the current values in memory and write every
change through a `KeyedStore` before the caller moves on, so what a restart
reads is never behind what the outside world has seen from us (except the
Slack window documented in docs/handoff.md).
"""

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from schemas.data import CrmStatus, LeadAttributes
from services.handoff.assignment import (
    Assignment,
    AssignmentState,
    LeadOwner,
    RepState,
    StateChange,
    apply_crm_status,
    assign,
)
from services.handoff.assignment_config import AssignmentConfig
from services.handoff.progress import HandoffProgress

Record = tuple[str, bytes | None]


Durable = Awaitable[None]
"""Completes once a write is durable."""


async def all_durable(queued: Iterable[Durable]) -> None:
    """Await every queued write, in order (no task each, unlike gather); the first
    failure is raised once all of them have settled."""
    failure: BaseException | None = None
    for durable in queued:
        try:
            await durable
        except Exception as exc:  # noqa: BLE001 (re-raised below, after the others)
            failure = failure or exc
    if failure is not None:
        raise failure


class KeyedStore(Protocol):
    async def put(self, topic: str, key: str, value: bytes | None) -> None:
        """Write `value` under `key` (None: delete) and return once it is durable."""
        ...

    async def enqueue(self, topic: str, key: str, value: bytes | None) -> Durable:
        """Queue a write (writes to one key keep their order) and return what to await
        for its durability: callers can order writes under a lock without holding the
        lock while the cluster acknowledges them."""
        ...


@dataclass
class MemoryKeyedStore:
    records: dict[str, dict[str, bytes | None]] = field(default_factory=dict)
    writes: int = 0

    async def put(self, topic: str, key: str, value: bytes | None) -> None:
        self.writes += 1
        self.records.setdefault(topic, {})[key] = value

    async def enqueue(self, topic: str, key: str, value: bytes | None) -> Durable:
        await self.put(topic, key, value)
        return asyncio.sleep(0)

    def read(self, topic: str) -> list[Record]:
        return list(self.records.get(topic, {}).items())


# --- assignment state <-> records ------------------------------------------------------


def assignment_records(state: AssignmentState, change: StateChange) -> list[tuple[str, bytes]]:
    records = []
    for rep_id in change.reps:
        rep = state.rep(rep_id)
        value = {"last_assigned": rep.last_assigned, "open_leads": rep.open_leads}
        records.append((f"rep:{rep_id}", orjson.dumps(value)))
    for lead_id in change.owners:
        owner = state.owners[lead_id]
        value2 = {
            "rep_id": owner.rep_id,
            "team_id": owner.team_id,
            "recycled": owner.recycled,
            "open": owner.open,
        }
        records.append((f"owner:{lead_id}", orjson.dumps(value2)))
    return records


def restore_assignments(records: Iterable[Record]) -> AssignmentState:
    """The state from the topic's records in offset order (the last value of a key wins)."""
    reps: dict[str, RepState] = {}
    owners: dict[str, LeadOwner] = {}
    for key, value in records:
        kind, _, ident = key.partition(":")
        if value is None:
            (reps if kind == "rep" else owners).pop(ident, None)
            continue
        data = orjson.loads(value)
        if kind == "rep":
            reps[ident] = RepState(int(data["last_assigned"]), int(data["open_leads"]))
        elif kind == "owner":
            owners[ident] = LeadOwner(
                data["rep_id"], data["team_id"], bool(data["recycled"]), bool(data["open"])
            )
    return AssignmentState(reps, owners)


class AssignmentBook:
    """The assignment state, changed one lead at a time and written through."""

    def __init__(
        self, config: AssignmentConfig, state: AssignmentState, store: KeyedStore, topic: str
    ) -> None:
        self.config = config
        self.state = state
        self._store = store
        self._topic = topic
        self._lock = asyncio.Lock()

    async def _persist(self, state: AssignmentState, change: StateChange) -> list[Durable]:
        """Queue the changed records in order (called under the lock)."""
        queued = [
            await self._store.enqueue(self._topic, key, value)
            for key, value in assignment_records(state, change)
        ]
        self.state = state
        return queued

    async def assign(self, lead_id: str, lead: LeadAttributes) -> Assignment:
        # Decide and queue under the lock (the round robin is one sequence), then wait
        # for the cluster outside it, so assignments of different leads overlap.
        async with self._lock:
            decision, state, change = assign(self.config, self.state, lead_id, lead)
            queued = await self._persist(state, change)
        await all_durable(queued)
        return decision

    async def crm_status(self, lead_id: str, status: CrmStatus) -> None:
        async with self._lock:
            state, change = apply_crm_status(self.state, lead_id, status)
            queued = await self._persist(state, change)
        await all_durable(queued)


class ProgressBook:
    """Progress per hand-off id, written through to the compacted progress topic."""

    def __init__(self, store: KeyedStore, topic: str, records: Iterable[Record] = ()) -> None:
        self._store = store
        self._topic = topic
        self.by_id: dict[str, HandoffProgress] = {}
        self._latest_by_lead: dict[str, str] = {}
        for key, value in records:
            if value is None:
                self.by_id.pop(key, None)
            else:
                self._remember(HandoffProgress.model_validate_json(value))

    def _remember(self, progress: HandoffProgress) -> None:
        self.by_id[progress.handoff_id] = progress
        self._latest_by_lead[progress.lead_id] = progress.handoff_id

    def get(self, handoff_id: str) -> HandoffProgress | None:
        return self.by_id.get(handoff_id)

    def latest_for_lead(self, lead_id: str) -> HandoffProgress | None:
        handoff_id = self._latest_by_lead.get(lead_id)
        return self.by_id.get(handoff_id) if handoff_id else None

    async def forget(self, handoff_id: str) -> None:
        """Delete the record (a tombstone in the compacted topic)."""
        await self._store.put(self._topic, handoff_id, None)
        progress = self.by_id.pop(handoff_id, None)
        if progress is not None and self._latest_by_lead.get(progress.lead_id) == handoff_id:
            del self._latest_by_lead[progress.lead_id]

    def note(self, progress: HandoffProgress) -> HandoffProgress:
        """Keep `progress` in memory only; the next `save` makes it durable. For steps
        whose own effect is already durable and that are safe to run again after a
        restart (the assignment: a lead with an open owner keeps it)."""
        self._remember(progress)
        return progress

    async def save(self, progress: HandoffProgress) -> HandoffProgress:
        await self._store.put(self._topic, progress.handoff_id, progress.model_dump_json().encode())
        self._remember(progress)
        return progress
