"""Garbage-collector settings for long-running hotlead processes (ingest, scorer).

Each holds many long-lived objects (the app, rules, pydantic schemas, aiokafka)
and makes many short-lived containers per event: the scorer's decoded events
and lead states, the ingest's parsed items, records and answers. With
CPython's default thresholds the cyclic collector runs every 700 net
allocations and keeps rescanning the long-lived heap: profiling showed the
scorer's `orjson.loads` of a 1.7 KB state taking ~200 us instead of ~20 us,
and the ingest spending 4-5 us per event in collections. None of these
short-lived objects form reference cycles, so reference counting frees them;
the cyclic collector only needs to run rarely.
"""

import gc

GEN0_THRESHOLD = 50_000
"""Net container allocations between young collections (CPython's default: 700)."""


def tune_gc() -> None:
    """Move everything alive now (imports, app, rules) out of the collector's
    sight and collect young objects less often. Call once, after start-up."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
