"""Kafka connection and topic layout settings, shared by every service."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.topics import prefixed

DAY_MS = 24 * 60 * 60 * 1000


class KafkaSettings(BaseSettings):
    """Where Kafka is and how hotlead's topics are laid out."""

    model_config = SettingsConfigDict(env_prefix="HOTLEAD_", extra="ignore", frozen=True)

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated."
    )
    topic_prefix: str = Field(
        default="", description="Prefix for every topic name, to share a cluster."
    )
    events_partitions: int = Field(
        default=12, ge=1, description="Partitions of the event log (hotlead.events.v1)."
    )
    partitions: int = Field(default=12, ge=1, description="Partitions of every other topic.")
    replication_factor: int = Field(default=1, ge=1, description="Replicas of every topic.")
    events_retention_ms: int = Field(
        default=-1, ge=-1, description="Event log retention in ms; -1 keeps it for replay forever."
    )
    stream_retention_ms: int = Field(
        default=7 * DAY_MS, ge=-1, description="Retention of segments, hand-offs and outcomes."
    )
    evidence_retention_ms: int = Field(
        default=30 * DAY_MS, ge=-1, description="Retention of rejected input and dead letters."
    )

    def topic(self, name: str) -> str:
        """The name of a hotlead topic on this cluster (with the prefix)."""
        return prefixed(name, self.topic_prefix)
