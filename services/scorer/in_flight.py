"""The batch in flight: outputs sent, their acks not yet in (`BatchScorer(overlap=True)`).

A batch sends its outputs and leaves them in flight, with its states encoded as
they are then (the next batch changes the same objects in place), while the
next batch is scored; the next batch reads its leads' states from the one in
flight. The batch in flight is completed (its acks awaited, then its encoded
states stored, then its states kept in the cache) by whichever comes first:
the next batch once it has sent its outputs (`hand_over`), the scorer's
`drain` (before every offset commit, rebalance and sweep), or a task that
waits for its acks outside the scorer's lock (`complete_when_acked`) when no
next batch comes. If that task fails, every later batch and drain raises
(`raise_failure`): the worker restarts from the last commit, which never
covers a batch in flight.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from services.common.logging import get_logger
from services.scorer.outputs import Output
from services.scorer.state import LeadState
from services.scorer.state_cache import StateCache

log = get_logger(__name__)

Encoded = tuple[bytes, bytes, int]
"""A state as the table stores it: (lead id, LeadState bytes, partition)."""


def encode_states(states: Iterable[tuple[LeadState, int]]) -> list[Encoded]:
    return [(state.lead_id.encode(), state.to_bytes(), partition) for state, partition in states]


class EncodedStore(Protocol):
    async def save_encoded(self, records: list[Encoded]) -> None:
        """Store states already encoded; return once they are durable."""
        ...


@dataclass(slots=True)
class InFlightBatch:
    """A batch whose outputs were sent but not yet acknowledged."""

    acks: Awaitable[object]
    outputs: list[Output]
    touched: dict[str, tuple[LeadState, int]]
    encoded: list[Encoded]
    """Its states as they were after it: the next batch changes the objects in place."""
    epoch: int
    """The cache epoch when the batch began: a drop since then keeps nothing."""


class InFlight:
    """At most one batch in flight, and its completion.

    `lock` is the scorer's: completing runs under it (callers of `hand_over` and
    `complete` hold it). `on_completed` gets a completed batch's outputs (metrics,
    log lines); `on_failure` runs when completing fails (the scorer forgets
    the batch in flight and the states it kept)."""

    def __init__(
        self,
        table: EncodedStore,
        cache: StateCache,
        lock: asyncio.Lock,
        on_completed: Callable[[list[Output]], None],
        on_failure: Callable[[], None],
    ) -> None:
        self.table = table
        self.cache = cache
        self.lock = lock
        self.on_completed = on_completed
        self.on_failure = on_failure
        self.batch: InFlightBatch | None = None
        self._completers: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None
        """Set when a batch failed to complete in the background: every later batch and
        drain raises it (the worker restarts from the last commit)."""

    def state(self, lead_id: str, partition: int) -> LeadState | None:
        """The lead's state as the batch in flight left it (if it holds the lead there)."""
        batch = self.batch
        if batch is None:
            return None
        kept = batch.touched.get(lead_id)
        if kept is None or kept[1] != partition:
            return None
        return kept[0]

    def raise_failure(self) -> None:
        if self._error is not None:
            raise RuntimeError(
                "a batch in flight failed to complete: restart from the last commit"
            ) from self._error

    async def hand_over(self, batch: InFlightBatch) -> None:
        """`batch` is now in flight: complete the one before it (lock held)."""
        previous = self.batch
        self.batch = batch
        if previous is not None:
            await self._complete(previous)
        self.complete_when_acked(batch)

    async def complete(self) -> None:
        """Complete the batch in flight, if any (lock held)."""
        batch = self.batch
        if batch is None:
            return
        try:
            await self._complete(batch)
        except BaseException:
            self.on_failure()
            raise
        self.batch = None

    async def _complete(self, batch: InFlightBatch) -> None:
        await batch.acks
        self.on_completed(batch.outputs)
        await self.table.save_encoded(batch.encoded)
        self.cache.put_all(batch.touched.values(), batch.epoch)

    def complete_when_acked(self, batch: InFlightBatch) -> None:
        """Complete `batch` as soon as its acks are in, unless the next batch did it
        first: when no more records come, the table and metrics do not wait for the
        next commit. (Waiting for the acks outside the lock leaves the overlap alone.)"""

        async def complete() -> None:
            with contextlib.suppress(Exception):  # raised again where it completes, below
                await batch.acks
            async with self.lock:
                if self.batch is not batch:
                    return  # completed with the next batch, or dropped after a failure
                try:
                    await self.complete()
                except Exception as exc:  # noqa: BLE001 - any failure stops later commits
                    log.error("batch_completion_failed", error=repr(exc))
                    self._error = exc

        task = asyncio.get_running_loop().create_task(complete())
        self._completers.add(task)
        task.add_done_callback(self._completers.discard)
