"""Garbage-collector settings for long-running hotlead processes (ingest, scorer).

Each holds many long-lived objects (the app, rules, pydantic schemas, aiokafka)
and makes many short-lived containers per event: the scorer's decoded events,
outputs and per-batch bookkeeping, the ingest's parsed items, records and
answers. None of these form reference cycles, so reference counting frees
them; the cyclic collector only needs to run rarely.

CPython runs a young (generation 0) collection whenever the container objects
allocated since the last one, minus those freed, pass its threshold (700 by
default); each scans every young container still alive, and every tenth a
generation-1 collection scans the survivors of the last ten again. With the
default, profiling showed the scorer's `orjson.loads` of a 1.7 KB state taking
~200 us instead of ~20 us. The net count only grows while the heap grows: a
worker starting on many new leads (the benchmark: 20,000 leads, each a few
dozen lists) collects most; once the state cache is full it stays flat and
collections are rare.

Measured on the scorer's work without Kafka (BatchScorer over the bench corpus,
205,000 events, 20,000 new leads, a store every 15,000 events; busy 2-core
machine, Nov 24 2026): with 50,000, 17 young collections (~30 ms each, 60-100k
objects scanned each: mostly per-batch tuples that a later store frees) and one
generation-1 collection (~160-210 ms) took 2.9-3.5 us per event, 8-9 % of the
CPU; with 200,000, 3 young collections (~70-110 ms each) and no generation-1
one took 1.0-1.1 us per event (3 %); with collection disabled, 0.

Cyclic garbage still goes: every young collection finds the cycles among the
young objects (tests/common/test_gc_tuning.py makes cycles after `tune_gc`
and checks they are freed without an explicit collect and that the number alive
stays bounded). A cycle that becomes garbage while its objects are young waits
for at most GEN0_THRESHOLD net allocations; one whose objects survived a young
collection first (still referenced then) waits for the next generation-1
collection, every tenth young one (~2,000,000 net allocations), which then
scans every survivor since the last one. Both bounds count containers, not
bytes: a cycle holding a large buffer holds it that long. Only the objects alive at start-up are
frozen (moved out of the collector's sight for good): `gc.freeze()` once, after a
full collection, so nothing frozen is garbage then. Freezing again later (the
lead states, say) was considered and not done: an object frozen while alive that
later became part of a garbage cycle would never be freed, and bounding that
needs a periodic unfreeze + full collection, the very scan freezing saves.
"""

import gc

GEN0_THRESHOLD = 200_000
"""Net container allocations between young collections (CPython's default: 700)."""


def tune_gc(gen0_threshold: int = GEN0_THRESHOLD) -> None:
    """Move everything alive now (imports, app, rules) out of the collector's
    sight and collect young objects less often. Call once, after start-up."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)
