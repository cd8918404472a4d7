"""Dead letters and `hotlead handoff redrive` against the real broker."""

from pathlib import Path

import pytest

from schemas.events import HandoffDeadLettered
from schemas.topics import DLQ, HANDOFFS
from services.common.kafka_settings import KafkaSettings
from services.common.publisher import KafkaPublisher
from services.handoff.redrive import redrive
from tests.handoff.fakes.base import Fault
from tests.handoff.fakes.salesforce import FakeSalesforce
from tests.handoff.fakes.slack import FakeSlack
from tests.handoff.harness import (
    TWO_REPS,
    read_events,
    running,
    service_env,
    settings_from,
    wait_until,
)
from tests.handoff.samples import handoff_event

pytestmark = pytest.mark.kafka
LEADS = [f"lead-{n}" for n in range(5)]


async def test_redrive_delivers_each_dead_letter_once(
    kafka_settings: KafkaSettings,
    unique: str,
    tmp_path: Path,
    fake_salesforce: FakeSalesforce,
    fake_slack: FakeSlack,
) -> None:
    assignment = tmp_path / "assignment.yaml"
    assignment.write_text(TWO_REPS, encoding="utf-8")
    # Slack is down for the first 10 calls: 5 hand-offs x 2 attempts each
    fake_slack.script("/api/chat.postMessage", *[Fault(500) for _ in range(10)])
    env = service_env(
        kafka_settings, unique, assignment, fake_salesforce, fake_slack, retry_max_attempts=2
    )
    settings = settings_from(env)
    publisher = KafkaPublisher(kafka_settings.kafka_bootstrap)
    await publisher.start()
    try:
        async with running(settings):
            for lead in LEADS:
                await publisher.publish(kafka_settings.topic(HANDOFFS), handoff_event(lead))
            dlq: list[HandoffDeadLettered] = []

            async def dead_letters() -> int:
                events = await read_events(
                    kafka_settings.kafka_bootstrap, kafka_settings.topic(DLQ), 2
                )
                dlq[:] = [e for e in events if isinstance(e, HandoffDeadLettered)]
                return len(dlq)

            for _ in range(60):
                if await dead_letters() == 5:
                    break
            assert sorted(d.data.handoff.lead_id for d in dlq) == LEADS
            assert {d.data.attempts for d in dlq} == {2}
            assert {d.data.error_type for d in dlq} == {"TransientDeliveryError"}
            assert "HTTP 500" in dlq[0].data.error
            assert fake_slack.posts == []
            # CRM work done before the failure is kept: no second Lead on redrive
            assert len(fake_salesforce.leads) == 5

            report = await redrive(settings, publisher)
            assert (report.read, report.republished) == (5, 5)
            await wait_until(lambda: len(fake_slack.alerts()) == 5, what="redriven alerts")
            again = await redrive(settings, publisher)
            assert again.republished == 0
            # a second pass over the same hand-offs (as if the DLQ were replayed) is a no-op
            for lead in LEADS:
                await publisher.publish(kafka_settings.topic(HANDOFFS), handoff_event(lead))
            sentinel = handoff_event("lead-sentinel")
            await publisher.publish(kafka_settings.topic(HANDOFFS), sentinel)
            await wait_until(lambda: len(fake_slack.alerts()) == 6, what="the sentinel")
    finally:
        await publisher.stop()
    counts = fake_slack.alert_counts()
    assert counts == {f"ho-{lead}-1": 1 for lead in [*LEADS, "lead-sentinel"]}
    assert sorted(fake_salesforce.lead_creates.values()) == [1] * 6
    assert len(fake_salesforce.tasks) == 6
