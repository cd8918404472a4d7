"""Building input events for the scorer's tests."""

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.envelope import CloudEvent
from schemas.event_types import EventType
from schemas.events import event_model

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def make_event(
    event_id: str,
    short_type: str,
    data: dict[str, Any],
    *,
    lead: str = "lead-1",
    hours: float = 0.0,
    bot: str | None = None,
) -> CloudEvent:
    event_type = EventType.from_name(short_type)
    return event_model(event_type).model_validate(
        {
            "id": event_id,
            "source": "/test",
            "type": event_type.value,
            "subject": lead,
            "time": T0 + timedelta(hours=hours),
            "data": data,
            "bot": bot,
        }
    )
