"""The scorer's Prometheus metrics, in a registry of their own (one per app)."""

import math
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas.data import Segment
from services.scorer.core import Outcome

FUNNEL_TYPES = frozenset({"email.delivered", "email.opened", "email.clicked", "form.submitted"})
"""The events the funnel KPIs count per segment."""
DUPLICATE = Outcome.DUPLICATE.value


@dataclass
class ScorerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter(
            "hotlead_scorer_events_total",
            "Events read, by type and outcome (scored, no_rule, duplicate, bot, invalid).",
            ["type", "outcome"],
            registry=r,
        )
        self.duplicates = Counter(
            "hotlead_scorer_duplicates_skipped_total",
            "Events skipped as already applied (redelivery or repeated event id).",
            registry=r,
        )
        self.handoffs = Counter(
            "hotlead_scorer_handoffs_total",
            "Hand-offs requested, by reason (threshold or the trigger's name).",
            ["reason"],
            registry=r,
        )
        self.segment_transitions = Counter(
            "hotlead_scorer_segment_transitions_total",
            "Segment changes emitted, by previous and new segment and cause (event or sweep).",
            ["previous", "segment", "cause"],
            registry=r,
        )
        self.lag = Histogram(
            "hotlead_scorer_event_lag_seconds",
            "From an event's time to the moment it was scored.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
            registry=r,
        )
        self.batch = Histogram(
            "hotlead_scorer_batch_duration_seconds",
            "Time to score a batch and emit its outputs (its states are stored at the commit).",
            registry=r,
        )
        self.leads = Gauge(
            "hotlead_scorer_leads",
            "Leads in this worker's table (counted by the last sweep, plus new leads since).",
            registry=r,
        )
        self.funnel = Counter(
            "hotlead_scorer_funnel_events_total",
            "Email and form events applied (no bots, no duplicates), by type and by the "
            "lead's segment before the event: the funnel KPIs per segment.",
            ["type", "segment"],
            registry=r,
        )
        self.cache_hits = Counter(
            "hotlead_scorer_state_cache_hits_total",
            "Lead states found in memory (kept from an earlier batch) instead of the table.",
            registry=r,
        )
        self.cache_misses = Counter(
            "hotlead_scorer_state_cache_misses_total",
            "Lead states read from the table (RocksDB) because memory did not hold them.",
            registry=r,
        )
        self.cache_states = Gauge(
            "hotlead_scorer_state_cache_states",
            "Lead states kept in memory between batches (at most HOTLEAD_SCORER_STATE_CACHE_SIZE).",
            registry=r,
        )
        self.states_unstored = Gauge(
            "hotlead_scorer_states_unstored",
            "Lead states changed since they were last stored: written to the table (RocksDB"
            " and changelog) before the next offset commit.",
            registry=r,
        )
        self.states_stored = Counter(
            "hotlead_scorer_states_stored_total",
            "Lead states written to the table: once per lead and commit, however many"
            " batches changed it in between.",
            registry=r,
        )
        self._event_children: dict[tuple[str, str], Counter] = {}
        self._funnel_children: dict[tuple[str, str], Counter] = {}
        self._transition_children: dict[tuple[str, str, str], Counter] = {}
        self._handoff_children: dict[str, Counter] = {}
        self.sweeps = Counter("hotlead_scorer_sweeps_total", "Decay sweeps completed.", registry=r)

    def count_event(self, event_type: str, outcome: str, n: int = 1) -> None:
        """events_total{type, outcome} += n (label children cached: this runs per batch)."""
        key = (event_type, outcome)
        child = self._event_children.get(key)
        if child is None:
            child = self._event_children[key] = self.events.labels(event_type, outcome)
        child.inc(n)

    def count_funnel(self, event_type: str, segment: str, n: int = 1) -> None:
        if event_type in FUNNEL_TYPES:
            key = (event_type, segment)
            child = self._funnel_children.get(key)
            if child is None:
                child = self._funnel_children[key] = self.funnel.labels(event_type, segment)
            child.inc(n)

    def count_transition(self, previous: str, segment: str, cause: str, n: int = 1) -> None:
        """segment_transitions_total{previous, segment, cause} += n (children cached:
        `labels()` is ~5 us, and a live trickle scores batches of a few events)."""
        key = (previous, segment, cause)
        child = self._transition_children.get(key)
        if child is None:
            child = self._transition_children[key] = self.segment_transitions.labels(*key)
        child.inc(n)

    def count_handoff(self, reason: str, n: int = 1) -> None:
        """handoffs_total{reason} += n (the reasons are the rules' triggers: bounded)."""
        child = self._handoff_children.get(reason)
        if child is None:
            child = self._handoff_children[reason] = self.handoffs.labels(reason)
        child.inc(n)

    def start_series(self, handoff_reasons: Iterable[str]) -> None:
        """Create the KPI series at 0 (hand-offs per reason, segment entries), so that
        increase() in the recording rules also counts the first one after a start."""
        for reason in handoff_reasons:
            self.handoffs.labels(reason)
        for event_type in FUNNEL_TYPES:
            for segment in Segment:
                self.funnel.labels(event_type, segment.value)
        for previous in ("none", *Segment):
            for segment in Segment:
                if previous != segment:
                    for cause in ("event", "sweep"):
                        self.segment_transitions.labels(previous, segment.value, cause)


class BatchTally:
    """A batch's event counts, added to the metrics once per batch rather than per
    event (each Prometheus increment takes a lock)."""

    __slots__ = ("cache_hits", "cache_misses", "event_times", "events", "funnel", "new_leads")

    def __init__(self) -> None:
        self.events: Tally[tuple[str, str]] = Tally()
        """(event type, outcome) -> events"""
        self.funnel: Tally[tuple[str, str]] = Tally()
        """(event type, segment before) -> events"""
        self.event_times: list[float] = []
        """The time (epoch s) of each event scored, for the lag histogram"""
        self.new_leads = 0
        self.cache_hits = 0
        self.cache_misses = 0

    def count(self, metrics: ScorerMetrics, now: float) -> None:
        """Add the counts to `metrics`; `now` (epoch s): when the batch was scored."""
        if self.event_times:
            observe_all(metrics.lag, [max(0.0, now - at) for at in self.event_times])
        for (event_type, outcome), n in self.events.items():
            metrics.count_event(event_type, outcome, n)
            if outcome == DUPLICATE:
                metrics.duplicates.inc(n)
        for (event_type, segment), n in self.funnel.items():
            metrics.count_funnel(event_type, segment, n)
        if self.new_leads:
            metrics.leads.inc(self.new_leads)
        if self.cache_hits:
            metrics.cache_hits.inc(self.cache_hits)
        if self.cache_misses:
            metrics.cache_misses.inc(self.cache_misses)


def observe_all(histogram: Histogram, values: list[float]) -> None:
    """`histogram.observe(value)` for each value, with one increment per bucket
    rather than a lock and a scan of the bounds per value. (An unlabelled
    prometheus_client histogram; tests/scorer/test_metrics.py checks the result
    against `observe`.)"""
    bounds: list[float] = histogram._upper_bounds
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect_left(bounds, value)] += 1  # the first bound >= value (the last: +Inf)
    histogram._sum.inc(math.fsum(values))
    buckets = histogram._buckets
    for index, n in enumerate(counts):
        if n:
            buckets[index].inc(n)
