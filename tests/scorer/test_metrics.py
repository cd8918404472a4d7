"""The scorer's metrics: the lag histogram, observed once per batch, holds what one
`observe` per event would have."""

import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from services.scorer.memory import MemorySink, MemoryTable
from services.scorer.metrics import BatchTally, ScorerMetrics, observe_all
from services.scorer.processor import BatchScorer
from services.scorer.rules import load_rules
from tests.scorer.test_state_cache import RECORDS

BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400)
lags = st.floats(min_value=0, max_value=1e6, allow_nan=False) | st.sampled_from(BUCKETS)


def samples(histogram: Histogram) -> dict[str, float]:
    return {
        f"{sample.name}{sample.labels}": sample.value
        for metric in histogram.collect()
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }


@given(batches=st.lists(st.lists(lags, max_size=50), max_size=5))
def test_observe_all_counts_as_observe_does(batches: list[list[float]]) -> None:
    one_by_one = Histogram("lag", "", buckets=BUCKETS, registry=CollectorRegistry())
    batched = Histogram("lag", "", buckets=BUCKETS, registry=CollectorRegistry())
    for values in batches:
        for value in values:
            one_by_one.observe(value)
        observe_all(batched, values)
    expected, got = samples(one_by_one), samples(batched)
    assert expected.keys() == got.keys()
    for name, value in expected.items():
        if name.startswith("lag_sum"):  # summed in another order
            assert math.isclose(got[name], value, rel_tol=1e-9, abs_tol=1e-9)
        else:
            assert got[name] == value  # bucket counts and count: exactly


def test_a_batch_observes_the_lag_of_each_event_scored_from_its_time_to_now() -> None:
    metrics = ScorerMetrics()
    tally = BatchTally()
    tally.event_times.extend([100.0, 99.97, 40.0, 130.0])  # the last: ahead of the clock
    tally.count(metrics, now=100.0)
    text = generate_latest(metrics.registry).decode()
    assert 'hotlead_scorer_event_lag_seconds_bucket{le="0.01"} 2.0' in text  # 0 and 0 (ahead)
    assert 'hotlead_scorer_event_lag_seconds_bucket{le="0.05"} 3.0' in text  # 0.03
    assert 'hotlead_scorer_event_lag_seconds_bucket{le="60.0"} 4.0' in text  # 60
    assert "hotlead_scorer_event_lag_seconds_count 4.0" in text


async def test_the_scorer_observes_one_lag_per_scored_event() -> None:
    metrics = ScorerMetrics()
    scorer = BatchScorer(load_rules(), MemoryTable(), MemorySink(), metrics, clock=lambda: 0.0)
    await scorer.score_batch(RECORDS)
    scored = sum(
        sample.value
        for metric in metrics.events.collect()
        for sample in metric.samples
        if sample.name == "hotlead_scorer_events_total"
        and sample.labels["outcome"] in ("scored", "no_rule")
    )
    lag_count = metrics.registry.get_sample_value("hotlead_scorer_event_lag_seconds_count")
    assert scored > 0
    assert lag_count == scored


async def test_transitions_and_handoffs_are_counted_once_per_output_over_many_batches() -> None:
    metrics = ScorerMetrics()
    sink = MemorySink()
    scorer = BatchScorer(load_rules(), MemoryTable(), sink, metrics, clock=lambda: 0.0)
    for start in range(0, len(RECORDS), 7):  # many small batches: the cached children
        await scorer.score_batch(RECORDS[start : start + 7])
    kinds = [type(output.model()).__name__ for output in sink.emitted]
    counted = {
        name: sum(
            sample.value
            for metric in metrics.registry.collect()
            for sample in metric.samples
            if sample.name == name
        )
        for name in ("hotlead_scorer_segment_transitions_total", "hotlead_scorer_handoffs_total")
    }
    assert kinds.count("HandoffRequested") > 0
    assert counted["hotlead_scorer_handoffs_total"] == kinds.count("HandoffRequested")
    assert counted["hotlead_scorer_segment_transitions_total"] == kinds.count("SegmentChanged")
