from datetime import UTC, datetime, timedelta

from schemas.data import CrmStatus
from services.handoff.progress import (
    FollowUp,
    HandoffProgress,
    Status,
    Step,
    followup_due,
    needs_delivery,
    next_step,
)

T0 = datetime(2026, 1, 16, 9, 30, tzinfo=UTC)


def test_steps_resume_where_the_last_run_stopped() -> None:
    progress = HandoffProgress(handoff_id="h", lead_id="l")
    assert next_step(progress, crm_enabled=True) is Step.ASSIGN
    progress = progress.model_copy(update={"assigned": True, "rep_id": "aiko"})
    assert next_step(progress, crm_enabled=True) is Step.CRM_UPSERT
    assert next_step(progress, crm_enabled=False) is Step.NOTIFY
    progress = progress.model_copy(update={"crm_record_id": "00Q1"})
    assert next_step(progress, crm_enabled=True) is Step.CRM_ACTIVITY
    progress = progress.model_copy(update={"crm_activity_id": "00T1"})
    assert next_step(progress, crm_enabled=True) is Step.NOTIFY
    progress = progress.model_copy(update={"notified_at": T0, "slack_ts": "1.2"})
    assert next_step(progress, crm_enabled=True) is Step.DONE


def test_delivered_is_never_redone_dead_letters_only_on_a_newer_redrive() -> None:
    assert needs_delivery(None, 0)
    assert needs_delivery(HandoffProgress(handoff_id="h", lead_id="l"), 0)
    delivered = HandoffProgress(handoff_id="h", lead_id="l", status=Status.DELIVERED)
    assert not needs_delivery(delivered, 5)
    dead = HandoffProgress(handoff_id="h", lead_id="l", status=Status.DEAD_LETTERED, redrives=1)
    assert not needs_delivery(dead, 0)
    assert not needs_delivery(dead, 1)
    assert needs_delivery(dead, 2)


def test_progress_survives_a_json_round_trip() -> None:
    progress = HandoffProgress(
        handoff_id="h", lead_id="l", assigned=True, notified_at=T0, crm_status=CrmStatus.ACCEPTED
    )
    assert HandoffProgress.model_validate_json(progress.model_dump_json()) == progress


def test_followup_reminds_then_escalates_unless_sales_answered() -> None:
    sent = HandoffProgress(handoff_id="h", lead_id="l", status=Status.DELIVERED, notified_at=T0)
    due = {"remind_after_s": 3600, "escalate_after_s": 7200}
    assert followup_due(sent, T0 + timedelta(minutes=59), **due) is None
    assert followup_due(sent, T0 + timedelta(hours=1), **due) is FollowUp.REMIND
    reminded = sent.model_copy(update={"reminded_at": T0 + timedelta(hours=1)})
    assert followup_due(reminded, T0 + timedelta(hours=2), **due) is None
    assert followup_due(reminded, T0 + timedelta(hours=3), **due) is FollowUp.ESCALATE
    escalated = reminded.model_copy(update={"escalated_at": T0 + timedelta(hours=3)})
    assert followup_due(escalated, T0 + timedelta(days=3), **due) is None
    answered = sent.model_copy(update={"crm_status": CrmStatus.ACCEPTED})
    assert followup_due(answered, T0 + timedelta(days=3), **due) is None
