"""Kafka topic names and what each topic carries.

The names are constants here and nowhere else. How many partitions a topic
gets and how long it keeps data is configuration (see services.common.topics).
"""

from dataclasses import dataclass
from enum import StrEnum

EVENTS = "hotlead.events.v1"
REJECTED = "hotlead.rejected.v1"
SEGMENTS = "hotlead.segments.v1"
HANDOFFS = "hotlead.handoffs.v1"
HANDOFF_OUTCOMES = "hotlead.handoff-outcomes.v1"
DLQ = "hotlead.dlq.v1"
ASSIGNMENTS = "hotlead.assignments.v1"
HANDOFF_PROGRESS = "hotlead.handoff-progress.v1"


class Retention(StrEnum):
    """How long a topic keeps its records."""

    EVENT_LOG = "event_log"
    """The source of truth, replayed to rebuild state: kept long (forever by default)."""
    STREAM = "stream"
    """Derived streams that consumers read soon after: kept for days."""
    EVIDENCE = "evidence"
    """Things an operator must look at (rejects, dead letters): kept for weeks."""
    KEYED_STATE = "keyed_state"
    """The latest value per key: compacted, never expires."""


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A hotlead topic: its name, what it holds and how long."""

    name: str
    description: str
    retention: Retention

    @property
    def compacted(self) -> bool:
        return self.retention is Retention.KEYED_STATE


TOPICS: tuple[TopicInfo, ...] = (
    TopicInfo(
        EVENTS,
        "every lead-scoped input (behaviour, attributes, CRM status), keyed by lead id",
        Retention.EVENT_LOG,
    ),
    TopicInfo(REJECTED, "input that failed validation, with the reason", Retention.EVIDENCE),
    TopicInfo(SEGMENTS, "segment changes (low / mid / high)", Retention.STREAM),
    TopicInfo(HANDOFFS, "a lead qualified: snapshot, breakdown and reason", Retention.STREAM),
    TopicInfo(HANDOFF_OUTCOMES, "what happened to each hand-off, with timings", Retention.STREAM),
    TopicInfo(DLQ, "hand-offs that could not be delivered, with the error", Retention.EVIDENCE),
    TopicInfo(
        ASSIGNMENTS, "assignment state: owners and round-robin positions", Retention.KEYED_STATE
    ),
    TopicInfo(
        HANDOFF_PROGRESS, "per hand-off id, the delivery steps already done", Retention.KEYED_STATE
    ),
)


def prefixed(name: str, prefix: str) -> str:
    """The name a topic has on a cluster shared under `prefix` (empty: unchanged)."""
    return f"{prefix}{name}"
