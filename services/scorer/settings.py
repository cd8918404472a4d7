"""The scorer's settings (HOTLEAD_* environment variables), built once in main."""

from pathlib import Path

from pydantic import Field

from services.common.kafka_settings import KafkaSettings


class ScorerSettings(KafkaSettings):
    """How the scorer worker runs: rules, state store, web port, sweep."""

    scorer_rules_file: Path | None = Field(
        default=None, description="The rules file (YAML); unset: the built-in default rules."
    )
    scorer_app_id: str = Field(
        default="hotlead-scorer",
        description="faust app id: the consumer group and the prefix of the table's changelog.",
    )
    scorer_store: str = Field(
        default="rocksdb://",
        description="Table store: rocksdb:// (RocksDB via rocksdict, production) or memory://.",
    )
    scorer_datadir: Path = Field(
        default=Path("var/scorer"),
        description="Where the worker keeps its RocksDB files (one directory per worker).",
    )
    scorer_web_host: str = Field(
        default="127.0.0.1",
        description="Address the web server binds to and the host other workers route to.",
    )
    scorer_web_port: int = Field(
        default=6066, ge=0, le=65535, description="Port of GET /leads/{id} and /metrics."
    )
    scorer_sweep_interval_s: float = Field(
        default=300.0,
        ge=0,
        description="Seconds between decay sweeps over quiet leads; 0 turns the sweep off.",
    )
    scorer_batch_size: int = Field(
        default=500,
        ge=1,
        description="Most records in one fetched batch (batches waiting are scored together).",
    )
    scorer_fetch_max_wait_ms: int = Field(
        default=10,
        ge=0,
        le=1500,
        description="After a fetch that brought records, how long the next may wait on the"
        " broker for more (up to HOTLEAD_SCORER_FETCH_MIN_BYTES): under a live trickle each"
        " fetch brings the records of this many milliseconds instead of one or two. After an"
        " empty fetch the next answers at the first record.",
    )
    scorer_fetch_min_bytes: int = Field(
        default=1_048_576,
        ge=1,
        description="Bytes a fetch after one that brought records waits for (at most"
        " HOTLEAD_SCORER_FETCH_MAX_WAIT_MS); with a backlog a fetch answers at once.",
    )
    scorer_state_cache_size: int = Field(
        default=20_000,
        ge=0,
        description="Lead states kept decoded in memory between batches (least recently stored"
        " dropped first; ~6 KB each); 0: read every state from the table. Dropped for the"
        " partitions of every rebalance and after any failed batch.",
    )
    scorer_overlap_acks: bool = Field(
        default=True,
        description="Score the next batch while the outputs of the previous one wait for"
        " their acks (its states are stored once they are acked, and always before the"
        " offsets are committed); false: each batch waits for its own acks.",
    )
    scorer_commit_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often the worker commits its offsets; each commit first stores the"
        " states changed since the last one (RocksDB and changelog, once per lead). Longer:"
        " less storing when leads have several events in an interval, but a crash re-scores"
        " (and re-sends the outputs of) up to this much of the log, and standbys lag by it.",
    )
    scorer_standby_replicas: int = Field(
        default=0, ge=0, description="Warm standby copies of the table on other workers."
    )
    scorer_session_timeout_s: float = Field(
        default=30.0,
        ge=6,
        description="Kafka consumer session timeout: how soon a dead worker's partitions move.",
    )
    scorer_log_level: str = Field(default="INFO", description="Log level of the worker.")
