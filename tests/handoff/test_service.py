"""The service end to end: real broker, fake Salesforce and Slack."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from schemas.data import CrmStatus, CrmStatusChangedData, OutcomeStep
from schemas.events import CrmStatusChanged, EventRejected, HandoffOutcome
from schemas.topics import ASSIGNMENTS, EVENTS, HANDOFF_OUTCOMES, HANDOFFS, REJECTED
from services.common.kafka_settings import KafkaSettings
from services.common.publisher import KafkaPublisher
from services.handoff.kafka_io import read_keyed_topic
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


@pytest.fixture
def assignment_file(tmp_path: Path) -> Path:
    path = tmp_path / "assignment.yaml"
    path.write_text(TWO_REPS, encoding="utf-8")
    return path


@pytest.fixture
async def publisher(kafka_bootstrap: str) -> KafkaPublisher:
    producer = KafkaPublisher(kafka_bootstrap)
    await producer.start()
    yield producer  # type: ignore[misc]
    await producer.stop()


def mentioned(slack: FakeSlack) -> list[str]:
    """Who each top-level alert mentions, in order."""
    found = []
    for post in slack.alerts():
        text = str(post.blocks)
        found.append("A" if "<@U0REPA>" in text else "B" if "<@U0REPB>" in text else "?")
    return found


async def test_three_leads_over_two_reps_a_b_a_and_an_owned_lead_keeps_its_owner(
    kafka_settings: KafkaSettings,
    unique: str,
    assignment_file: Path,
    fake_salesforce: FakeSalesforce,
    fake_slack: FakeSlack,
    publisher: KafkaPublisher,
) -> None:
    env = service_env(kafka_settings, unique, assignment_file, fake_salesforce, fake_slack)
    handoffs = kafka_settings.topic(HANDOFFS)
    async with running(settings_from(env)):
        for n, lead in enumerate(["lead-1", "lead-2", "lead-3"], start=1):
            await publisher.publish(handoffs, handoff_event(lead))
            await wait_until(lambda n=n: len(fake_slack.alerts()) == n, what=f"alert {n}")
        assert mentioned(fake_slack) == ["A", "B", "A"]
        # lead-2 qualifies again: it keeps rep B although A is next in the rotation
        await publisher.publish(handoffs, handoff_event("lead-2", sequence=2))
        await wait_until(lambda: len(fake_slack.alerts()) == 4, what="alert 4")
        assert mentioned(fake_slack)[3] == "B"
    # a restart restores the rotation from Kafka: after A, B, A the next new lead goes to B
    async with running(settings_from(env)):
        await publisher.publish(handoffs, handoff_event("lead-4"))
        await wait_until(lambda: len(fake_slack.alerts()) == 5, what="alert 5")
    assert mentioned(fake_slack) == ["A", "B", "A", "B", "B"]
    # one Lead per lead id (lead-2's second hand-off updated it), owners set in Salesforce
    assert sorted(fake_salesforce.lead_creates.values()) == [1, 1, 1, 1]
    (lead2,) = fake_salesforce.leads_with("lead-2")
    assert fake_salesforce.leads[lead2]["OwnerId"] == "005A00000000002"
    assert len(fake_salesforce.tasks) == 5
    outcomes = await read_events(
        kafka_settings.kafka_bootstrap, kafka_settings.topic(HANDOFF_OUTCOMES)
    )
    steps = [e.data.step for e in outcomes if isinstance(e, HandoffOutcome)]
    assert steps.count(OutcomeStep.ASSIGNED) == 5
    assert steps.count(OutcomeStep.CRM_SYNCED) == 5
    assert steps.count(OutcomeStep.NOTIFIED) == 5
    assigned = [
        e.data
        for e in outcomes
        if isinstance(e, HandoffOutcome) and e.data.step is OutcomeStep.ASSIGNED
    ]
    assert "kept_owner" in next(a.detail for a in assigned if a.handoff_id == "ho-lead-2-2")


async def test_slack_429_then_503_then_200_one_message_after_the_wait(
    kafka_settings: KafkaSettings,
    unique: str,
    assignment_file: Path,
    fake_salesforce: FakeSalesforce,
    fake_slack: FakeSlack,
    publisher: KafkaPublisher,
) -> None:
    fake_slack.script(
        "/api/chat.postMessage",
        Fault(429, retry_after=2, body={"ok": False, "error": "ratelimited"}),
        Fault(503, body="<html>503</html>"),
    )
    env = service_env(kafka_settings, unique, assignment_file, fake_salesforce, fake_slack)
    async with running(settings_from(env)):
        await publisher.publish(kafka_settings.topic(HANDOFFS), handoff_event("lead-9"))
        await wait_until(lambda: len(fake_slack.posts) == 1, what="the alert")
    attempts = [s for s in fake_slack.seen if s.path == "/api/chat.postMessage"]
    assert [s.status for s in attempts] == [429, 503, 200]
    assert attempts[1].at - attempts[0].at >= 2.0  # Retry-After honoured
    assert len(fake_slack.posts) == 1
    outcomes = await read_events(
        kafka_settings.kafka_bootstrap, kafka_settings.topic(HANDOFF_OUTCOMES)
    )
    steps = [e.data.step for e in outcomes if isinstance(e, HandoffOutcome)]
    assert steps == [
        OutcomeStep.ASSIGNED,
        OutcomeStep.CRM_SYNCED,
        OutcomeStep.FAILED,
        OutcomeStep.FAILED,
        OutcomeStep.NOTIFIED,
    ]
    # Salesforce was not called again for the retries: one Lead, one Task
    assert len(fake_salesforce.leads) == 1
    assert len(fake_salesforce.tasks) == 1


async def test_no_crm_status_reminds_in_the_thread_then_escalates_and_status_stops_it(
    kafka_settings: KafkaSettings,
    unique: str,
    assignment_file: Path,
    fake_salesforce: FakeSalesforce,
    fake_slack: FakeSlack,
    publisher: KafkaPublisher,
) -> None:
    env = service_env(
        kafka_settings,
        unique,
        assignment_file,
        fake_salesforce,
        fake_slack,
        followup_remind_after_s=1,
        followup_escalate_after_s=1,
    )
    async with running(settings_from(env)):
        await publisher.publish(kafka_settings.topic(HANDOFFS), handoff_event("lead-1"))
        await publisher.publish(kafka_settings.topic(HANDOFFS), handoff_event("lead-2"))
        await wait_until(lambda: len(fake_slack.alerts()) == 2, what="alerts")
        accepted = CrmStatusChanged(
            id=f"crm-{unique}",
            source="/v1/crm/feedback",
            subject="lead-2",
            time=datetime.now(UTC),
            data=CrmStatusChangedData(status=CrmStatus.ACCEPTED, crm="salesforce"),
        )
        await publisher.publish(kafka_settings.topic(EVENTS), accepted)
        await wait_until(lambda: len(fake_slack.posts) >= 4, within=15, what="follow-ups")
    alerts = {p.handoff_id: p for p in fake_slack.alerts() if p.text.startswith("Hot lead")}
    lead1 = alerts["ho-lead-1-1"]
    replies = [p for p in fake_slack.posts if p.thread_ts is not None]
    assert [r.thread_ts for r in replies] == [lead1.ts]
    rep = "<@U0REPA>" if "<@U0REPA>" in str(lead1.blocks) else "<@U0REPB>"
    assert replies[0].text.startswith(rep)  # the rep lead-1 was assigned to
    escalations = [p for p in fake_slack.alerts() if p.text.startswith("Escalation")]
    assert len(escalations) == 1
    assert escalations[0].channel == "C0APAC"
    assert f"Yamada Taro (Example KK) assigned to {rep}" in escalations[0].text
    link = f"<https://slack.example/archives/C0APAC/p{lead1.ts.replace('.', '')}|Alert>"
    assert link in escalations[0].text
    # lead-2 was accepted: never reminded
    assert all(p.handoff_id != "ho-lead-2-1" for p in replies)


async def test_a_lead_rejected_by_sales_is_recycled_to_the_next_rep(
    kafka_settings: KafkaSettings,
    unique: str,
    assignment_file: Path,
    fake_salesforce: FakeSalesforce,
    fake_slack: FakeSlack,
    publisher: KafkaPublisher,
) -> None:
    env = service_env(kafka_settings, unique, assignment_file, fake_salesforce, fake_slack)
    handoffs = kafka_settings.topic(HANDOFFS)
    async with running(settings_from(env)):
        await publisher.publish(handoffs, handoff_event("lead-1"))
        await wait_until(lambda: len(fake_slack.alerts()) == 1, what="first alert")
        rejected = CrmStatusChanged(
            id=f"crm-rej-{unique}",
            source="/v1/crm/feedback",
            subject="lead-1",
            time=datetime.now(UTC),
            data=CrmStatusChangedData(
                status=CrmStatus.REJECTED, handoff_id="ho-lead-1-1", reason="no budget"
            ),
        )
        await publisher.publish(kafka_settings.topic(EVENTS), rejected)
        owners_topic = kafka_settings.topic(ASSIGNMENTS)
        for _ in range(100):  # until the feedback consumer recorded the recycle
            records = dict(await read_keyed_topic(kafka_settings.kafka_bootstrap, owners_topic))
            if b'"recycled":true' in (records.get("owner:lead-1") or b""):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the rejection was never applied")
        await publisher.publish(handoffs, handoff_event("lead-1", sequence=2))
        await wait_until(lambda: len(fake_slack.alerts()) == 2, what="second alert")
    assert mentioned(fake_slack) == ["A", "B"]
    (record,) = fake_salesforce.leads_with("lead-1")  # still one Lead, new owner
    assert fake_salesforce.leads[record]["OwnerId"] == "005A00000000002"


async def test_a_record_that_is_not_a_handoff_is_kept_in_rejected_and_the_stream_goes_on(
    kafka_settings: KafkaSettings,
    unique: str,
    assignment_file: Path,
    fake_salesforce: FakeSalesforce,
    fake_slack: FakeSlack,
    publisher: KafkaPublisher,
) -> None:
    env = service_env(kafka_settings, unique, assignment_file, fake_salesforce, fake_slack)
    raw = AIOKafkaProducer(bootstrap_servers=kafka_settings.kafka_bootstrap)
    await raw.start()
    try:
        async with running(settings_from(env)):
            await raw.send_and_wait(
                kafka_settings.topic(HANDOFFS), b'{"not": "an event"}', key=b"lead-1"
            )
            await publisher.publish(kafka_settings.topic(HANDOFFS), handoff_event("lead-1"))
            await wait_until(lambda: len(fake_slack.alerts()) == 1, what="the valid hand-off")
    finally:
        await raw.stop()
    rejected = await read_events(kafka_settings.kafka_bootstrap, kafka_settings.topic(REJECTED))
    (event,) = [e for e in rejected if isinstance(e, EventRejected)]
    assert event.data.payload == '{"not": "an event"}'
    assert event.data.route == f"kafka:{HANDOFFS}"
    assert event.data.errors
