"""Time from qualification to sales' first CRM status, observed by the feedback consumer."""

from datetime import UTC, datetime, timedelta

from schemas.data import CrmStatus, CrmStatusChangedData
from schemas.events import CrmStatusChanged
from schemas.topics import HANDOFF_PROGRESS
from services.handoff.assignment import AssignmentState
from services.handoff.assignment_config import parse_assignment_config
from services.handoff.consumer import FeedbackConsumer
from services.handoff.metrics import HandoffMetrics
from services.handoff.progress import HandoffProgress, Status
from services.handoff.state import AssignmentBook, MemoryKeyedStore, ProgressBook

T0 = datetime(2026, 1, 16, 9, 30, tzinfo=UTC)
CONFIG = parse_assignment_config("teams: [{id: t, channel: C0T, reps: [{id: r, slack_id: U0R}]}]")


def status(lead: str, handoff_id: str, value: CrmStatus, at: datetime) -> CrmStatusChanged:
    return CrmStatusChanged(
        id=f"crm-{lead}-{value.value}",
        source="/v1/crm/feedback",
        subject=lead,
        time=at,
        data=CrmStatusChangedData(status=value, handoff_id=handoff_id),
    )


def sample(metrics: HandoffMetrics, name: str, labels: dict[str, str]) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_first_status_is_observed_from_the_qualifying_event_once() -> None:
    store = MemoryKeyedStore()
    progress = ProgressBook(store, HANDOFF_PROGRESS)
    assignments = AssignmentBook(CONFIG, AssignmentState({}, {}), store, "assignments")
    await progress.save(
        HandoffProgress(
            handoff_id="h1",
            lead_id="lead-1",
            status=Status.DELIVERED,
            notified_at=T0 + timedelta(seconds=5),
            qualified_at=T0,
        )
    )
    # an older record without qualified_at falls back to the alert's time
    await progress.save(
        HandoffProgress(handoff_id="h2", lead_id="lead-2", status=Status.DELIVERED, notified_at=T0)
    )
    metrics = HandoffMetrics()
    feedback = FeedbackConsumer(None, assignments, progress, metrics)  # type: ignore[arg-type]

    await feedback.apply(status("lead-1", "h1", CrmStatus.ACCEPTED, T0 + timedelta(minutes=40)))
    await feedback.apply(status("lead-1", "h1", CrmStatus.OPPORTUNITY, T0 + timedelta(days=2)))
    await feedback.apply(status("lead-2", "h2", CrmStatus.REJECTED, T0 + timedelta(hours=3)))

    name = "hotlead_handoff_qualified_to_sales_status_seconds"
    accepted = {"status": "accepted"}
    assert sample(metrics, f"{name}_count", accepted) == 1
    assert sample(metrics, f"{name}_sum", accepted) == 2400
    assert sample(metrics, f"{name}_bucket", {**accepted, "le": "1800.0"}) == 0
    assert sample(metrics, f"{name}_bucket", {**accepted, "le": "3600.0"}) == 1
    # only the first answer on a hand-off counts (the opportunity came later)
    assert sample(metrics, f"{name}_count", {"status": "opportunity"}) == 0
    assert sample(metrics, f"{name}_sum", {"status": "rejected"}) == 3 * 3600
