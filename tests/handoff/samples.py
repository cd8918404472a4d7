"""Hand-off events for tests, built like the scorer builds them."""

from datetime import UTC, datetime
from typing import Any

from schemas.data import (
    BreakdownItem,
    HandoffReason,
    HandoffRequestedData,
    LeadAttributes,
    Segment,
)
from schemas.events import HandoffRequested


def handoff_data(lead_id: str = "lead-1", sequence: int = 1, **lead: Any) -> HandoffRequestedData:
    attributes = {
        "email": f"{lead_id}@example.com",
        "first_name": "Taro",
        "last_name": "Yamada",
        "company": "Example KK",
        "job_title": "営業部長",
        "industry": "software",
        "company_size": 320,
        "country": "JP",
        **lead,
    }
    return HandoffRequestedData(
        handoff_id=f"ho-{lead_id}-{sequence}",
        lead_id=lead_id,
        sequence=sequence,
        reason=HandoffReason(kind="threshold", name="threshold", detail="score 72 >= 70"),
        score=72.0,
        fit=35.0,
        engagement=37.0,
        segment=Segment.HIGH,
        breakdown=[
            BreakdownItem(rule="role_manager", group="fit", points=20.0, events=["e1"]),
            BreakdownItem(rule="pricing_page", group="engagement", points=12.5, events=["e2"]),
            BreakdownItem(rule="whitepaper", group="engagement", points=14.5, events=["e3"]),
            BreakdownItem(rule="email_click", group="engagement", points=3.0, events=["e4"]),
            BreakdownItem(rule="webinar", group="engagement", points=7.0, events=["e5"]),
        ],
        lead=LeadAttributes(**attributes),
        trigger_event_id="e2",
        trigger_event_time=datetime(2026, 1, 16, 9, 30, tzinfo=UTC),
        rules_version="default@test",
    )


def handoff_event(
    lead_id: str = "lead-1", sequence: int = 1, time: datetime | None = None, **lead: Any
) -> HandoffRequested:
    data = handoff_data(lead_id, sequence, **lead)
    if time is not None:
        data = data.model_copy(update={"trigger_event_time": time})
    return HandoffRequested(
        id=data.handoff_id,
        source="/scorer",
        subject=lead_id,
        time=data.trigger_event_time,
        data=data,
    )
