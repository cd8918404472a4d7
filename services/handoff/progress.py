"""What was already done for one hand-off (pure), kept in hotlead.handoff-progress.v1.

The record is written after every step, keyed by hand-off id, so a restart
resumes where the last run stopped: an assigned lead is not assigned again, a
CRM record with an id is not created again, a posted alert (with its ts) is
not posted again. `next_step` is the whole resume logic.
"""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from schemas.data import CrmStatus


class Status(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"


class Step(StrEnum):
    ASSIGN = "assign"
    CRM_UPSERT = "crm_upsert"
    CRM_ACTIVITY = "crm_activity"
    NOTIFY = "notify"
    DONE = "done"


class HandoffProgress(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    handoff_id: str
    lead_id: str
    summary: str = ""
    """`name (company)` as received (unescaped), for follow-up messages."""
    status: Status = Status.PENDING
    assigned: bool = False
    team_id: str | None = None
    rep_id: str | None = None
    crm: str | None = None
    crm_record_id: str | None = None
    crm_record_url: str | None = None
    crm_record_created: bool = False
    crm_activity_id: str | None = None
    slack_posting_since: datetime | None = None
    """Set (durably) before the first post: a later attempt first looks for the alert."""
    slack_channel: str | None = None
    slack_ts: str | None = None
    notified_at: datetime | None = None
    attempts: int = 0
    first_attempt_at: datetime | None = None
    last_error: str | None = None
    redrives: int = 0
    crm_status: CrmStatus | None = None
    reminded_at: datetime | None = None
    escalated_at: datetime | None = None
    qualified_at: datetime | None = None
    """The qualifying event's time (for the qualification-to-sales-status metric)."""


def next_step(progress: HandoffProgress, *, crm_enabled: bool) -> Step:
    if not progress.assigned:
        return Step.ASSIGN
    if crm_enabled and progress.crm_record_id is None:
        return Step.CRM_UPSERT
    if crm_enabled and progress.crm_activity_id is None:
        return Step.CRM_ACTIVITY
    if progress.notified_at is None:
        return Step.NOTIFY
    return Step.DONE


def needs_delivery(progress: HandoffProgress | None, redrive: int) -> bool:
    """Whether a hand-off record read from the topic still has work: new, pending, or
    dead-lettered and now redriven (a redrive count above the one we last saw)."""
    if progress is None or progress.status is Status.PENDING:
        return True
    if progress.status is Status.DEAD_LETTERED:
        return redrive > progress.redrives
    return False


def awaiting_sales(progress: HandoffProgress) -> bool:
    """Delivered, and sales has not said accepted / rejected (or anything later) yet."""
    return progress.status is Status.DELIVERED and progress.crm_status is None


class FollowUp(StrEnum):
    REMIND = "remind"
    ESCALATE = "escalate"


def followup_due(
    progress: HandoffProgress, now: datetime, *, remind_after_s: float, escalate_after_s: float
) -> FollowUp | None:
    """Remind the rep in the thread `remind_after_s` after the alert, then escalate to the
    team channel `escalate_after_s` after the reminder, unless sales answered meanwhile."""
    if not awaiting_sales(progress) or progress.notified_at is None:
        return None
    if progress.reminded_at is None:
        waited = (now - progress.notified_at).total_seconds()
        return FollowUp.REMIND if waited >= remind_after_s else None
    if progress.escalated_at is None:
        waited = (now - progress.reminded_at).total_seconds()
        return FollowUp.ESCALATE if waited >= escalate_after_s else None
    return None


def forgettable(progress: HandoffProgress, now: datetime, *, keep_s: float) -> bool:
    """A finished record old enough to drop: delivered (or dead-lettered) more than
    `keep_s` ago, longer than the hand-off topic keeps the record that could repeat it."""
    if progress.status is Status.PENDING:
        return False
    done_at = progress.notified_at or progress.first_attempt_at
    return done_at is not None and (now - done_at).total_seconds() >= keep_s
