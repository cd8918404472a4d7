"""Delivering one hand-off: assign, upsert in the CRM, alert on Slack, with retries.

Each step is recorded in the progress book before the next one starts, so a
second delivery of the same hand-off (a redelivered Kafka record after a
crash, a redrive) skips what is already done. Failures go through the retry
policy; after the last attempt, or at once for a permanent error, the
hand-off is written to the dead-letter topic with the error and attempts.
"""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from schemas.data import (
    HandoffDeadLetteredData,
    HandoffOutcomeData,
    HandoffRequestedData,
    OutcomeStep,
)
from schemas.envelope import CloudEvent
from schemas.events import HandoffDeadLettered, HandoffOutcome, HandoffRequested
from schemas.topics import DLQ, HANDOFF_OUTCOMES
from services.common.kafka_settings import KafkaSettings
from services.common.logging import get_logger
from services.common.publisher import Publisher
from services.handoff.crm.base import CrmClient, CrmRecord
from services.handoff.errors import DeliveryError
from services.handoff.metrics import HandoffMetrics
from services.handoff.notify import Notifier
from services.handoff.progress import HandoffProgress, Status, Step, needs_delivery, next_step
from services.handoff.retry import GiveUp, RetryPolicy, decide
from services.handoff.slack_message import build_alert, lead_summary
from services.handoff.state import AssignmentBook, Durable, ProgressBook, all_durable

SOURCE = "/handoff"
log = get_logger(__name__)
_stdlib_log = logging.getLogger(__name__)
"""Asked before an info line: structlog runs its processors even for a dropped line."""


@runtime_checkable
class EventQueue(Protocol):
    """A publisher that can queue an event and be awaited for it later (the Kafka one)."""

    async def enqueue_event(self, topic: str, event: CloudEvent) -> Awaitable[None]: ...


class Result(StrEnum):
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"
    DUPLICATE = "duplicate"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deliverer:
    assignments: AssignmentBook
    progress: ProgressBook
    crm: CrmClient | None
    notifier: Notifier
    publisher: Publisher
    kafka: KafkaSettings
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    metrics: HandoffMetrics = field(default_factory=HandoffMetrics)
    now: Callable[[], datetime] = _utcnow
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rand: Callable[[], float] = random.random
    lookup_before_repost: bool = True
    """Record that a post is starting, so a later attempt looks the alert up first."""
    _outcomes: dict[str, list[Durable]] = field(default_factory=dict, repr=False)
    _held: dict[str, list[HandoffOutcome]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # label lookups once, not per hand-off
        self._step_metrics = {
            step: (
                self.metrics.step_seconds.labels(step.value),
                self.metrics.steps.labels(step.value),
            )
            for step in Step
        }
        self._delivered = self.metrics.handoffs.labels("delivered")
        self._queue = self.publisher if isinstance(self.publisher, EventQueue) else None

    async def deliver(self, event: HandoffRequested, redrive: int = 0) -> Result:
        handoff = event.data
        progress = self.progress.get(handoff.handoff_id)
        if not needs_delivery(progress, redrive):
            self.metrics.handoffs.labels("duplicate").inc()
            return Result.DUPLICATE
        if progress is None:
            progress = HandoffProgress(
                handoff_id=handoff.handoff_id,
                lead_id=handoff.lead_id,
                summary=lead_summary(handoff),
                qualified_at=handoff.trigger_event_time,
            )
        elif progress.status is Status.DEAD_LETTERED:  # redriven: a fresh set of attempts
            progress = await self.progress.save(
                progress.model_copy(
                    update={
                        "status": Status.PENDING,
                        "attempts": 0,
                        "first_attempt_at": None,
                        "redrives": redrive,
                    }
                )
            )
        self.metrics.in_flight.inc()
        outcomes: list[Durable] = []
        self._outcomes[handoff.handoff_id] = outcomes
        self._held[handoff.handoff_id] = []
        try:
            return await self._attempts(handoff, progress)
        finally:
            # Outcome events leave in the background, off the path to the alert;
            # they are all acknowledged before this hand-off counts as dealt with.
            try:
                await self._release(handoff.handoff_id)
            finally:
                del self._outcomes[handoff.handoff_id], self._held[handoff.handoff_id]
                try:
                    await all_durable(outcomes)
                finally:
                    self.metrics.in_flight.dec()

    async def _attempts(self, handoff: HandoffRequestedData, progress: HandoffProgress) -> Result:
        while True:
            started = self.now()
            try:
                await self._run_steps(handoff, progress)
                self._delivered.inc()
                return Result.DELIVERED
            except Exception as exc:  # noqa: BLE001 (every failure goes to the policy or the DLQ)
                progress = self.progress.get(handoff.handoff_id) or progress
                progress = await self.progress.save(
                    progress.model_copy(
                        update={
                            "attempts": progress.attempts + 1,
                            "first_attempt_at": progress.first_attempt_at or started,
                            "last_error": f"{type(exc).__name__}: {exc}"[:1000],
                        }
                    )
                )
                target = exc.target if isinstance(exc, DeliveryError) else "internal"
                self.metrics.failures.labels(target, type(exc).__name__).inc()
                await self._outcome(progress, OutcomeStep.FAILED, 0.0, str(exc)[:1000])
                decision = decide(self.policy, progress.attempts, exc, self.rand())
                if isinstance(decision, GiveUp):
                    await self._dead_letter(handoff, progress, exc, decision.reason)
                    return Result.DEAD_LETTERED
                log.warning(
                    "handoff_retry",
                    handoff_id=handoff.handoff_id,
                    lead_id=handoff.lead_id,
                    attempt=progress.attempts,
                    delay_s=round(decision.delay_s, 3),
                    error=str(exc)[:300],
                )
                await self.sleep(decision.delay_s)

    async def _run_steps(self, handoff: HandoffRequestedData, progress: HandoffProgress) -> None:
        while (step := next_step(progress, crm_enabled=self.crm is not None)) is not Step.DONE:
            began = self.monotonic()
            if step is Step.ASSIGN:
                progress = await self._assign(handoff, progress)
            elif step is Step.CRM_UPSERT and self.crm is not None:
                progress = await self._crm_upsert(self.crm, handoff, progress)
            elif step is Step.CRM_ACTIVITY and self.crm is not None:
                progress = await self._crm_activity(self.crm, handoff, progress, began)
            else:
                progress = await self._notify(handoff, progress)
            seconds, count = self._step_metrics[step]
            seconds.observe(self.monotonic() - began)
            count.inc()
        if progress.status is not Status.DELIVERED:
            await self.progress.save(progress.model_copy(update={"status": Status.DELIVERED}))

    def _rep(self, progress: HandoffProgress) -> tuple[str | None, str | None]:
        """(Slack id, CRM owner id) of the assigned rep."""
        found = self.assignments.config.rep(progress.rep_id) if progress.rep_id else None
        return (found[1].slack_id, found[1].crm_owner_id) if found else (None, None)

    async def _assign(
        self, handoff: HandoffRequestedData, progress: HandoffProgress
    ) -> HandoffProgress:
        began = self.monotonic()
        decision = await self.assignments.assign(handoff.lead_id, handoff.lead)
        # The assignment is durable in its own topic once `assign` returns, and running
        # it again after a crash keeps the owner it chose: no progress write of its own
        # (one acks=all round trip less before the alert); the next step's write (the
        # CRM record, the Slack post) carries it.
        progress = self.progress.note(
            progress.model_copy(
                update={"assigned": True, "team_id": decision.team_id, "rep_id": decision.rep_id}
            )
        )
        detail = decision.reason.value + (f" ({decision.territory})" if decision.territory else "")
        if decision.skipped:
            detail += "; skipped " + ", ".join(decision.skipped)
        # held back until the next outcome (or the end of this delivery), so that it shares
        # a produce request with the writes after the alert instead of costing one of its own
        await self._outcome(
            progress, OutcomeStep.ASSIGNED, self.monotonic() - began, detail, hold=True
        )
        return progress

    async def _crm_upsert(
        self, crm: CrmClient, handoff: HandoffRequestedData, progress: HandoffProgress
    ) -> HandoffProgress:
        record = await crm.upsert_lead(handoff, self._rep(progress)[1])
        return await self.progress.save(
            progress.model_copy(
                update={
                    "crm": crm.name,
                    "crm_record_id": record.record_id,
                    "crm_record_url": record.url,
                    "crm_record_created": record.created,
                }
            )
        )

    async def _crm_activity(
        self,
        crm: CrmClient,
        handoff: HandoffRequestedData,
        progress: HandoffProgress,
        began: float,
    ) -> HandoffProgress:
        record = CrmRecord(progress.crm_record_id or "", False, progress.crm_record_url)
        activity = await crm.record_breakdown(handoff, record, self._rep(progress)[1])
        progress = await self.progress.save(
            progress.model_copy(update={"crm_activity_id": activity})
        )
        detail = f"{crm.name} record {'created' if progress.crm_record_created else 'updated'}"
        await self._outcome(progress, OutcomeStep.CRM_SYNCED, self.monotonic() - began, detail)
        return progress

    def _channel(self, progress: HandoffProgress) -> str | None:
        if progress.team_id is None:
            return None
        return self.assignments.config.team(progress.team_id).channel

    async def _notify(
        self, handoff: HandoffRequestedData, progress: HandoffProgress
    ) -> HandoffProgress:
        began = self.monotonic()
        message = build_alert(
            handoff,
            rep_slack_id=self._rep(progress)[0],
            crm_url=progress.crm_record_url,
            crm_name=progress.crm,
        )
        channel = self._channel(progress)
        posted = None
        if progress.slack_posting_since is not None:  # an earlier attempt may have posted
            posted = await self.notifier.find(
                channel, handoff.handoff_id, progress.slack_posting_since
            )
            if posted is not None:
                self.metrics.alerts_recovered.inc()
        if posted is None:
            if progress.slack_posting_since is None and self.lookup_before_repost:
                progress = await self.progress.save(
                    progress.model_copy(update={"slack_posting_since": self.now()})
                )
            posted = await self.notifier.post(channel, message)
        accepted_at, accepted = self.now(), self.monotonic()
        progress = progress.model_copy(
            update={
                "slack_channel": posted.channel,
                "slack_ts": posted.ts,
                "notified_at": accepted_at,
                "status": Status.DELIVERED,
            }
        )
        since_trigger = (accepted_at - handoff.trigger_event_time).total_seconds()
        # The alert is out: the outcome says so whether or not the progress write below
        # succeeds. Queued first, it leaves in the same produce request as that write
        # (and the held assignment outcome), in order: one cluster round trip, not three.
        await self._outcome(
            progress,
            OutcomeStep.NOTIFIED,
            accepted - began,
            f"{self.notifier.name} {posted.channel}",
            since_trigger_ms=max(since_trigger, 0.0) * 1000,
        )
        progress = await self.progress.save(progress)
        self.metrics.unrecorded_post_seconds.observe(self.monotonic() - accepted)
        self.metrics.trigger_to_slack_seconds.observe(max(since_trigger, 0.0))
        if _stdlib_log.isEnabledFor(logging.INFO):
            log.info(
                "handoff_delivered",
                handoff_id=handoff.handoff_id,
                lead_id=handoff.lead_id,
                rep_id=progress.rep_id,
                since_trigger_s=round(since_trigger, 3),
            )
        return progress

    async def _outcome(
        self,
        progress: HandoffProgress,
        step: OutcomeStep,
        duration_s: float,
        detail: str,
        since_trigger_ms: float | None = None,
        *,
        hold: bool = False,
    ) -> None:
        attempt = max(progress.attempts, 1)
        event = HandoffOutcome(
            id=f"{progress.handoff_id}:{step.value}:{progress.redrives}:{attempt}",
            source=SOURCE,
            subject=progress.lead_id,
            time=self.now(),
            data=HandoffOutcomeData(
                handoff_id=progress.handoff_id,
                lead_id=progress.lead_id,
                step=step,
                attempt=attempt,
                duration_ms=max(duration_s, 0.0) * 1000,
                detail=detail[:1000],
                owner_id=progress.rep_id,
                crm_record_id=progress.crm_record_id,
                since_trigger_ms=since_trigger_ms,
            ),
        )
        pending = self._outcomes.get(progress.handoff_id)
        if pending is None:
            await self.publisher.publish(self.kafka.topic(HANDOFF_OUTCOMES), event)
            return
        self._held[progress.handoff_id].append(event)
        if not hold:
            await self._release(progress.handoff_id)

    async def _release(self, handoff_id: str) -> None:
        """Start publishing the held outcomes of a delivery, oldest first: queued on the
        producer when it can (no task each), else each in a task of its own."""
        held, pending = self._held[handoff_id], self._outcomes[handoff_id]
        topic = self.kafka.topic(HANDOFF_OUTCOMES)
        while held:
            event = held.pop(0)
            if self._queue is None:
                pending.append(asyncio.ensure_future(self.publisher.publish(topic, event)))
                continue
            try:
                pending.append(await self._queue.enqueue_event(topic, event))
            except Exception as exc:  # noqa: BLE001 (surfaces with the acknowledgements)
                # like a failed publish in the background: it must not stop the steps
                # between the alert and its progress record, and fails the delivery at its end
                failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                failed.set_exception(exc)
                pending.append(failed)

    async def _dead_letter(
        self,
        handoff: HandoffRequestedData,
        progress: HandoffProgress,
        exc: BaseException,
        reason: str,
    ) -> None:
        now = self.now()
        event = HandoffDeadLettered(
            id=f"{handoff.handoff_id}:dlq:{progress.redrives}",
            source=SOURCE,
            subject=handoff.lead_id,
            time=now,
            data=HandoffDeadLetteredData(
                handoff=handoff,
                error=f"{type(exc).__name__}: {exc} ({reason})"[:1000],
                error_type=type(exc).__name__,
                attempts=max(progress.attempts, 1),
                first_attempt_at=progress.first_attempt_at or now,
                last_attempt_at=now,
            ),
        )
        await self.publisher.publish(self.kafka.topic(DLQ), event)
        progress = await self.progress.save(
            progress.model_copy(update={"status": Status.DEAD_LETTERED})
        )
        await self._outcome(progress, OutcomeStep.DEAD_LETTERED, 0.0, reason)
        self.metrics.handoffs.labels("dead_lettered").inc()
        log.error(
            "handoff_dead_lettered",
            handoff_id=handoff.handoff_id,
            lead_id=handoff.lead_id,
            attempts=progress.attempts,
            error=str(exc)[:300],
        )
