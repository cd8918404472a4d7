"""Lead state costs, no broker: `LeadState.to_bytes` / `from_bytes` per state on the
bench corpus's states, and the scorer's batch work (BatchScorer, in-memory table
and sink, state cache, a store every ~1 s of events) with the cyclic collector's
time by generation (gc.callbacks). Prints only; CPU time (`time.process_time`),
best of several passes, so a busy machine inflates it less than wall time.

Run: .venv/bin/python -m benchmarks.bench_state [--leads N] [--events-per-lead M]
Compare two checkouts by running each (PYTHONPATH=<checkout>) in turn.
"""

import argparse
import asyncio
import gc
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.bench_scorer import score_corpus
from schemas.codec import encode_event, encode_key
from services.common.gc_tuning import tune_gc
from services.common.logging import configure_logging
from services.scorer.memory import MemoryTable
from services.scorer.metrics import ScorerMetrics
from services.scorer.outputs import Output
from services.scorer.processor import BatchScorer, Record
from services.scorer.rules import load_rules
from services.scorer.state import LeadState
from services.scorer.state_cache import StateCache
from tests.scorer.corpus import build_corpus

PARTITIONS = 3
BATCH = 1_500
"""Records per batch: what one fetch of the worker brings (3 partitions x 500)."""
STORE_EVERY = 10
"""Batches between two stores (the worker stores at each commit, once a second)."""


def best_us(run: Callable[[], object], per: int, passes: int = 7) -> float:
    best = float("inf")
    for _ in range(passes):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best / per * 1e6


def bench_encoding(corpus: list[Any]) -> None:
    rules = load_rules()
    states = score_corpus(corpus, rules)
    raws = [state.to_bytes() for state in states.values()]
    kept = list(states.values())
    n = len(raws)
    entry = (2e9, "later", 70.28456442539473, 45.0, "high")
    collecting = gc.isenabled()
    gc.disable()
    try:
        load = best_us(lambda: [LeadState.from_bytes(raw) for raw in raws], n)
        store = best_us(lambda: [state.to_bytes() for state in kept], n)
        with_entry = float("inf")
        for _ in range(7):  # as at a commit: a state with an entry recorded since its last store
            fresh = [LeadState.from_bytes(raw) for raw in raws]
            for state in fresh:
                state.record(entry, rules.history)
            started = time.process_time()
            for state in fresh:
                state.to_bytes()
            with_entry = min(with_entry, (time.process_time() - started) / n * 1e6)
    finally:
        if collecting:
            gc.enable()
    size = sum(map(len, raws)) / n
    print(f"{n:,} states, {size:,.0f} bytes each on average")
    print(f"from_bytes: {load:.2f} us per state")
    print(f"to_bytes: {store:.2f} us per state; with one entry recorded since: {with_entry:.2f} us")


class DroppingSink:
    """Outputs acknowledged at once and not kept (the worker keeps none)."""

    async def emit(self, outputs: list[Output]) -> None:
        return None

    async def send(self, outputs: list[Output]) -> Awaitable[object]:
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def bench_batches(corpus: list[Any]) -> None:
    records = [
        Record(key, encode_event(event), zlib.crc32(key) % PARTITIONS, offset)
        for offset, event in enumerate(corpus)
        for key in (encode_key(event),)
    ]
    scorer = BatchScorer(
        load_rules(),
        MemoryTable(),
        DroppingSink(),
        ScorerMetrics(),
        cache=StateCache(20_000),
        overlap=True,
    )
    tune_gc()  # as the worker, after start-up
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    began = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.process_time()
        else:
            pauses[info["generation"]].append(time.process_time() - began[0])

    gc.callbacks.append(on_gc)
    stores = 0.0
    started = time.process_time()
    try:
        for n, first in enumerate(range(0, len(records), BATCH), 1):
            await scorer.score_batch(records[first : first + BATCH])
            if n % STORE_EVERY == 0:
                at = time.process_time()
                await scorer.drain()
                stores += time.process_time() - at
        at = time.process_time()
        await scorer.drain()
        stores += time.process_time() - at
    finally:
        gc.callbacks.remove(on_gc)
    cpu = time.process_time() - started
    count = len(records)
    collector = sum(sum(p) for p in pauses.values())
    print(
        f"batches: {cpu / count * 1e6:.1f} us of CPU per event; stores (to_bytes, cache) "
        f"{stores / count * 1e6:.1f} us ({stores / cpu:.0%}); cyclic GC "
        f"{collector / count * 1e6:.2f} us ({collector / cpu:.1%})"
    )
    for generation, times in pauses.items():
        if times:
            print(
                f"  generation {generation}: {len(times)} collections, "
                f"{sum(times) * 1e3:.0f} ms in all, longest {max(times) * 1e3:.0f} ms"
            )
    print(f"  containers tracked at the end: {len(gc.get_objects()):,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--events-per-lead", type=int, default=10)
    args = parser.parse_args()
    configure_logging("WARNING")
    corpus = build_corpus(args.leads, args.events_per_lead)
    bench_encoding(corpus)
    asyncio.run(bench_batches(corpus))


if __name__ == "__main__":
    main()
