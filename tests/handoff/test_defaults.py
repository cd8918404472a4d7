"""Embedded defaults: no CRM, no Slack configured -> console alerts, the pipeline still runs."""

import pytest

from schemas.data import OutcomeStep
from schemas.events import HandoffOutcome
from schemas.topics import HANDOFF_OUTCOMES, HANDOFFS
from services.common.kafka_settings import KafkaSettings
from services.common.publisher import KafkaPublisher
from services.handoff.settings import HandoffSettings
from tests.handoff.harness import read_events, running
from tests.handoff.samples import handoff_event

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("fetch_wait_ms", [0, 25])
async def test_console_notifier_and_no_crm_when_nothing_is_configured(
    kafka_settings: KafkaSettings,
    unique: str,
    capsys: pytest.CaptureFixture[str],
    fetch_wait_ms: int,
) -> None:
    """Also with a fetch wait on the hand-off topic (fetches shared by hand-offs)."""
    settings = HandoffSettings(
        kafka_bootstrap=kafka_settings.kafka_bootstrap,
        topic_prefix=kafka_settings.topic_prefix,
        partitions=3,
        events_partitions=3,
        handoff_group_id=f"handoff-{unique}",
        handoff_port=0,
        handoff_fetch_wait_ms=fetch_wait_ms,
    )
    assert settings.crm == "none"
    assert settings.slack_bot_token is None
    publisher = KafkaPublisher(kafka_settings.kafka_bootstrap)
    await publisher.start()
    try:
        async with running(settings):
            await publisher.publish(kafka_settings.topic(HANDOFFS), handoff_event("lead-1"))
            for _ in range(100):
                events = await read_events(
                    kafka_settings.kafka_bootstrap, kafka_settings.topic(HANDOFF_OUTCOMES), 1
                )
                steps = [e.data.step for e in events if isinstance(e, HandoffOutcome)]
                if OutcomeStep.NOTIFIED in steps:
                    break
    finally:
        await publisher.stop()
    assert steps == [OutcomeStep.ASSIGNED, OutcomeStep.NOTIFIED]  # no CRM step
    printed = capsys.readouterr().out
    assert "[hotlead alert -> console]\n  | Hot lead: Yamada Taro\n" in printed
    assert "Company: Example KK" in printed
    assert "Score: 72 (high)" in printed
