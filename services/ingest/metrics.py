"""Prometheus metrics of the ingest service, on a registry of its own per app.

Labels are bounded: route templates, event types, bot reasons, fixed reasons;
never a lead id, token, URL, address or campaign.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas.data import CrmStatus
from schemas.event_types import TYPE_PREFIX, EventType

# The funnel's series exist (at 0) from the start, so that rate() and increase() in the
# KPI recording rules also count the first events after a restart.
FUNNEL_TYPES = (
    EventType.EMAIL_DELIVERED,
    EventType.EMAIL_OPENED,
    EventType.EMAIL_CLICKED,
    EventType.FORM_SUBMITTED,
    EventType.CRM_STATUS_CHANGED,
)
MACHINE_TYPES = (EventType.EMAIL_OPENED, EventType.EMAIL_CLICKED)


@dataclass
class IngestMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    before_collect: list[Callable[[], None]] = field(default_factory=list)
    """Called before the registry is read: hot paths that count in plain ints add them."""

    def collect_pending(self) -> None:
        for flush in self.before_collect:
            flush()

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "hotlead_ingest_requests_total", "HTTP requests answered.", ["route", "status"],
            registry=r,
        )  # fmt: skip
        self.request_seconds = Histogram(
            "hotlead_ingest_request_duration_seconds", "Time to answer a request.", ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )  # fmt: skip
        self.events_written = Counter(
            "hotlead_ingest_events_written_total", "Events Kafka acknowledged.", ["type"],
            registry=r,
        )  # fmt: skip
        self.events_rejected = Counter(
            "hotlead_ingest_events_rejected_total",
            "Input refused by validation (a copy goes to hotlead.rejected.v1).", ["route"],
            registry=r,
        )  # fmt: skip
        self.events_unwritten = Counter(
            "hotlead_ingest_events_unwritten_total",
            "Events that were answered but could not be written (pixel, click).",
            ["route", "reason"], registry=r,
        )  # fmt: skip
        self.events_duplicate = Counter(
            "hotlead_ingest_events_duplicate_total",
            "Events not written again because their id was already written.", ["route"],
            registry=r,
        )  # fmt: skip
        self.bot_events = Counter(
            "hotlead_ingest_bot_events_total", "Events flagged as made by a machine.", ["reason"],
            registry=r,
        )  # fmt: skip
        self.machine_events_written = Counter(
            "hotlead_ingest_machine_events_written_total",
            "Events Kafka acknowledged that were flagged as made by a machine (bot), by type: "
            "the open rate without machine opens subtracts these.", ["type"],
            registry=r,
        )  # fmt: skip
        self.crm_statuses = Counter(
            "hotlead_ingest_crm_statuses_written_total",
            "CRM status changes Kafka acknowledged, by status (accepted, rejected, "
            "opportunity, won, lost).", ["status"],
            registry=r,
        )  # fmt: skip
        self.webhook_ignored = Counter(
            "hotlead_ingest_webhook_events_ignored_total",
            "Provider events with no meaning for scoring (acknowledged, not written).",
            ["provider", "kind"], registry=r,
        )  # fmt: skip
        self.signature_failures = Counter(
            "hotlead_ingest_signature_failures_total", "Webhooks refused for their signature.",
            ["provider"], registry=r,
        )  # fmt: skip
        self.rate_limited = Counter(
            "hotlead_ingest_rate_limited_total", "Requests over a rate limit.", ["route"],
            registry=r,
        )  # fmt: skip
        self.kafka_ready = Gauge(
            "hotlead_ingest_kafka_ready", "1 when the producer is connected to Kafka.",
            registry=r,
        )  # fmt: skip
        for event_type in FUNNEL_TYPES:
            self.events_written.labels(event_type.value.removeprefix(TYPE_PREFIX))
        for event_type in MACHINE_TYPES:
            self.machine_events_written.labels(event_type.value.removeprefix(TYPE_PREFIX))
        for status in CrmStatus:
            self.crm_statuses.labels(status.value)
