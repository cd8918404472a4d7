"""Prometheus metrics of the hand-off service, in one registry passed around."""

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas.data import CrmStatus

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)
# Sales answers in minutes to days: 5 min .. 1 week.
SALES_BUCKETS = (300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 345600, 604800)


@dataclass
class HandoffMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.handoffs = Counter(
            "hotlead_handoff_handoffs_total",
            "Hand-offs by how they ended.",
            ["result"],  # delivered, dead_lettered, duplicate, rejected
            registry=r,
        )
        self.steps = Counter(
            "hotlead_handoff_steps_total", "Delivery steps done.", ["step"], registry=r
        )
        self.failures = Counter(
            "hotlead_handoff_failures_total",
            "Failed attempts by target and error type.",
            ["target", "error"],
            registry=r,
        )
        self.step_seconds = Histogram(
            "hotlead_handoff_step_seconds", "Duration of each step.", ["step"], registry=r
        )
        self.trigger_to_slack_seconds = Histogram(
            "hotlead_handoff_trigger_to_slack_seconds",
            "From the triggering event's time to Slack's acceptance of the alert.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.unrecorded_post_seconds = Histogram(
            "hotlead_handoff_unrecorded_post_seconds",
            "From Slack's acceptance to the progress record being durable: the window in "
            "which a crash re-posts the alert.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.qualified_to_sales_status_seconds = Histogram(
            "hotlead_handoff_qualified_to_sales_status_seconds",
            "From the qualifying event's time to sales' first CRM status on the hand-off "
            "(accepted, rejected, opportunity, won, lost).",
            ["status"],
            buckets=SALES_BUCKETS,
            registry=r,
        )
        self.alerts_recovered = Counter(
            "hotlead_handoff_alerts_recovered_total",
            "Alerts an earlier attempt had posted, found in Slack instead of posted again.",
            registry=r,
        )
        self.followups = Counter(
            "hotlead_handoff_followups_total", "Reminders and escalations.", ["kind"], registry=r
        )
        self.in_flight = Gauge(
            "hotlead_handoff_in_flight", "Hand-offs being delivered now.", registry=r
        )
        # Series the alerts and KPI rules read exist at 0 from the start, so that
        # increase() also sees the first dead letter or the first answer after a start.
        for result in ("delivered", "dead_lettered", "duplicate", "rejected"):
            self.handoffs.labels(result)
        for status in CrmStatus:
            self.qualified_to_sales_status_seconds.labels(status.value)
