"""The batch in flight: outputs sent, their acks not yet in (`BatchScorer(overlap=True)`).

A batch sends its outputs and leaves them in flight while the next batch is
scored (the agent acks the batch's records meanwhile: no commit covers them
before they are completed, see below). The batch in flight is completed (its
acks awaited, then its outputs counted and logged) by whichever comes first:
the next batch once it has sent its outputs (`hand_over`), the scorer's
`drain` (before every offset commit, rebalance and sweep, and before any
state is stored: `write_back.py`), or a task that waits for its acks outside
the scorer's lock (`complete_when_acked`) when no next batch comes, so the
metrics do not wait for the next commit. If completing fails, `on_failure`
gets the error: the scorer forgets every state not stored and refuses every
later batch, store and drain, so the worker restarts from the last commit,
which never covers a batch in flight.

The batch's states are not kept here: the scorer marks them dirty when the
batch is scored (`WriteBack`), and stores them only once no batch is in flight.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.common.logging import get_logger
from services.scorer.outputs import Output

log = get_logger(__name__)


@dataclass(slots=True)
class InFlightBatch:
    """A batch whose outputs were sent but not yet acknowledged."""

    acks: Awaitable[object]
    outputs: list[Output]


class InFlight:
    """At most one batch in flight, and its completion.

    `lock` is the scorer's: completing runs under it (callers of `hand_over` and
    `complete` hold it). `on_completed` gets a completed batch's outputs (metrics,
    log lines); `on_failure` gets the error when completing fails (the scorer
    forgets what it did not store and refuses everything after it)."""

    def __init__(
        self,
        lock: asyncio.Lock,
        on_completed: Callable[[list[Output]], None],
        on_failure: Callable[[BaseException], None],
    ) -> None:
        self.lock = lock
        self.on_completed = on_completed
        self.on_failure = on_failure
        self.batch: InFlightBatch | None = None
        self._completers: set[asyncio.Task[None]] = set()

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
        except BaseException as exc:
            self.on_failure(exc)
            raise
        self.batch = None

    async def _complete(self, batch: InFlightBatch) -> None:
        await batch.acks
        self.on_completed(batch.outputs)

    def complete_when_acked(self, batch: InFlightBatch) -> None:
        """Complete `batch` as soon as its acks are in, unless the next batch did it
        first: when no more records come, the metrics do not wait for the next
        commit, and a failed ack stops the scorer at once. (Waiting for the acks
        outside the lock leaves the overlap alone.)"""

        async def complete() -> None:
            with contextlib.suppress(Exception):  # raised again where it completes, below
                await batch.acks
            async with self.lock:
                if self.batch is not batch:
                    return  # completed with the next batch, or dropped after a failure
                try:
                    await self.complete()
                except Exception as exc:  # noqa: BLE001 - on_failure stops everything after
                    log.error("batch_completion_failed", error=repr(exc))

        task = asyncio.get_running_loop().create_task(complete())
        self._completers.add(task)
        task.add_done_callback(self._completers.discard)
