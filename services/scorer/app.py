"""The faust shell around the scoring core.

One agent reads hotlead.events.v1 in batches and hands them to BatchScorer;
the `leads` table (RocksDB via rocksdict in production, memory in tests)
holds one LeadState per lead, backed by a changelog topic with the same
number of partitions as the event log. Outputs go to hotlead.segments.v1 and
hotlead.handoffs.v1. The web server (127.0.0.1:6066 by default) serves
GET /leads/{lead_id}, routed to the worker owning the lead's partition, and
/metrics. A timer sweeps quiet leads for decay.
"""

from dataclasses import dataclass
from typing import Any

import faust
from faust.types import TP
from faust.web import Request, Response, View
from mode import CrashingSupervisor
from prometheus_client import generate_latest

from schemas.topics import EVENTS, HANDOFFS, SEGMENTS
from services.common.logging import get_logger
from services.scorer.batching import BatchingApp, BatchMessage, BatchStream
from services.scorer.evaluate import evaluate
from services.scorer.explain import lead_view
from services.scorer.faust_table import TABLE_NAME, FaustLeadTable, kafka_producer
from services.scorer.metrics import ScorerMetrics
from services.scorer.partitioning import KeyPartitioner
from services.scorer.processor import BatchScorer
from services.scorer.rules import Rules
from services.scorer.settings import ScorerSettings
from services.scorer.sink import BatchSink
from services.scorer.state_cache import StateCache

log = get_logger(__name__)
PROMETHEUS_TEXT = "text/plain; version=0.0.4"
BATCHES_BUFFERED = 10
"""Batches of records waiting for the agent before fetching pauses."""
TAKE_WITHIN_S = 0.002
"""How long the agent waits for more waiting batches before scoring the ones it has.

Every batch the agent scores waits once for its outputs' acks (~5-20 ms), so the
batches waiting in the agent's queue are scored together: a fetch brings what
arrived since the last one, often a record or two at a few hundred events/s,
and scoring those one wait at a time fell seconds behind."""


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
        # outputs are keyed by lead id: the same partitions, murmur2 once per lead
        producer_partitioner=KeyPartitioner(),
        broker_session_timeout=settings.scorer_session_timeout_s,
        broker_request_timeout=max(90.0, settings.scorer_session_timeout_s + 10),
        broker_heartbeat_interval=min(3.0, settings.scorer_session_timeout_s / 3),
        broker_commit_interval=settings.scorer_commit_interval_s,
        # by time only: faust also commits every 10,000 acked records by default, which
        # stores every state changed since the last commit once per 10,000 events
        broker_commit_every=2**31,
        web_enabled=True,
        web_port=settings.scorer_web_port,
        web_bind=settings.scorer_web_host,
        web_host=settings.scorer_web_host,
        web_transport="tcp://",
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        Stream=BatchStream,  # the agent's take_events polls its buffer more cheaply
    )
    metrics = ScorerMetrics()
    metrics.start_series(["threshold", *(trigger.name for trigger in rules.triggers)])
    source_name = settings.topic(EVENTS)
    app.batch_topics([source_name], settings.scorer_batch_size)
    app.fetch_wait(settings.scorer_fetch_max_wait_ms, settings.scorer_fetch_min_bytes)
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
    sink = BatchSink(
        lambda: kafka_producer(app), settings.topic(SEGMENTS), settings.topic(HANDOFFS)
    )
    cache = StateCache(settings.scorer_state_cache_size)
    scorer = BatchScorer(
        rules, table, sink, metrics, cache=cache, overlap=settings.scorer_overlap_acks
    )

    async def drain() -> None:
        """Complete the batch in flight, then store every state changed since the last
        commit; if that fails, no offset is committed again."""
        try:
            await scorer.drain()
        except BaseException as exc:
            table.fail(exc)
            raise

    # before every commit: the batch in flight completed (outputs acked), the states
    # changed since the last commit stored (RocksDB) and sent to the changelog, then
    # every changelog record sent so far acknowledged (faust chose the offsets to
    # commit before these hooks: records of batches the agent had finished)
    app.before_commit(drain)
    app.before_commit(scorer.flush_table)  # (a failure there stops the scorer too)

    # A rebalance may move a partition away and back (its table then recovered from
    # a changelog another worker wrote): the states kept of its leads are stale.
    async def forget_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await forget(args[0], "revoked")

    async def forget_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await forget(args[0], "assigned")

    app.on_partitions_revoked.connect(forget_revoked)
    app.on_partitions_assigned.connect(forget_assigned)

    async def forget(partitions: set[TP], why: str) -> None:
        # every state stored and in the changelog before the partitions move (another
        # worker recovers them from it; faust commits nothing at a rebalance), then the
        # states kept of these partitions dropped: all under the scorer's lock
        try:
            dropped = await scorer.drop_partitions({tp.partition for tp in partitions})
        except BaseException as exc:
            table.fail(exc)
            raise
        log.info("state_cache_dropped", partitions=why, states=dropped)

    # Any error crashes the worker (to be restarted from the last commit) rather than
    # restarting the agent alone past the batch that failed.
    @app.agent(events, name="score-events", supervisor_strategy=CrashingSupervisor)
    async def score_events(stream: Any) -> None:
        # one event per fetched batch of records (BatchingConsumer); the batches
        # waiting in the queue are scored together, then all their records acked
        async for events in stream.take_events(BATCHES_BUFFERED, within=TAKE_WITHIN_S):
            messages = [event.message for event in events]
            for message in messages:
                if not isinstance(message, BatchMessage):
                    raise TypeError(f"expected a batch of records, got {message!r}")
            records = [m for message in messages for m in message.records]
            try:
                await scorer.score_batch(records)
            except BaseException as exc:
                # take_events acks its events even when the body fails: the table
                # then refuses every later commit, so the worker restarts from the
                # last commit before this batch
                table.fail(exc)
                raise
            for message in messages:
                message.ack_records(app.consumer)

    if settings.scorer_sweep_interval_s > 0:

        @app.timer(interval=settings.scorer_sweep_interval_s)  # type: ignore[untyped-decorator]
        async def sweep_quiet_leads() -> None:
            try:
                changed = await scorer.sweep()  # (stores the states it changed)
            except BaseException as exc:
                table.fail(exc)
                raise
            # no offsets to commit after a sweep: its states go to the changelog now
            await scorer.flush_table()
            if changed:
                log.info("sweep_segment_changes", leads=changed)

    @app.page("/leads/{lead_id}")
    @app.table_route(table=faust_table, match_info="lead_id")
    async def get_lead(view: View, request: Request, lead_id: str) -> Response:
        # the latest state scored (in memory until the next commit stores it)
        state = scorer.current(lead_id, table.partition_of(lead_id))
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
