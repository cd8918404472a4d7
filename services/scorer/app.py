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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.partitioner import murmur2
from faust.streams import _current_event
from faust.web import Request, Response, View
from mode import CrashingSupervisor
from prometheus_client import generate_latest

from schemas.codec import encode_event, encode_key
from schemas.data import HandoffRequestedData
from schemas.envelope import CloudEvent
from schemas.topics import EVENTS, HANDOFFS, SEGMENTS
from services.common.logging import get_logger
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
    """LeadTable on a faust table of raw bytes (key: lead id, value: LeadState JSON)."""

    def __init__(self, table: Any, source_topic: str, partitions: int) -> None:
        self._table = table
        self._topic = source_topic
        self._partitions = partitions

    def _in(self, partition: int) -> tuple[_PartitionContext, Any]:
        context = _PartitionContext(self._topic, partition)
        return context, _current_event.set(weakref.ref(context))  # type: ignore[arg-type]

    def partition_of(self, lead_id: str) -> int:
        """The event log partition of a lead (Kafka's default partitioner)."""
        hashed: int = murmur2(lead_id.encode())
        return (hashed & 0x7FFFFFFF) % self._partitions

    def load(self, lead_id: str, partition: int | None = None) -> LeadState | None:
        if partition is None:
            partition = self.partition_of(lead_id)
        context, token = self._in(partition)
        try:
            raw = self._table.get(lead_id.encode())
        finally:
            _current_event.reset(token)
            del context
        return LeadState.from_bytes(raw) if raw is not None else None

    def save(self, state: LeadState, partition: int) -> None:
        context, token = self._in(partition)
        try:
            self._table[state.lead_id.encode()] = state.to_bytes()
        finally:
            _current_event.reset(token)
            del context

    def leads(self) -> Iterable[tuple[LeadState, int]]:
        for key, raw in list(self._table.items()):
            if raw is not None:
                state = LeadState.from_bytes(raw)
                yield state, self.partition_of(key.decode())


class FaustSink:
    """Writes outputs with the app's producer (acks=all) and waits for every ack."""

    def __init__(self, segments: Any, handoffs: Any) -> None:
        self._segments = segments
        self._handoffs = handoffs

    async def emit(self, outputs: list[CloudEvent]) -> None:
        futures = []
        for output in outputs:
            is_handoff = isinstance(getattr(output, "data", None), HandoffRequestedData)
            topic = self._handoffs if is_handoff else self._segments
            futures.append(
                await topic.send(key=encode_key(output), value=encode_event(output), force=True)
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
    app = faust.App(
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
    events = app.topic(
        source_name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    segments = app.topic(
        settings.topic(SEGMENTS), key_serializer="raw", value_serializer="raw", internal=False
    )
    handoffs = app.topic(
        settings.topic(HANDOFFS), key_serializer="raw", value_serializer="raw", internal=False
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
    # faust parks each changelog record in a buffer drained one by one, and stalls
    # every stream while it holds more than `max_messages` (default 100): less than
    # one batch of states. Room for a few batches lets the next batch be read while
    # the states drain; a commit still waits for the buffer to be empty.
    app.producer.buffer.max_messages = settings.scorer_batch_size * 4
    table = FaustLeadTable(faust_table, source_name, partitions)
    scorer = BatchScorer(rules, table, FaustSink(segments, handoffs), metrics)

    # Any error crashes the worker (to be restarted from the last commit) rather than
    # restarting the agent alone past the batch that failed.
    @app.agent(events, name="score-events", supervisor_strategy=CrashingSupervisor)
    async def score_events(stream: Any) -> None:
        async for batch in stream.take_events(
            settings.scorer_batch_size, within=settings.scorer_batch_within_s
        ):
            records = [
                Record(e.message.key, e.message.value, e.message.partition, e.message.offset)
                for e in batch
            ]
            await scorer.score_batch(records)

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
