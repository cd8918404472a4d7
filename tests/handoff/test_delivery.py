"""The delivery logic with in-memory parts (the Kafka and HTTP shells are tested apart)."""

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field

import pytest

from schemas.data import OutcomeStep
from schemas.envelope import CloudEvent
from schemas.events import HandoffDeadLettered, HandoffOutcome
from schemas.topics import ASSIGNMENTS, DLQ, HANDOFF_OUTCOMES, HANDOFF_PROGRESS
from services.common.errors import KafkaUnavailableError
from services.common.kafka_settings import KafkaSettings
from services.common.publisher import MemoryPublisher
from services.handoff.assignment_config import parse_assignment_config
from services.handoff.crm.base import MemoryCrm
from services.handoff.delivery import Deliverer, Result
from services.handoff.errors import MultipleMatchError, TransientDeliveryError
from services.handoff.notify import MemoryNotifier, Notifier, Posted
from services.handoff.progress import Status
from services.handoff.retry import RetryPolicy
from services.handoff.slack_message import SlackMessage
from services.handoff.state import (
    AssignmentBook,
    MemoryKeyedStore,
    ProgressBook,
    restore_assignments,
)
from tests.handoff.samples import handoff_event

CONFIG = parse_assignment_config(
    """
teams:
  - id: apac
    channel: C0APAC
    reps: [{id: aiko, slack_id: U0AIKO, crm_owner_id: "005A"}, {id: ben, slack_id: U0BEN}]
"""
)
KAFKA = KafkaSettings()


@dataclass
class FlakyNotifier(MemoryNotifier):
    failures: list[Exception] = field(default_factory=list)

    async def post(
        self, channel: str | None, message: SlackMessage, thread_ts: str | None = None
    ) -> Posted:
        if self.failures:
            raise self.failures.pop(0)
        return await super().post(channel, message, thread_ts)


@dataclass
class Parts:
    store: MemoryKeyedStore = field(default_factory=MemoryKeyedStore)
    crm: MemoryCrm = field(default_factory=MemoryCrm)
    notifier: Notifier = field(default_factory=FlakyNotifier)
    publisher: MemoryPublisher = field(default_factory=MemoryPublisher)
    sleeps: list[float] = field(default_factory=list)

    def deliverer(self) -> Deliverer:
        """A deliverer as a restarted process would build it: from the stored records."""

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        return Deliverer(
            assignments=AssignmentBook(
                CONFIG, restore_assignments(self.store.read(ASSIGNMENTS)), self.store, ASSIGNMENTS
            ),
            progress=ProgressBook(self.store, HANDOFF_PROGRESS, self.store.read(HANDOFF_PROGRESS)),
            crm=self.crm,
            notifier=self.notifier,
            publisher=self.publisher,
            kafka=KAFKA,
            policy=RetryPolicy(max_attempts=3, base_delay_s=1.0),
            sleep=sleep,
            rand=lambda: 0.0,
        )

    @property
    def flaky(self) -> FlakyNotifier:
        assert isinstance(self.notifier, FlakyNotifier)
        return self.notifier

    def steps(self) -> list[OutcomeStep]:
        return [
            e.data.step
            for e in self.publisher.on(HANDOFF_OUTCOMES)
            if isinstance(e, HandoffOutcome)
        ]


async def test_delivers_assigns_upserts_and_alerts_once() -> None:
    parts = Parts()
    deliverer = parts.deliverer()
    assert await deliverer.deliver(handoff_event("l1")) is Result.DELIVERED
    assert await deliverer.deliver(handoff_event("l1")) is Result.DUPLICATE
    assert parts.steps() == [OutcomeStep.ASSIGNED, OutcomeStep.CRM_SYNCED, OutcomeStep.NOTIFIED]
    assert len(parts.flaky.messages) == 1
    channel, message, _ = parts.flaky.messages[0]
    assert channel == "C0APAC"
    assert "<@U0AIKO>" in str(message.blocks)
    progress = deliverer.progress.get("ho-l1-1")
    assert progress is not None
    assert progress.status is Status.DELIVERED
    assert progress.crm_record_id == "rec-1"
    notified = parts.publisher.on(HANDOFF_OUTCOMES)[-1]
    assert isinstance(notified, HandoffOutcome)
    assert notified.data.since_trigger_ms is not None


async def test_a_restart_resumes_after_the_last_recorded_step() -> None:
    parts = Parts()
    parts.flaky.failures = [TransientDeliveryError("slack", "down")] * 3
    assert await parts.deliverer().deliver(handoff_event("l1")) is Result.DEAD_LETTERED
    assert parts.crm.upserts == 1
    # a new process with the stored state: the CRM step is not repeated
    parts.crm.upserts = 0
    restarted = parts.deliverer()
    assert await restarted.deliver(handoff_event("l1"), redrive=1) is Result.DELIVERED
    assert parts.crm.upserts == 0
    assert len(parts.flaky.messages) == 1
    assert restarted.assignments.state.rep("aiko").open_leads == 1
    assert restarted.assignments.state.owners["l1"].rep_id == "aiko"


async def test_transient_errors_are_retried_with_the_policy_delays() -> None:
    parts = Parts()
    parts.flaky.failures = [
        TransientDeliveryError("slack", "429", retry_after=2.0),
        TransientDeliveryError("slack", "503", status=503),
    ]
    assert await parts.deliverer().deliver(handoff_event("l1")) is Result.DELIVERED
    assert parts.sleeps == [2.0, 1.0]
    assert parts.steps().count(OutcomeStep.FAILED) == 2
    assert len(parts.flaky.messages) == 1


async def test_permanent_error_dead_letters_at_once_with_error_and_attempts() -> None:
    parts = Parts()

    async def multiple(*_: object) -> None:
        raise MultipleMatchError("salesforce", "2 Leads match", status=300)

    parts.crm.upsert_lead = multiple  # type: ignore[method-assign]
    deliverer = parts.deliverer()
    assert await deliverer.deliver(handoff_event("l1")) is Result.DEAD_LETTERED
    assert parts.sleeps == []
    (dead,) = parts.publisher.on(DLQ)
    assert isinstance(dead, HandoffDeadLettered)
    assert dead.data.attempts == 1
    assert dead.data.error_type == "MultipleMatchError"
    assert dead.data.handoff.handoff_id == "ho-l1-1"
    # the same record again (redelivered) does not retry; only a redrive does
    assert await deliverer.deliver(handoff_event("l1")) is Result.DUPLICATE
    assert OutcomeStep.DEAD_LETTERED in parts.steps()


async def test_a_redriven_handoff_gets_a_fresh_set_of_attempts() -> None:
    parts = Parts()
    down = TransientDeliveryError("slack", "down", status=503)
    parts.flaky.failures = [down] * 3
    assert await parts.deliverer().deliver(handoff_event("l1")) is Result.DEAD_LETTERED
    parts.flaky.failures = [down] * 2  # still failing twice after the redrive, then fine
    restarted = parts.deliverer()
    assert await restarted.deliver(handoff_event("l1"), redrive=7) is Result.DELIVERED
    progress = restarted.progress.get("ho-l1-1")
    assert progress is not None
    assert progress.attempts == 2
    assert progress.redrives == 7
    assert len(parts.flaky.messages) == 1
    dead = [e for e in parts.publisher.on(DLQ) if isinstance(e, HandoffDeadLettered)]
    assert [d.data.attempts for d in dead] == [3]


@dataclass
class QueueingPublisher(MemoryPublisher):
    """Queues like the Kafka producer: kept at once, acknowledged when awaited."""

    acked: list[str] = field(default_factory=list)
    refuse: str | None = None
    """An event id whose send fails at once (the producer's buffer full, say)."""

    async def enqueue_event(self, topic: str, event: CloudEvent) -> Awaitable[None]:
        if event.id == self.refuse:
            raise KafkaUnavailableError("127.0.0.1:9", RuntimeError("buffer full"))
        self.published.append((topic, event))

        async def ack() -> None:
            await asyncio.sleep(0)
            self.acked.append(event.id)

        return ack()


async def test_outcomes_are_queued_in_order_and_acknowledged_before_the_delivery_ends() -> None:
    parts = Parts(publisher=QueueingPublisher())
    assert await parts.deliverer().deliver(handoff_event("l1")) is Result.DELIVERED
    assert parts.steps() == [OutcomeStep.ASSIGNED, OutcomeStep.CRM_SYNCED, OutcomeStep.NOTIFIED]
    publisher = parts.publisher
    assert isinstance(publisher, QueueingPublisher)
    assert publisher.acked == [e.id for e in publisher.on(HANDOFF_OUTCOMES)]


async def test_an_outcome_refused_after_the_alert_still_lets_the_progress_be_recorded() -> None:
    publisher = QueueingPublisher(refuse="ho-l1-1:notified:0:1")
    parts = Parts(publisher=publisher)
    deliverer = parts.deliverer()
    with pytest.raises(KafkaUnavailableError):
        await deliverer.deliver(handoff_event("l1"))
    assert len(parts.flaky.messages) == 1
    progress = deliverer.progress.get("ho-l1-1")
    assert progress is not None
    assert progress.status is Status.DELIVERED
    # the redelivered record (the failure stopped the consumer) posts nothing again
    assert await parts.deliverer().deliver(handoff_event("l1")) is Result.DUPLICATE
    assert len(parts.flaky.messages) == 1
