"""Follow-up: remind the rep in the alert's thread, then escalate to the team channel.

The same sweep drops progress records of hand-offs finished longer ago than
HOTLEAD_PROGRESS_KEEP_DAYS, so the compacted topic (read in full at start)
does not grow forever.

A sweep looks at the delivered hand-offs still waiting for a CRM status
(accepted / rejected / ...) and acts on the ones that are due
(`progress.followup_due`). What was done is written to the progress record,
so a restart neither forgets a follow-up nor sends it twice (within the same
Slack window as alerts).
"""

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

from services.common.logging import get_logger
from services.handoff.assignment_config import AssignmentConfig
from services.handoff.metrics import HandoffMetrics
from services.handoff.notify import Notifier
from services.handoff.progress import FollowUp, HandoffProgress, followup_due, forgettable
from services.handoff.slack_message import build_escalation, build_reminder
from services.handoff.state import ProgressBook

log = get_logger(__name__)


def human_duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g}h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


class FollowUps:
    def __init__(
        self,
        progress: ProgressBook,
        config: AssignmentConfig,
        notifier: Notifier,
        *,
        remind_after_s: float,
        escalate_after_s: float,
        now: Callable[[], datetime],
        metrics: HandoffMetrics,
        keep_s: float = 30 * 86400.0,
    ) -> None:
        self._progress = progress
        self._config = config
        self._notifier = notifier
        self._remind_after_s = remind_after_s
        self._escalate_after_s = escalate_after_s
        self._now = now
        self._metrics = metrics
        self._keep_s = keep_s

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        while not stop.is_set():
            await self.sweep()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    async def sweep(self) -> int:
        """Send what is due now; returns how many follow-ups went out."""
        sent = 0
        for progress in list(self._progress.by_id.values()):
            if forgettable(progress, self._now(), keep_s=self._keep_s):
                await self._progress.forget(progress.handoff_id)
                continue
            due = followup_due(
                progress,
                self._now(),
                remind_after_s=self._remind_after_s,
                escalate_after_s=self._escalate_after_s,
            )
            if due is None:
                continue
            try:
                await self._send(progress, due)
                sent += 1
            except Exception as exc:  # noqa: BLE001 (tried again at the next sweep)
                log.warning("followup_failed", handoff_id=progress.handoff_id, error=str(exc)[:300])
        return sent

    def _rep_slack_id(self, progress: HandoffProgress) -> str | None:
        found = self._config.rep(progress.rep_id) if progress.rep_id else None
        return found[1].slack_id if found else None

    async def _send(self, progress: HandoffProgress, due: FollowUp) -> None:
        slack_id = self._rep_slack_id(progress)
        if due is FollowUp.REMIND:
            message = build_reminder(
                progress.handoff_id, slack_id, human_duration(self._remind_after_s)
            )
            thread = progress.slack_ts if self._notifier.threads else None
            await self._notifier.post(progress.slack_channel, message, thread_ts=thread)
            update = {"reminded_at": self._now()}
        else:
            team = self._config.team(progress.team_id) if progress.team_id else None
            waited = human_duration(self._remind_after_s + self._escalate_after_s)
            link = (
                await self._notifier.permalink(progress.slack_channel, progress.slack_ts)
                if progress.slack_channel
                else None
            )
            message = build_escalation(
                progress.handoff_id, progress.summary, slack_id, waited, link
            )
            await self._notifier.post(team.channel if team else None, message)
            update = {"escalated_at": self._now()}
        latest = self._progress.get(progress.handoff_id) or progress
        await self._progress.save(latest.model_copy(update=update))
        self._metrics.followups.labels(due.value).inc()
        log.info("followup_sent", handoff_id=progress.handoff_id, kind=due.value)
