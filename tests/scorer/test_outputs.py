"""The core's outputs, assembled without validation (services/scorer/outputs.py),
equal what validating the same values gives, down to the record bytes."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel

from schemas.codec import encode_event
from schemas.data import HandoffRequestedData, SegmentChangedData
from schemas.envelope import CloudEvent
from schemas.events import HandoffRequested, SegmentChanged
from services.scorer.compiled import compiled
from services.scorer.core import apply_event
from services.scorer.outputs import segment_changed
from services.scorer.rules import load_rules, parse_rules
from services.scorer.state import LeadState
from tests.scorer.corpus import build_corpus

RULES = load_rules()


def validated(event: CloudEvent) -> CloudEvent:
    """The same output, made the validated way: from the values the event was given."""
    data: BaseModel = event.data  # type: ignore[attr-defined]
    given: dict[str, Any] = {name: getattr(data, name) for name in data.model_fields_set}
    if isinstance(data, HandoffRequestedData):
        given["reason"] = data.reason.model_dump(exclude_unset=True)
        given["lead"] = data.lead.model_dump(exclude_unset=True)
        given["breakdown"] = [item.model_dump(exclude_unset=True) for item in data.breakdown]
    envelope = {name: getattr(event, name) for name in event.model_fields_set}
    envelope["data"] = given
    return type(event).model_validate(envelope)


def assert_same(fast: CloudEvent, slow: CloudEvent) -> None:
    assert fast == slow
    assert encode_event(fast) == encode_event(slow)
    assert fast.model_dump_json() == slow.model_dump_json()  # None fields too
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.model_extra == slow.model_extra
    fast_data, slow_data = fast.data, slow.data  # type: ignore[attr-defined]
    assert fast_data.model_fields_set == slow_data.model_fields_set
    assert list(fast_data.__dict__) == list(slow_data.__dict__)
    for name, value in slow_data.__dict__.items():
        assert type(fast_data.__dict__[name]) is type(value), name
    if isinstance(fast_data, HandoffRequestedData):
        assert fast_data.lead.model_fields_set == slow_data.lead.model_fields_set
        assert fast_data.reason.model_fields_set == slow_data.reason.model_fields_set


def test_outputs_of_a_corpus_equal_the_validated_ones() -> None:
    assert compiled(RULES).plain_outputs
    states: dict[str, LeadState] = {}
    seen = {SegmentChanged: 0, HandoffRequested: 0}
    reasons = set()
    for offset, event in enumerate(build_corpus(400, 12, seed=11)):
        lead = event.subject or ""
        state = states.setdefault(lead, LeadState(lead_id=lead))
        for output in apply_event(state, event, RULES, position=offset).outputs:
            seen[type(output)] += 1
            assert_same(output, validated(output))
            if isinstance(output, HandoffRequested):
                reasons.add(output.data.reason.kind)
    assert seen[SegmentChanged] > 100
    assert seen[HandoffRequested] > 20
    assert reasons == {"threshold", "trigger"}


def test_handoffs_with_custom_attributes() -> None:
    states: dict[str, LeadState] = {}
    handoffs = []
    for offset, event in enumerate(build_corpus(100, 12, seed=3)):
        lead = event.subject or ""
        state = states.get(lead)
        if state is None:
            state = states[lead] = LeadState(lead_id=lead)
            state.attributes = {"custom": {"plan": "pro", "seats": 12, "trial": True}}
            state.attribute_events = {"custom": "u0"}
        for output in apply_event(state, event, RULES, position=offset).outputs:
            assert_same(output, validated(output))
            if isinstance(output, HandoffRequested):
                handoffs.append((output, state))
    assert handoffs
    for handoff, state in handoffs:
        assert handoff.data.lead.custom == {"plan": "pro", "seats": 12, "trial": True}
        assert handoff.data.lead.custom is not state.attributes["custom"]


def test_rules_without_a_version_still_fail_validation_as_before() -> None:
    rules = RULES.model_copy(update={"version": ""})
    assert not compiled(rules).plain_outputs
    state = LeadState(lead_id="lead-1")
    event = build_corpus(1, 1)[0]
    with pytest.raises(ValueError, match="rules_version"):
        segment_changed(state, "mid", 55.0, rules, event)


def test_a_long_group_name_or_detail_turns_validation_back_on() -> None:
    long_group = parse_rules(
        f"""
        name: long
        groups: {{{"g" * 240}: {{cap: 5}}}}
        engagement: [{{name: o, group: {"g" * 240}, event: email.opened, points: 1}}]
        """
    )
    assert not compiled(long_group).plain_outputs
    assert compiled(parse_rules("name: short")).plain_outputs


def test_a_sweep_or_a_time_outside_utc_is_validated_and_normalised() -> None:
    event = build_corpus(1, 1)[0]
    tokyo = timezone(timedelta(hours=9))
    odd = event.model_copy(update={"time": event.time.astimezone(tokyo)})  # not revalidated
    out = segment_changed(LeadState(lead_id="lead-1"), "mid", 55.0, RULES, odd)
    assert out.time.tzinfo is UTC
    assert out.time == event.time
    swept = segment_changed(
        LeadState(lead_id="lead-1"), "low", 5.0, RULES, None, datetime(2026, 3, 1, tzinfo=tokyo)
    )
    assert swept.time.tzinfo is UTC
    assert swept.data.cause_event_id is None
    assert isinstance(swept.data, SegmentChangedData)
