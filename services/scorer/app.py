"""The faust shell around the scoring core.

One agent reads hotlead.events.v1 in batches and hands them to BatchScorer;
the `leads` table (RocksDB via rocksdict in production, memory in tests)
holds one LeadState per lead, backed by a changelog topic with the same
number of partitions as the event log. Outputs go to hotlead.segments.v1 and
hotlead.handoffs.v1. The web server (127.0.0.1:6066 by default) serves
GET /leads/{lead_id}, routed to the worker owning the lead's partition, and
/metrics. A timer sweeps quiet leads for decay.
"""

import asyncio
import weakref
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.partitioner import murmur2
from faust.exceptions import PartitionsMismatch
from faust.streams import _current_event
from faust.types import TP
from faust.web import Request, Response, View
from mode import CrashingSupervisor
from prometheus_client import generate_latest
from rocksdict import WriteBatch

from schemas.codec import encode_event, encode_key
from schemas.data import HandoffRequestedData
from schemas.envelope import CloudEvent
from schemas.topics import EVENTS, HANDOFFS, SEGMENTS
from services.common.logging import get_logger
from services.scorer.batching import BatchingApp, BatchMessage
from services.scorer.evaluate import evaluate
from services.scorer.explain import lead_view
from services.scorer.metrics import ScorerMetrics
from services.scorer.processor import BatchScorer, Record
from services.scorer.rules import Rules
from services.scorer.settings import ScorerSettings
from services.scorer.state import LeadState

log = get_logger(__name__)
TABLE_NAME = "leads"
PROMETHEUS_TEXT = "text/plain; version=0.0.4"
BATCHES_BUFFERED = 10
"""Batches of records waiting for the agent before fetching pauses."""


@dataclass(frozen=True, slots=True)
class _Message:
    topic: str
    partition: int


class _PartitionContext:
    """Stands in for faust's current event where the table needs one: the RocksDB
    store picks the partition's database, and the changelog its partition, from it."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _Message(topic, partition)


class FaustLeadTable:
    """LeadTable on a faust table of raw bytes (key: lead id, value: LeadState JSON).

    States are written straight to the table's store and changelog, a batch at a
    time: faust's `table[key] = value` would park each changelog record in the
    producer buffer, drained one record per task switch, and write the
    changelog offset to RocksDB once per record.
    """

    def __init__(self, app: faust.App, table: Any, source_topic: str, partitions: int) -> None:
        self._app = app
        self._table = table
        self._topic = source_topic
        self._partitions = partitions
        self._pending: list[Awaitable[Any]] = []
        self._changelog_verified = False

    def _in(self, partition: int) -> tuple[_PartitionContext, Any]:
        context = _PartitionContext(self._topic, partition)
        return context, _current_event.set(weakref.ref(context))  # type: ignore[arg-type]

    def partition_of(self, lead_id: str) -> int:
        """The event log partition of a lead (Kafka's default partitioner)."""
        hashed: int = murmur2(lead_id.encode())
        return (hashed & 0x7FFFFFFF) % self._partitions

    def _partition_db(self, partition: int) -> Any:
        """The RocksDB database of a partition (faust's rocksdb store keeps one per
        partition), or None for a store without (memory://). Reading and writing it
        directly skips faust's per-key serializer, current-event and key-index work."""
        db_for = getattr(self._table.data, "_db_for_partition", None)
        return db_for(partition) if db_for is not None else None

    def load(self, lead_id: str, partition: int | None = None) -> LeadState | None:
        if partition is None:
            partition = self.partition_of(lead_id)
        key = lead_id.encode()
        db = self._partition_db(partition)
        if db is not None:
            raw = db.get(key)
        else:
            context, token = self._in(partition)
            try:
                raw = self._table.data.get(key)
            finally:
                _current_event.reset(token)
                del context
        return LeadState.from_bytes(raw) if raw is not None else None

    async def save_all(self, states: Iterable[tuple[LeadState, int]]) -> None:
        """Write the states to the store and send them to the changelog (acks=all).

        The changelog's acks are awaited by `flush`, which the consumer runs before
        every offset commit: no offset is committed before the states its events
        produced are in the changelog, without a round trip per batch."""
        changelog = self._changelog_name()
        if not self._changelog_verified:
            self._verify_changelog_partitions(changelog)
        records = [
            (state.lead_id.encode(), state.to_bytes(), partition) for state, partition in states
        ]
        self._store(records)
        send = self._app.producer.send
        pending = self._pending
        for key, raw, partition in records:
            pending.append(await send(changelog, key, raw, partition, None, None))

    def _store(self, records: list[tuple[bytes, bytes, int]]) -> None:
        batches: dict[int, WriteBatch] = {}
        for key, raw, partition in records:
            batch = batches.get(partition)
            if batch is None:
                if self._partition_db(partition) is None:
                    self._store_in_context(key, raw, partition)
                    continue
                batch = batches[partition] = WriteBatch(raw_mode=True)
            batch.put(key, raw)
        for partition, batch in batches.items():
            self._partition_db(partition).write(batch)

    def _store_in_context(self, key: bytes, raw: bytes, partition: int) -> None:
        context, token = self._in(partition)
        try:
            self._table.data[key] = raw
        finally:
            _current_event.reset(token)
            del context

    async def flush(self) -> None:
        """Wait for every changelog record sent so far; raise if one failed. Then note
        the changelog offsets the store holds (recovery reads the changelog from there),
        once per partition rather than once per record as faust's table does."""
        sent, self._pending = self._pending, []
        if not sent:
            return
        persisted: dict[int, int] = {}
        for metadata in await asyncio.gather(*sent):
            partition, offset = metadata.topic_partition.partition, metadata.offset
            persisted[partition] = max(offset, persisted.get(partition, offset))
        store = self._table.data
        changelog = self._changelog_name()
        for partition, offset in persisted.items():
            store.set_persisted_offset(TP(changelog, partition), offset)

    def _verify_changelog_partitions(self, changelog: str) -> None:
        """The check faust's table makes at its first write, without its start-up race:
        the group's metadata snapshot can hold 0 partitions for a changelog faust has
        only just created (seen once as PartitionsMismatch, "changelog has 0
        partitions", crashing a starting worker). A count not known yet (None or 0)
        is checked again at the next batch; a different count is an error."""
        consumer = self._app.consumer
        counts = {
            f"changelog {changelog}": consumer.topic_partitions(changelog),
            f"event log {self._topic}": consumer.topic_partitions(self._topic),
        }
        if not all(counts.values()):
            return
        if set(counts.values()) != {self._partitions}:
            found = ", ".join(f"{name}: {count}" for name, count in counts.items())
            raise PartitionsMismatch(
                f"table {TABLE_NAME!r}: {found} partitions, HOTLEAD_EVENTS_PARTITIONS:"
                f" {self._partitions}; they must be equal"
            )
        self._changelog_verified = True

    def _changelog_name(self) -> str:
        name: str = self._table.changelog_topic.get_topic_name()
        return name

    def leads(self) -> Iterable[tuple[LeadState, int]]:
        for key, raw in list(self._table.items()):
            if raw is not None:
                state = LeadState.from_bytes(raw)
                yield state, self.partition_of(key.decode())


class FaustSink:
    """Writes outputs with the app's producer (acks=all) and waits for every ack."""

    def __init__(self, app: faust.App, segments: str, handoffs: str) -> None:
        self._app = app
        self._segments = segments
        self._handoffs = handoffs

    async def emit(self, outputs: list[CloudEvent]) -> None:
        send = self._app.producer.send
        futures = []
        for output in outputs:
            is_handoff = isinstance(getattr(output, "data", None), HandoffRequestedData)
            topic = self._handoffs if is_handoff else self._segments
            futures.append(
                await send(topic, encode_key(output), encode_event(output), None, None, None)
            )
        await asyncio.gather(*futures)


@dataclass
class ScorerApp:
    app: faust.App
    scorer: BatchScorer
    metrics: ScorerMetrics
    table: FaustLeadTable


def create_app(settings: ScorerSettings, rules: Rules) -> ScorerApp:
    """The faust app of one scorer worker, built from settings (nothing at import)."""
    partitions = settings.events_partitions
    app = BatchingApp(
        settings.scorer_app_id,
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        store=settings.scorer_store,
        datadir=str(settings.scorer_datadir),
        topic_partitions=partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        topic_disable_leader=True,
        table_standby_replicas=settings.scorer_standby_replicas,
        processing_guarantee="at_least_once",
        producer_acks=-1,
        # states are ~1-2 KB each: room for many per request (the default is 16 KB)
        producer_max_batch_size=524_288,
        producer_linger=0.005,
        broker_session_timeout=settings.scorer_session_timeout_s,
        broker_request_timeout=max(90.0, settings.scorer_session_timeout_s + 10),
        broker_heartbeat_interval=min(3.0, settings.scorer_session_timeout_s / 3),
        broker_commit_interval=1.0,
        web_enabled=True,
        web_port=settings.scorer_web_port,
        web_bind=settings.scorer_web_host,
        web_host=settings.scorer_web_host,
        web_transport="tcp://",
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
    )
    metrics = ScorerMetrics()
    metrics.start_series(["threshold", *(trigger.name for trigger in rules.triggers)])
    source_name = settings.topic(EVENTS)
    app.batch_topics([source_name], settings.scorer_batch_size)
    events = app.topic(
        source_name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        allow_empty=True,  # a batch's message has no value of its own: its records do
        maxsize=BATCHES_BUFFERED,
    )
    faust_table = app.Table(
        TABLE_NAME,
        default=None,
        key_type=bytes,  # bytes types select the raw serializer for store and changelog
        value_type=bytes,
        schema=faust.Schema(
            key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        ),
        partitions=partitions,
    )
    table = FaustLeadTable(app, faust_table, source_name, partitions)
    sink = FaustSink(app, settings.topic(SEGMENTS), settings.topic(HANDOFFS))
    scorer = BatchScorer(rules, table, sink, metrics)
    app.before_commit(table.flush)

    # Any error crashes the worker (to be restarted from the last commit) rather than
    # restarting the agent alone past the batch that failed.
    @app.agent(events, name="score-events", supervisor_strategy=CrashingSupervisor)
    async def score_events(stream: Any) -> None:
        # one event per batch of records from one partition (BatchingConsumer);
        # the stream acks every record of the batch after this body is done
        async for event in stream.events():
            message = event.message
            if not isinstance(message, BatchMessage):
                raise TypeError(f"expected a batch of records, got {message!r}")
            await scorer.score_batch(
                [Record(m.key, m.value or b"", m.partition, m.offset) for m in message.records]
            )
            message.ack_records(app.consumer)

    if settings.scorer_sweep_interval_s > 0:

        @app.timer(interval=settings.scorer_sweep_interval_s)  # type: ignore[untyped-decorator]
        async def sweep_quiet_leads() -> None:
            changed = await scorer.sweep()
            if changed:
                log.info("sweep_segment_changes", leads=changed)

    @app.page("/leads/{lead_id}")
    @app.table_route(table=faust_table, match_info="lead_id")
    async def get_lead(view: View, request: Request, lead_id: str) -> Response:
        state = table.load(lead_id)
        if state is None:
            return view.json(
                {"error": "not_found", "detail": f"no events scored for lead {lead_id!r} yet"},
                status=404,
            )
        now = scorer.clock()
        at = max(now, state.as_of or now)
        score = evaluate(state, rules, at=at)
        return view.json(lead_view(state, score, rules, at))

    @app.page("/metrics")
    async def get_metrics(view: View, request: Request) -> Response:
        # aiohttp wants the charset apart from the content type
        return view.bytes(generate_latest(metrics.registry), content_type=PROMETHEUS_TEXT)

    return ScorerApp(app=app, scorer=scorer, metrics=metrics, table=table)
