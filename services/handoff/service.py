"""`hotlead handoff`: build the parts from the settings, restore state, run until stopped.

Start order: topics checked, state read back from the compacted topics,
then the consumers (hand-offs, CRM feedback), the follow-up sweep and the
HTTP server. /readyz turns ready once the state is restored. On SIGTERM the
consumers finish the batch in hand (and commit it) before the process ends.
"""

import asyncio
import contextlib
import signal
import time
from datetime import UTC, datetime

import aiohttp
import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer
from slack_sdk.web.async_client import AsyncWebClient

from schemas.topics import ASSIGNMENTS, EVENTS, HANDOFF_PROGRESS, HANDOFFS, REJECTED
from services.common.errors import ConfigurationError
from services.common.logging import get_logger
from services.common.topics import ensure_topics, topic_specs
from services.handoff.app import Health, create_app
from services.handoff.assignment_config import DEFAULT_ASSIGNMENT, load_assignment_config
from services.handoff.consumer import FeedbackConsumer, HandoffConsumer
from services.handoff.crm.base import CrmClient
from services.handoff.crm.hubspot import HubSpotConfig, HubSpotCrm
from services.handoff.crm.salesforce import SalesforceConfig, SalesforceCrm
from services.handoff.crm.webhook import WebhookConfig, WebhookCrm
from services.handoff.delivery import Deliverer
from services.handoff.followup import FollowUps
from services.handoff.kafka_io import HandoffProducer, read_keyed_topic
from services.handoff.metrics import HandoffMetrics
from services.handoff.notify import ChannelPacer, ConsoleNotifier, Notifier
from services.handoff.retry import RetryPolicy
from services.handoff.settings import HandoffSettings
from services.handoff.slack import SlackWebApiNotifier, SlackWebhookNotifier
from services.handoff.state import AssignmentBook, ProgressBook, restore_assignments

log = get_logger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def build_crm(settings: HandoffSettings, client: httpx.AsyncClient) -> CrmClient | None:
    if settings.crm == "salesforce":
        if not settings.salesforce_client_id:
            raise ConfigurationError("HOTLEAD_CRM=salesforce needs HOTLEAD_SALESFORCE_CLIENT_ID")
        return SalesforceCrm(
            SalesforceConfig(
                settings.salesforce_login_url,
                settings.salesforce_client_id,
                settings.salesforce_client_secret.get_secret_value(),
                settings.salesforce_api_version,
                settings.salesforce_external_id_field,
            ),
            client,
        )
    if settings.crm == "hubspot":
        if not settings.hubspot_token.get_secret_value():
            raise ConfigurationError("HOTLEAD_CRM=hubspot needs HOTLEAD_HUBSPOT_TOKEN")
        return HubSpotCrm(
            HubSpotConfig(
                settings.hubspot_token.get_secret_value(),
                settings.hubspot_base_url,
                settings.hubspot_api_version,
                settings.hubspot_id_property,
                settings.hubspot_portal_id,
            ),
            client,
        )
    if settings.crm == "webhook":
        if not settings.webhook_url or not settings.webhook_secret.get_secret_value():
            raise ConfigurationError(
                "HOTLEAD_CRM=webhook needs HOTLEAD_WEBHOOK_URL and HOTLEAD_WEBHOOK_SECRET"
            )
        config = WebhookConfig(settings.webhook_url, settings.webhook_secret.get_secret_value())
        return WebhookCrm(config, client, time.time)
    return None


def slack_session(settings: HandoffSettings) -> aiohttp.ClientSession:
    """One keep-alive session for every Slack call (slack-sdk opens a new session, and a
    new connection, per call when it is given none). Slack sets no cookies we need: a
    dummy jar spares the cookie filtering of every request."""
    timeout = max(int(settings.http_timeout_s), 1)
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout), cookie_jar=aiohttp.DummyCookieJar()
    )


def build_notifier(
    settings: HandoffSettings, session: aiohttp.ClientSession | None = None
) -> Notifier:
    pacer = ChannelPacer(settings.slack_channel_rate_per_s, time.monotonic)
    timeout = max(int(settings.http_timeout_s), 1)
    if settings.slack_bot_token is not None:
        client = AsyncWebClient(
            token=settings.slack_bot_token.get_secret_value(),
            base_url=settings.slack_api_url,
            timeout=timeout,
            retry_handlers=[],
            session=session,
        )
        return SlackWebApiNotifier(client, pacer, settings.slack_default_channel)
    if settings.slack_webhook_url is not None:
        return SlackWebhookNotifier(
            settings.slack_webhook_url.get_secret_value(), pacer, session, timeout_s=timeout
        )
    return ConsoleNotifier()


HANDOFF_FETCH_MIN_BYTES = 1 << 16
"""With HOTLEAD_HANDOFF_FETCH_WAIT_MS: the broker answers once this much is there (tens
of hand-offs) or the wait is over."""
FEEDBACK_FETCH_MIN_BYTES = 1 << 20
"""The broker answers a feedback fetch once this much is there or the wait is over."""


def _consumer(
    settings: HandoffSettings,
    topic: str,
    group: str,
    start: str = "earliest",
    *,
    fetch_wait_ms: int = 500,
    fetch_min_bytes: int = 1,
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        settings.topic(topic),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset=start,
        max_poll_interval_ms=900_000,
        fetch_max_wait_ms=fetch_wait_ms,
        fetch_min_bytes=fetch_min_bytes,
    )


async def run_handoff(
    settings: HandoffSettings, stop: asyncio.Event | None = None, *, own_signals: bool = True
) -> None:
    """Run until `stop` is set (or SIGTERM / SIGINT when `own_signals`)."""
    keep_ms = settings.progress_keep_days * 86_400_000
    if settings.stream_retention_ms == -1 or keep_ms < settings.stream_retention_ms:
        raise ConfigurationError(
            f"HOTLEAD_PROGRESS_KEEP_DAYS ({settings.progress_keep_days:g}) must cover the "
            "retention of the hand-off topic (HOTLEAD_STREAM_RETENTION_MS), or a replayed "
            "hand-off could be delivered twice"
        )
    stop = stop or asyncio.Event()
    if own_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    config = (
        load_assignment_config(settings.assignment_file)
        if settings.assignment_file
        else DEFAULT_ASSIGNMENT
    )
    metrics, health = HandoffMetrics(), Health()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(metrics, health),
            host=settings.handoff_host,
            port=settings.handoff_port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
    )
    if not own_signals:  # embedded (tests): the host process owns the signals
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    web = asyncio.create_task(server.serve(), name="http")
    await ensure_topics(settings.kafka_bootstrap, topic_specs(settings))
    producer = HandoffProducer(settings.kafka_bootstrap)
    await producer.start()
    async with (
        httpx.AsyncClient(timeout=settings.http_timeout_s) as http,
        slack_session(settings) as session,
    ):
        started = time.monotonic()
        assignments = AssignmentBook(
            config,
            restore_assignments(
                await read_keyed_topic(settings.kafka_bootstrap, settings.topic(ASSIGNMENTS))
            ),
            producer,
            settings.topic(ASSIGNMENTS),
        )
        progress = ProgressBook(
            producer,
            settings.topic(HANDOFF_PROGRESS),
            await read_keyed_topic(settings.kafka_bootstrap, settings.topic(HANDOFF_PROGRESS)),
        )
        log.info(
            "state_restored",
            handoffs=len(progress.by_id),
            owners=len(assignments.state.owners),
            seconds=round(time.monotonic() - started, 3),
        )
        notifier = build_notifier(settings, session)
        deliverer = Deliverer(
            assignments=assignments,
            progress=progress,
            crm=build_crm(settings, http),
            notifier=notifier,
            publisher=producer,
            kafka=settings,
            policy=RetryPolicy(
                max_attempts=settings.retry_max_attempts,
                base_delay_s=settings.retry_base_delay_s,
                max_delay_s=settings.retry_max_delay_s,
            ),
            metrics=metrics,
            lookup_before_repost=settings.slack_lookup_before_repost
            and isinstance(notifier, SlackWebApiNotifier),
        )
        handoffs = _consumer(
            settings,
            HANDOFFS,
            settings.handoff_group_id,
            fetch_wait_ms=settings.handoff_fetch_wait_ms or 500,
            fetch_min_bytes=HANDOFF_FETCH_MIN_BYTES if settings.handoff_fetch_wait_ms else 1,
        )
        # The event log is kept forever: a new feedback group starts at its end (statuses
        # from before the first start concern no hand-off this service made).
        # ... and is mostly behaviour, skipped: fetched in large, less frequent batches
        # (the hand-offs keep aiokafka's defaults: an answer as soon as one is there).
        feedback = _consumer(
            settings,
            EVENTS,
            f"{settings.handoff_group_id}-feedback",
            start="latest",
            fetch_wait_ms=settings.feedback_fetch_wait_ms,
            fetch_min_bytes=FEEDBACK_FETCH_MIN_BYTES,
        )
        await handoffs.start()
        await feedback.start()
        followups = FollowUps(
            progress,
            config,
            notifier,
            remind_after_s=settings.followup_remind_after_s,
            escalate_after_s=settings.followup_escalate_after_s,
            now=_utcnow,
            metrics=metrics,
            keep_s=settings.progress_keep_days * 86400,
        )
        workers = [
            asyncio.create_task(
                HandoffConsumer(
                    handoffs, deliverer, settings.handoff_concurrency, settings.topic(REJECTED)
                ).run(stop),
                name="handoffs",
            ),
            asyncio.create_task(
                FeedbackConsumer(feedback, assignments, progress, metrics).run(stop),
                name="feedback",
            ),
            asyncio.create_task(
                followups.run(stop, settings.followup_check_interval_s), name="followups"
            ),
        ]
        health.ready, health.detail = True, "consuming"
        log.info("handoff_started", notifier=notifier.name, crm=settings.crm)
        try:
            stopped = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait(
                [stopped, web, *workers], return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task is not stopped and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            health.ready, health.detail = False, "stopping"
            stop.set()
            await asyncio.gather(*workers, return_exceptions=True)
            await handoffs.stop()
            await feedback.stop()
            await producer.stop()
            server.should_exit = True
            await asyncio.gather(web, return_exceptions=True)
            log.info("handoff_stopped")
