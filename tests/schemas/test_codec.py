from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from schemas import decode_event, encode_event
from schemas.codec import EventDecodeError, encode_key
from schemas.envelope import CloudEvent
from schemas.events import LeadUpdated, PageViewed
from services.scorer.core import apply_event
from services.scorer.rules import load_rules
from services.scorer.state import LeadState
from tests.scorer.corpus import build_corpus

JST = timezone(timedelta(hours=9))


def page_view(**overrides: object) -> PageViewed:
    fields: dict[str, object] = {
        "id": "pv-1",
        "source": "/beacon",
        "subject": "lead-1",
        "time": datetime(2026, 1, 16, 18, 30, tzinfo=JST),
        "data": {"url": "https://example.com/pricing"},
    }
    fields.update(overrides)
    return PageViewed.model_validate(fields)


def test_time_is_stored_in_utc() -> None:
    event = page_view()
    assert event.time == datetime(2026, 1, 16, 9, 30, tzinfo=UTC)
    assert b'"time":"2026-01-16T09:30:00Z"' in encode_event(event)


def test_time_without_an_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        page_view(time="2026-01-16T09:30:00")


def test_key_is_the_lead_id() -> None:
    assert encode_key(page_view()) == b"lead-1"


def test_unknown_extensions_survive_a_round_trip() -> None:
    record = encode_event(page_view(traceparent="00-abc-def-01"))
    assert b'"traceparent":"00-abc-def-01"' in encode_event(decode_event(record))


def test_decode_errors_say_which_field_is_wrong() -> None:
    record = encode_event(page_view()).replace(b'"url":"https://example.com/pricing"', b'"uri":"x"')
    with pytest.raises(EventDecodeError) as caught:
        decode_event(record)
    assert any("data.url: Field required" in line for line in caught.value.errors)
    assert any("data.uri: Extra inputs are not permitted" in line for line in caught.value.errors)


def test_an_unknown_type_does_not_decode() -> None:
    record = encode_event(page_view()).replace(b"hotlead.page.viewed", b"hotlead.page.read")
    with pytest.raises(EventDecodeError, match="type"):
        decode_event(record)


def test_lead_ids_cannot_be_email_addresses() -> None:
    with pytest.raises(ValueError, match="subject"):
        page_view(subject="taro@example.co.jp")


def test_lead_update_carries_only_the_given_attributes() -> None:
    event = LeadUpdated.model_validate(
        {
            "id": "u1",
            "source": "/v1/leads",
            "subject": "lead-1",
            "time": "2026-01-16T09:30:00Z",
            "data": {"attributes": {"job_title": "営業部長"}},
        }
    )
    assert encode_event(event).endswith(
        b'"data":{"attributes":{"job_title":"\xe5\x96\xb6\xe6\xa5\xad\xe9\x83\xa8\xe9\x95\xb7"}}}'
    )


def _every_example_and_scorer_output() -> list[CloudEvent]:
    """The schema examples, a scorer corpus, and the outputs the scorer makes of it."""
    examples = Path(__file__).resolve().parents[2] / "schemas" / "examples"
    events: list[CloudEvent] = [decode_event(path.read_bytes()) for path in examples.glob("*.json")]
    rules, states = load_rules(), dict[str, LeadState]()
    for position, event in enumerate(build_corpus(200, 10)):
        events.append(event)
        lead = event.subject or ""
        state = states.setdefault(lead, LeadState(lead_id=lead))
        outputs = apply_event(state, event, rules, position=position).outputs
        events.extend(output.model() for output in outputs)
    return events


def test_encode_event_writes_the_bytes_of_model_dump_json() -> None:
    events = _every_example_and_scorer_output()
    assert len({type(event) for event in events}) >= 17  # every event type
    for event in events:
        assert encode_event(event) == event.model_dump_json(exclude_none=True).encode()
