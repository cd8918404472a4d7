from datetime import UTC, datetime, timedelta

import pytest

from schemas.topics import HANDOFF_PROGRESS
from services.common.errors import ConfigurationError
from services.handoff.assignment_config import parse_assignment_config
from services.handoff.followup import FollowUps, human_duration
from services.handoff.metrics import HandoffMetrics
from services.handoff.notify import MemoryNotifier
from services.handoff.progress import HandoffProgress, Status, forgettable
from services.handoff.service import run_handoff
from services.handoff.settings import HandoffSettings
from services.handoff.state import MemoryKeyedStore, ProgressBook

T0 = datetime(2026, 1, 16, 9, 30, tzinfo=UTC)
CONFIG = parse_assignment_config(
    "teams: [{id: apac, channel: C0APAC, reps: [{id: aiko, slack_id: U0AIKO}]}]"
)


def delivered(handoff_id: str, at: datetime) -> HandoffProgress:
    return HandoffProgress(
        handoff_id=handoff_id,
        lead_id=f"lead-{handoff_id}",
        summary="<!channel> (ACME)",
        status=Status.DELIVERED,
        team_id="apac",
        rep_id="aiko",
        slack_channel="C0APAC",
        slack_ts="1.000100",
        notified_at=at,
    )


async def test_sweep_reminds_in_thread_escalates_to_team_and_forgets_old_records() -> None:
    store = MemoryKeyedStore()
    book = ProgressBook(store, HANDOFF_PROGRESS)
    await book.save(delivered("h1", T0))
    await book.save(delivered("old", T0 - timedelta(days=40)))
    now = [T0 + timedelta(hours=1)]
    notifier = MemoryNotifier()
    followups = FollowUps(
        book,
        CONFIG,
        notifier,
        remind_after_s=3600,
        escalate_after_s=3600,
        now=lambda: now[0],
        metrics=HandoffMetrics(),
        keep_s=30 * 86400,
    )
    assert await followups.sweep() == 1
    channel, reminder, thread = notifier.messages[0]
    assert (channel, thread) == ("C0APAC", "1.000100")
    assert reminder.text.startswith("<@U0AIKO>")
    assert store.records[HANDOFF_PROGRESS]["old"] is None  # tombstone
    assert book.get("old") is None
    assert await followups.sweep() == 0  # not due again
    now[0] = T0 + timedelta(hours=2)
    assert await followups.sweep() == 1
    channel, escalation, thread = notifier.messages[1]
    assert (channel, thread) == ("C0APAC", None)
    assert "&lt;!channel&gt; (ACME)" in escalation.text
    assert "2h" in escalation.text
    assert "<https://slack.example/archives/C0APAC/p1.000100|Alert>" in escalation.text
    now[0] = T0 + timedelta(days=3)
    assert await followups.sweep() == 0
    progress = book.get("h1")
    assert progress is not None
    assert progress.escalated_at == T0 + timedelta(hours=2)


def test_only_finished_old_records_are_forgettable() -> None:
    old = delivered("h", T0)
    assert forgettable(old, T0 + timedelta(days=31), keep_s=30 * 86400)
    assert not forgettable(old, T0 + timedelta(days=29), keep_s=30 * 86400)
    pending = HandoffProgress(handoff_id="p", lead_id="l", first_attempt_at=T0)
    assert not forgettable(pending, T0 + timedelta(days=99), keep_s=1)


def test_human_duration() -> None:
    assert [human_duration(s) for s in (14400, 90, 5)] == ["4h", "1.5 min", "5 s"]


async def test_the_service_refuses_to_forget_progress_before_the_topic_forgets_records() -> None:
    settings = HandoffSettings(progress_keep_days=1, stream_retention_ms=7 * 86_400_000)
    with pytest.raises(ConfigurationError, match="PROGRESS_KEEP_DAYS"):
        await run_handoff(settings, own_signals=False)
