from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.envelope import CloudEvent
from services.ingest.incoming import Invalid, build_event

NOW = datetime(2026, 1, 16, tzinfo=UTC)
GOOD = {"type": "page.viewed", "lead_id": "lead-1", "data": {"url": "https://a.example/"}}


def build(item: Any) -> CloudEvent | Invalid:
    return build_event(item, source="/v1/events/crm", received_at=NOW)


def test_a_plain_item_becomes_an_event() -> None:
    event = build({**GOOD, "id": "e-1", "time": "2026-01-16T09:00:00+09:00"})
    assert isinstance(event, CloudEvent)
    assert (event.id, event.subject, event.time) == (
        "e-1",
        "lead-1",
        datetime(2026, 1, 16, tzinfo=UTC),
    )
    assert event.receivedat == NOW


def test_without_an_id_the_same_content_gets_the_same_id() -> None:
    first, second, other = build(GOOD), build(dict(GOOD)), build({**GOOD, "lead_id": "lead-2"})
    assert isinstance(first, CloudEvent)
    assert isinstance(second, CloudEvent)
    assert isinstance(other, CloudEvent)
    assert first.id == second.id != other.id


@pytest.mark.parametrize(
    ("item", "error"),
    [
        ({**GOOD, "lead_id": "ann@example.com"}, "lead_id: String should match pattern"),
        ({**GOOD, "lead_id": 7}, "lead_id: Input should be a valid string"),
        ({**GOOD, "extra": 1}, "extra: Extra inputs are not permitted"),
        ({**GOOD, "id": ""}, "id: String should have at least 1 character"),
        ({**GOOD, "time": "yesterday"}, "time: Input should be a valid datetime"),
        ({**GOOD, "time": "2026-01-16T09:00:00"}, "time: Input should have timezone info"),
        ({**GOOD, "data": {}}, "data.url: Field required"),
        ({**GOOD, "data": {"url": "u", "colour": "red"}}, "data.colour: Extra inputs"),
        ({k: v for k, v in GOOD.items() if k != "lead_id"}, "lead_id: Field required"),
        ({**GOOD, "type": "teleport"}, "type: unknown event type 'teleport'"),
        ({**GOOD, "type": "segment.changed"}, "type: segment.changed is not accepted"),
    ],
)
def test_invalid_items_say_what_to_fix_in_public_names(item: dict[str, Any], error: str) -> None:
    result = build(item)
    assert isinstance(result, Invalid)
    assert any(line.startswith(error) for line in result.errors), result.errors
