"""BatchScorer with the in-memory table and sink: batches, redelivery, sweep.
(`drain` stands for the worker's commit: states are stored there.)"""

from datetime import timedelta

from schemas.codec import encode_event
from schemas.event_types import EventType
from services.scorer.memory import MemorySink, MemoryTable
from services.scorer.metrics import ScorerMetrics
from services.scorer.processor import BatchScorer, Record
from services.scorer.rules import load_rules
from services.scorer.state_cache import StateCache
from tests.scorer.events import T0, make_event

RULES = load_rules()


def records(events: list, start: int = 0) -> list[Record]:  # type: ignore[type-arg]
    return [Record(e.subject.encode(), encode_event(e), 0, start + i) for i, e in enumerate(events)]


def qualifying(lead: str = "lead-1") -> list:  # type: ignore[type-arg]
    return [
        make_event(
            "u1",
            "lead.updated",
            {"attributes": {"job_title": "取締役", "industry": "software", "company_size": 2000}},
            lead=lead,
        ),
        make_event(
            "f1",
            "form.submitted",
            {"form_id": "demo", "form_type": "demo_request"},
            lead=lead,
            hours=1,
        ),
    ]


def value(metrics: ScorerMetrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


async def test_a_batch_emits_then_stores_and_a_redelivery_changes_nothing() -> None:
    table, sink, metrics = MemoryTable(), MemorySink(), ScorerMetrics()
    scorer = BatchScorer(RULES, table, sink, metrics, clock=lambda: T0.timestamp() + 7200)
    batch = records(qualifying())
    await scorer.score_batch(batch)
    assert table.states == {}  # stored at the commit
    await scorer.drain()
    assert [e.type for e in sink.emitted] == [
        EventType.SEGMENT_CHANGED,
        EventType.SEGMENT_CHANGED,
        EventType.HANDOFF_REQUESTED,
    ]
    stored = table.states["lead-1"][0]
    await scorer.score_batch(batch)  # redelivered after a crash
    await scorer.drain()
    assert len(sink.emitted) == 3
    assert table.states["lead-1"][0] == stored
    assert value(metrics, "hotlead_scorer_duplicates_skipped_total") == 2
    assert value(metrics, "hotlead_scorer_handoffs_total", reason="threshold") == 1
    assert value(metrics, "hotlead_scorer_leads") == 1
    # the form fill counts in the funnel of the segment the lead was in before it
    funnel = "hotlead_scorer_funnel_events_total"
    assert value(metrics, funnel, type="form.submitted", segment="mid") == 1
    assert value(metrics, funnel, type="form.submitted", segment="high") == 0


async def test_invalid_records_are_counted_and_skipped() -> None:
    table, sink, metrics = MemoryTable(), MemorySink(), ScorerMetrics()
    scorer = BatchScorer(RULES, table, sink, metrics)
    await scorer.score_batch([Record(b"x", b"{not json", 0, 0), *records(qualifying(), start=1)])
    await scorer.drain()
    assert value(metrics, "hotlead_scorer_events_total", type="unknown", outcome="invalid") == 1
    assert "lead-1" in table.states


async def test_states_are_found_in_the_batch_then_unstored_then_the_cache() -> None:
    table, sink, metrics = MemoryTable(), MemorySink(), ScorerMetrics()
    scorer = BatchScorer(RULES, table, sink, metrics, cache=StateCache(100))
    await scorer.score_batch(records(qualifying("lead-k")))
    # one new lead (a miss), then the batch's own state: neither a hit nor a miss
    assert value(metrics, "hotlead_scorer_leads") == 1
    assert value(metrics, "hotlead_scorer_state_cache_misses_total") == 1
    assert value(metrics, "hotlead_scorer_state_cache_hits_total") == 0
    opened = make_event("o1", "email.opened", {"email_id": "m1"}, lead="lead-k", hours=2)
    await scorer.score_batch(records([opened], start=2))  # changed, not stored yet
    assert value(metrics, "hotlead_scorer_state_cache_hits_total") == 1
    await scorer.drain()
    again = opened.model_copy(update={"id": "o2"})
    await scorer.score_batch(records([again], start=3))  # stored: from the state cache
    assert value(metrics, "hotlead_scorer_state_cache_hits_total") == 2
    assert value(metrics, "hotlead_scorer_state_cache_misses_total") == 1
    await scorer.drain()
    assert table.load("lead-k").events_applied == 4  # type: ignore[union-attr]
    assert value(metrics, "hotlead_scorer_leads") == 1
    events = "hotlead_scorer_events_total"
    opens = [value(metrics, events, type="email.opened", outcome=o) for o in ("scored", "no_rule")]
    assert opens == [1, 1]  # the same email opened twice: points once


async def test_sweep_emits_cooling_segment_changes_once() -> None:
    table, sink, metrics = MemoryTable(), MemorySink(), ScorerMetrics()
    scorer = BatchScorer(RULES, table, sink, metrics)
    events = [
        *qualifying("lead-a"),
        make_event(
            "d1",
            "asset.downloaded",
            {"asset_id": "wp", "asset_type": "ebook"},
            lead="lead-a",
            hours=2,
        ),
    ]
    await scorer.score_batch(records(events))
    await scorer.drain()
    assert table.load("lead-a").segment == "high"  # type: ignore[union-attr]
    before = len(sink.emitted)
    assert await scorer.sweep(T0 + timedelta(days=1)) == 0
    assert await scorer.sweep(T0 + timedelta(days=90)) == 1
    change = sink.emitted[before]
    assert change.type == EventType.SEGMENT_CHANGED
    assert change.model().data.cause_event_id is None  # type: ignore[attr-defined]
    assert table.load("lead-a").segment == change.model().data.segment.value  # type: ignore[attr-defined,union-attr]
    assert await scorer.sweep(T0 + timedelta(days=91)) == 0
    assert (
        value(
            metrics,
            "hotlead_scorer_segment_transitions_total",
            previous="high",
            segment=change.model().data.segment.value,
            cause="sweep",
        )  # type: ignore[attr-defined]
        == 1
    )
