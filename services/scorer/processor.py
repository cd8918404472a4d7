"""Scoring batches of records: the I/O-free heart of the faust agent.

For each batch: decode, score every event with the pure core, emit the
outputs and wait until Kafka has them. The states the batch changed are
stored later, once per commit (`write_back.py`): `drain`, which the worker
runs before every offset commit and rebalance, stores every state changed
since the last store, once no batch is in flight. So the order is "outputs
acked, then states stored, then offsets committed", and whatever a crash
interrupts, the redelivered events either find their state already stored
(and change nothing, their outputs already written) or are scored again to
the same outputs under the same deterministic ids.

With `overlap=True` a batch does not wait for its own outputs' acks: it sends
them and leaves them in flight (`in_flight.py`) while the next batch is
scored; `drain` completes the batch in flight before it stores anything.

A failure (a batch that raises, outputs not acknowledged, a store that fails)
is final: the states not yet stored are forgotten (they may hold changes whose
outputs Kafka never acknowledged) and every later batch, drain and sweep
raises; the worker restarts from its last commit.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from services.common.logging import get_logger
from services.scorer.core import sweep
from services.scorer.in_flight import InFlight, InFlightBatch
from services.scorer.metrics import BatchTally, ScorerMetrics
from services.scorer.outputs import HandoffOutput, Output, SegmentOutput
from services.scorer.record_loop import ConsumedRecord, score_records
from services.scorer.rules import Rules
from services.scorer.state import LeadState
from services.scorer.state_cache import StateCache
from services.scorer.write_back import MAX_DIRTY, Encoded, WriteBack

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Record:
    """A record of the event log (tests, the bare benchmark loop); the worker hands
    aiokafka's records over as they are (a copy per record cost ~1 us)."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int


class LeadTable(Protocol):
    """Where lead states live: the faust table, or a dict in tests."""

    def load(self, lead_id: str, partition: int | None = None) -> LeadState | None:
        """The stored state of a lead; `partition`: where it is stored, when known."""
        ...

    async def save_encoded(self, records: list[Encoded]) -> None:
        """Store states already encoded (`encode_states`); the changelog may wait for
        `flush`."""
        ...

    async def flush(self) -> None:
        """Return once every state stored so far is durable (the changelog's acks)."""
        ...

    def leads(self) -> Iterable[tuple[LeadState, int]]:
        """Every lead this worker owns, with its partition."""
        ...


class OutputSink(Protocol):
    async def emit(self, outputs: list[Output]) -> None:
        """Write the outputs; return once Kafka has acknowledged every one."""
        ...

    async def send(self, outputs: list[Output]) -> Awaitable[object]:
        """Write the outputs; return what completes once Kafka has acknowledged them."""
        ...


Clock = Callable[[], float]


class BatchScorer:
    def __init__(
        self,
        rules: Rules,
        table: LeadTable,
        sink: OutputSink,
        metrics: ScorerMetrics,
        clock: Clock = time.time,
        cache: StateCache | None = None,
        overlap: bool = False,
        max_dirty: int = MAX_DIRTY,
    ) -> None:
        self.rules = rules
        self.table = table
        self.sink = sink
        self.metrics = metrics
        self.clock = clock
        self.cache = cache if cache is not None else StateCache(0)
        """States kept between batches once stored; dropped per partition at a rebalance."""
        self.write_back = WriteBack(table, self.cache, max_dirty)
        """States changed and not yet stored (stored by `drain`, once per commit)."""
        self.overlap = overlap
        """Score the next batch while this one's outputs wait for their acks (see above)."""
        self.lock = asyncio.Lock()
        """Held while a batch, a drain or a sweep chunk runs: they never interleave."""
        self.in_flight = InFlight(
            self.lock,
            on_completed=lambda outputs: self._count_outputs(outputs, cause="event"),
            on_failure=self._failed,
        )
        self.failure: BaseException | None = None
        """Set by the first failure: every later batch, drain and sweep raises."""

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise RuntimeError(
                f"scoring failed ({self.failure!r}): states not stored were dropped;"
                " restart from the last commit"
            ) from self.failure

    async def score_batch(self, records: Sequence[ConsumedRecord]) -> None:
        """Score a batch. Without `overlap`, return once its outputs are acknowledged;
        with it, once its outputs are sent and the batch before it completed. Its states
        are stored by a later `drain` (the commit)."""
        started = time.perf_counter()
        async with self.lock:
            self._raise_failure()
            touched: dict[tuple[str, int], tuple[LeadState, int]] = {}
            outputs: list[Output] = []
            tally = BatchTally()
            write_back = self.write_back
            try:
                score_records(
                    records,
                    self.rules,
                    touched,
                    write_back.dirty,
                    self.cache.get,
                    self.table.load,
                    tally,
                    outputs,
                )
                tally.count(self.metrics, self.clock())  # (the lag: event time to now)
                # dirty now, stored only once no batch is in flight (drain): a store
                # never sees a change whose outputs are not acknowledged
                write_back.mark(touched)
                if self.overlap:
                    acks = await self.sink.send(outputs)
                    await self.in_flight.hand_over(InFlightBatch(acks, outputs))
                else:
                    if outputs:
                        await self.sink.emit(outputs)
                    self._count_outputs(outputs, cause="event")
                if write_back.full:  # a memory bound: store without waiting for a commit
                    await self._store()
            except BaseException as exc:
                self._failed(exc)
                raise
            self.metrics.cache_states.set(len(self.cache))
            self.metrics.states_unstored.set(len(write_back))
        self.metrics.batch.observe(time.perf_counter() - started)

    def _failed(self, error: BaseException) -> None:
        # The core changes states in place: those not stored may hold changes whose
        # outputs were never acknowledged, so they and the cache are dropped, and
        # nothing is scored or stored again (the table behind them would make later
        # states skip events, see write_back.py): the worker restarts from its last
        # commit.
        if self.failure is None:
            self.failure = error
        self.in_flight.batch = None
        self.write_back.drop()
        self.cache.clear()

    async def drain(self) -> None:
        """Complete the batch in flight (outputs acknowledged), then store every state
        changed since the last store. Runs before every offset commit."""
        async with self.lock:
            self._raise_failure()
            await self._store()

    async def _store(self) -> None:
        # lock held
        try:
            await self.in_flight.complete()
            stored = await self.write_back.store()
        except BaseException as exc:
            self._failed(exc)
            raise
        if stored:
            self.metrics.states_stored.inc(stored)
            self.metrics.states_unstored.set(0)

    async def flush_table(self) -> None:
        """Wait until the table holds every state stored so far durably (the changelog's
        acks); if that fails, nothing is scored or stored again, as after any failure."""
        try:
            await self.table.flush()
        except BaseException as exc:
            self._failed(exc)
            raise

    async def drop_partitions(self, partitions: set[int]) -> int:
        """At a rebalance: store everything (outputs acknowledged first), wait until
        the table has it durably (the changelog another worker may recover these
        partitions from), then forget the states kept of these partitions. Under the
        lock throughout, so no batch straddles the drop. Returns the states dropped."""
        async with self.lock:
            self._raise_failure()
            await self._store()
            await self.flush_table()
            dropped = self.cache.drop_partitions(partitions)
        self.metrics.cache_states.set(len(self.cache))
        return dropped

    def current(self, lead_id: str, partition: int) -> LeadState | None:
        """The lead's latest state as scored (GET /leads): from memory, else the table.
        It may be ahead of the last commit (and of acknowledged outputs); read only."""
        return (
            self.write_back.get(lead_id, partition)
            or self.cache.get(lead_id, partition)
            or self.table.load(lead_id, partition)
        )

    def _count_outputs(self, outputs: list[Output], cause: str) -> None:
        # counted per batch: each labels() lookup and increment takes a lock
        transitions: Counter[tuple[str, str]] = Counter()
        reasons: Counter[str] = Counter()
        handoffs: list[dict[str, object]] = []
        for output in outputs:
            if isinstance(output, SegmentOutput):
                transitions[(output.previous or "none", output.segment)] += 1
            elif isinstance(output, HandoffOutput):
                reason = output.reason[1]
                reasons[reason] += 1
                handoffs.append(
                    {
                        "lead_id": output.subject,
                        "handoff_id": output.id,
                        "reason": reason,
                        "score": round(output.score.score, 2),
                    }
                )
        if handoffs:
            # one line per batch: a log line costs ~100 us (structlog through logging)
            log.info("handoffs_requested", count=len(handoffs), handoffs=handoffs)
        metrics = self.metrics
        for (previous, segment), n in transitions.items():
            metrics.count_transition(previous, segment, cause, n)
        for reason, n in reasons.items():
            metrics.count_handoff(reason, n)

    async def sweep(self, now: datetime | None = None, chunk: int = 500) -> int:
        """Decay every quiet lead to `now`; emit the segment changes and store the states
        that changed. Returns the count."""
        moment = now or datetime.fromtimestamp(self.clock(), UTC)
        await self.drain()  # the table then holds every state scored so far
        changed = 0
        leads = 0
        pending: list[tuple[LeadState, int]] = []
        for state, partition in self.table.leads():
            leads += 1
            pending.append((state, partition))
            if len(pending) >= chunk:
                changed += await self._sweep_chunk(pending, moment)
                pending = []
        if pending:
            changed += await self._sweep_chunk(pending, moment)
        await self.drain()  # no offsets to commit after a sweep: its states are stored now
        self.metrics.leads.set(leads)
        self.metrics.sweeps.inc()
        return changed

    async def _sweep_chunk(self, chunk: list[tuple[LeadState, int]], now: datetime) -> int:
        async with self.lock:
            self._raise_failure()
            cache = self.cache
            write_back = self.write_back
            outputs: list[Output] = []
            swept: dict[tuple[str, int], tuple[LeadState, int]] = {}
            try:
                await self.in_flight.complete()  # (a batch may have been scored since)
                for stale, partition in chunk:
                    # re-read under the lock: a batch may have moved the lead meanwhile
                    lead_id = stale.lead_id
                    state = (
                        write_back.get(lead_id, partition)
                        or cache.get(lead_id, partition)
                        or self.table.load(lead_id, partition)
                    )
                    if state is None:
                        continue
                    result = sweep(state, now, self.rules)
                    if result.outputs:
                        outputs.extend(result.outputs)
                        swept[(lead_id, partition)] = (result.state, partition)
                write_back.mark(swept)
                if outputs:
                    await self.sink.emit(outputs)
                    self._count_outputs(outputs, cause="sweep")
                    # stored now, not at the next commit: a sweep's outputs come from the
                    # clock, so replaying the log does not make them again; a crash before
                    # the store would forget the segment change the outputs announced, and
                    # a later change would reuse its id (seg-<lead>-<n>) for other content
                    await self._store()
            except BaseException as exc:
                self._failed(exc)  # sweep changes states in place: they cannot be stored
                raise
            return len(swept)
