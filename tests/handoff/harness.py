"""Running the hand-off service against the real broker and the fake APIs."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from schemas.codec import decode_event
from schemas.envelope import CloudEvent
from services.common.kafka_settings import KafkaSettings
from services.handoff.service import run_handoff
from services.handoff.settings import HandoffSettings
from tests.handoff.fakes.salesforce import FakeSalesforce
from tests.handoff.fakes.slack import FakeSlack

TWO_REPS = """
teams:
  - id: apac
    channel: C0APAC
    reps:
      - {id: rep-a, slack_id: U0REPA, crm_owner_id: "005A00000000001"}
      - {id: rep-b, slack_id: U0REPB, crm_owner_id: "005A00000000002"}
"""


def service_env(
    kafka: KafkaSettings,
    unique: str,
    assignment_file: Path,
    salesforce: FakeSalesforce,
    slack: FakeSlack,
    **extra: Any,
) -> dict[str, str]:
    """The HOTLEAD_* variables of a service wired to the fakes."""
    env = {
        "HOTLEAD_KAFKA_BOOTSTRAP": kafka.kafka_bootstrap,
        "HOTLEAD_TOPIC_PREFIX": kafka.topic_prefix,
        "HOTLEAD_PARTITIONS": str(kafka.partitions),
        "HOTLEAD_EVENTS_PARTITIONS": str(kafka.events_partitions),
        "HOTLEAD_HANDOFF_GROUP_ID": f"handoff-{unique}",
        "HOTLEAD_HANDOFF_PORT": "0",
        "HOTLEAD_ASSIGNMENT_FILE": str(assignment_file),
        "HOTLEAD_CRM": "salesforce",
        "HOTLEAD_SALESFORCE_LOGIN_URL": salesforce.url,
        "HOTLEAD_SALESFORCE_CLIENT_ID": salesforce.client_id,
        "HOTLEAD_SALESFORCE_CLIENT_SECRET": salesforce.client_secret,
        "HOTLEAD_SLACK_BOT_TOKEN": slack.token,
        "HOTLEAD_SLACK_API_URL": slack.api_url,
        "HOTLEAD_SLACK_CHANNEL_RATE_PER_S": "1000",
        "HOTLEAD_RETRY_BASE_DELAY_S": "0.05",
        "HOTLEAD_HTTP_TIMEOUT_S": "5",
        "HOTLEAD_FOLLOWUP_CHECK_INTERVAL_S": "0.2",
    }
    env.update({f"HOTLEAD_{key.upper()}": str(value) for key, value in extra.items()})
    return env


def settings_from(env: dict[str, str]) -> HandoffSettings:
    values = {key.removeprefix("HOTLEAD_").lower(): value for key, value in env.items()}
    return HandoffSettings.model_validate(values)


@contextlib.asynccontextmanager
async def running(settings: HandoffSettings) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_handoff(settings, stop, own_signals=False))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def wait_until(check: Callable[[], bool], within: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what or check}")
        await asyncio.sleep(0.05)


async def read_events(bootstrap: str, topic: str, within: float = 5.0) -> list[CloudEvent]:
    """Everything on `topic` now (a fresh reader, no group)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    events: list[CloudEvent] = []
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            if not batch and events:
                break
            for records in batch.values():
                events.extend(decode_event(r.value) for r in records if r.value)
    finally:
        await consumer.stop()
    return events
