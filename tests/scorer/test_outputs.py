"""The core's outputs (services/scorer/outputs.py), plain values: their record bytes
(`encode`) are those of the pydantic model, and their model (`model`) equals what
validating the same values gives."""

import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

from schemas.codec import encode_event, encode_key
from schemas.data import HandoffRequestedData, LeadAttributes, Segment
from schemas.envelope import CloudEvent
from schemas.event_types import EventType
from schemas.events import HandoffRequested, SegmentChanged
from services.scorer.compiled import compiled
from services.scorer.core import apply_event
from services.scorer.evaluate import Item, Score
from services.scorer.outputs import (
    HandoffOutput,
    Output,
    SegmentOutput,
    handoff_reason,
    handoff_requested,
    segment_changed,
)
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
        for fast_item, slow_item in zip(fast_data.breakdown, slow_data.breakdown, strict=True):
            assert fast_item.model_fields_set == slow_item.model_fields_set


def assert_output(output: Output, reference: CloudEvent) -> None:
    """`output` is `reference`: as a model, as record bytes and key, and its own values."""
    model = output.model()
    assert_same(model, reference)
    assert output.encode() == encode_event(reference)
    assert output.key() == encode_key(reference)
    assert (output.id, output.type, output.subject) == (
        reference.id,
        reference.type,
        reference.subject,
    )
    assert output.time == reference.time
    assert output.time.tzinfo is UTC


def test_outputs_of_a_corpus_equal_the_validated_ones() -> None:
    assert compiled(RULES).plain_outputs
    states: dict[str, LeadState] = {}
    seen = {SegmentChanged: 0, HandoffRequested: 0}
    reasons = set()
    for offset, event in enumerate(build_corpus(400, 12, seed=11)):
        lead = event.subject or ""
        state = states.setdefault(lead, LeadState(lead_id=lead))
        for output in apply_event(state, event, RULES, position=offset).outputs:
            model = output.model()
            seen[type(model)] += 1
            assert_output(output, validated(model))
            if isinstance(output, HandoffOutput):
                assert output.validated is None  # the plain way
                reasons.add(output.model().data.reason.kind)
            else:
                assert isinstance(output, SegmentOutput)
                assert output.validated is None
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
            assert_output(output, validated(output.model()))
            if isinstance(output, HandoffOutput):
                handoffs.append((output.model(), state))
    assert handoffs
    for handoff, state in handoffs:
        assert handoff.data.lead.custom == {"plan": "pro", "seats": 12, "trial": True}
        assert handoff.data.lead.custom is not state.attributes["custom"]


def test_a_handoff_keeps_the_attributes_it_had() -> None:
    state = LeadState(lead_id="lead-1")
    event = build_corpus(1, 1)[0]
    score = Score(10.0, 10.0, 0.0, (Item("mgr", "role", 10.0, ("u1",), "fit"),))
    state.attributes = {"job_title": "部長", "company": "ACME"}
    state.handoffs = 1
    output = handoff_requested_for(state, score, event)
    before = output.encode()
    state.attributes["job_title"] = "担当"
    state.attributes["custom"] = {"x": 1}
    assert output.encode() == before
    assert output.model().data.lead.job_title == "部長"


def handoff_requested_for(state: LeadState, score: Score, event: CloudEvent) -> HandoffOutput:
    reason = handoff_reason(RULES, "threshold", "threshold", "score reached 70")
    return handoff_requested(state, "ho-lead-1-1", reason, score, RULES, event)


def test_rules_without_a_version_still_fail_validation_as_before() -> None:
    rules = RULES.model_copy(update={"version": ""})
    assert not compiled(rules).plain_outputs
    state = LeadState(lead_id="lead-1")
    event = build_corpus(1, 1)[0]
    with pytest.raises(ValueError, match="rules_version"):
        segment_changed(state, "mid", 55.0, rules, event)


def test_a_reason_too_long_fails_validation_as_before() -> None:
    rules = RULES.model_copy(update={"version": ""})  # not plain: reasons are validated
    with pytest.raises(ValidationError, match="detail"):
        handoff_reason(rules, "trigger", "t", "x" * 2000)
    assert handoff_reason(RULES, "trigger", "t", "ok") == ("trigger", "t", "ok")


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
    assert out.validated is not None
    assert out.time.tzinfo is UTC
    assert out.time == event.time
    assert out.encode() == encode_event(out.model())
    assert (
        out.encode()
        == segment_changed(LeadState(lead_id="lead-1"), "mid", 55.0, RULES, event).encode()
    )
    swept = segment_changed(
        LeadState(lead_id="lead-1"), "low", 5.0, RULES, None, datetime(2026, 3, 1, tzinfo=tokyo)
    )
    assert swept.validated is not None
    assert swept.time.tzinfo is UTC
    assert swept.model().data.cause_event_id is None
    assert swept.cause_event_id is None
    assert b"cause_event_id" not in swept.encode()
    assert swept.encode() == encode_event(swept.model())


def test_what_orjson_cannot_write_pydantic_writes_or_refuses_as_before() -> None:
    event = build_corpus(1, 1)[0]
    score = Score(10.0, 10.0, 0.0, ())
    state = LeadState(lead_id="lead-1")
    state.handoffs = 1
    state.attributes = {"company_size": 2**70}  # beyond orjson's 64-bit integers
    big = handoff_requested_for(state, score, event)
    assert big.encode() == encode_event(big.model())
    assert b'"company_size":1180591620717411303424' in big.encode()
    state.attributes = {"company": "\ud800"}  # a lone surrogate: not UTF-8
    lone = handoff_requested_for(state, score, event)
    with pytest.raises(PydanticSerializationError):
        encode_event(lone.model())
    with pytest.raises(PydanticSerializationError):
        lone.encode()


# --- any values: the plain outputs against the validated models (hypothesis) -------

TEXT = st.text(max_size=40)
REFS = st.text(min_size=1, max_size=40)
LEAD_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,40}", fullmatch=True)
TIMES = st.datetimes(timezones=st.just(UTC))
FLOATS = st.floats(allow_nan=False)  # nan != nan: models holding one never compare equal
SEGMENTS = st.sampled_from(list(Segment))
ATTRIBUTES: dict[str, st.SearchStrategy[Any]] = {
    "email": st.from_regex(r"[a-z0-9.+_-]{1,10}@[a-z0-9.-]{1,10}", fullmatch=True),
    "first_name": TEXT,
    "last_name": TEXT,
    "company": TEXT,
    "company_domain": TEXT,
    "job_title": TEXT,
    "role": TEXT,
    "industry": TEXT,
    "company_size": st.integers(min_value=0, max_value=2**80),
    "country": st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2),
    "region": TEXT,
    "custom": st.dictionaries(
        REFS,
        st.one_of(TEXT, st.integers(min_value=-(2**70), max_value=2**70), FLOATS, st.booleans()),
        max_size=4,
    ),
}
assert set(ATTRIBUTES) == set(LeadAttributes.model_fields)


@st.composite
def attributes(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(ATTRIBUTES)), unique=True, max_size=6))
    draw(st.randoms()).shuffle(names)  # a lead's attributes arrive in any order
    return {name: draw(ATTRIBUTES[name]) for name in names}


@st.composite
def items(draw: st.DrawFn) -> Item:
    return Item(
        draw(REFS),
        draw(st.none() | REFS),
        draw(FLOATS),
        tuple(draw(st.lists(REFS, max_size=3))),
        draw(st.sampled_from(["fit", "engagement", "limit"])),
    )


def envelope(output: Output, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": output.id,
        "source": "/scorer",
        "subject": output.subject,
        "time": output.time,
        "data": data,
    }


@settings(max_examples=300, deadline=None)
@given(
    REFS,
    LEAD_IDS,
    TIMES,
    st.none() | SEGMENTS,
    SEGMENTS,
    FLOATS,
    REFS,
    st.none() | REFS,
)
def test_any_segment_change(
    event_id: str,
    lead_id: str,
    time: datetime,
    previous: Segment | None,
    segment: Segment,
    score: float,
    version: str,
    cause: str | None,
) -> None:
    before = previous.value if previous is not None else None
    output = SegmentOutput(event_id, lead_id, time, before, segment.value, score, version, cause)
    data = {
        "lead_id": lead_id,
        "previous": before,
        "segment": segment.value,
        "score": score,
        "rules_version": version,
        "cause_event_id": cause,
    }
    assert_output(output, SegmentChanged.model_validate(envelope(output, data)))


@settings(max_examples=300, deadline=None)
@given(
    REFS,
    LEAD_IDS,
    TIMES,
    st.integers(min_value=1, max_value=10**6),
    st.tuples(st.sampled_from(["threshold", "trigger"]), REFS, TEXT),
    st.tuples(FLOATS, FLOATS, FLOATS, st.lists(items(), max_size=6)),
    SEGMENTS,
    attributes(),
    REFS,
    REFS,
)
def test_any_handoff(
    handoff_id: str,
    lead_id: str,
    time: datetime,
    sequence: int,
    reason: tuple[str, str, str],
    parts: tuple[float, float, float, list[Item]],
    segment: Segment,
    lead: dict[str, Any],
    trigger: str,
    version: str,
) -> None:
    score = Score(parts[0], parts[1], parts[2], tuple(parts[3]))
    output = HandoffOutput(
        handoff_id, lead_id, time, sequence, reason, score, segment, lead, trigger, version
    )
    kind, name, detail = reason
    data = {
        "handoff_id": handoff_id,
        "lead_id": lead_id,
        "sequence": sequence,
        "reason": {"kind": kind, "name": name, "detail": detail},
        "score": score.score,
        "fit": score.fit,
        "engagement": score.engagement,
        "segment": segment.value,
        "breakdown": [item.to_dict() for item in score.items],
        "lead": lead,
        "trigger_event_id": trigger,
        "trigger_event_time": time,
        "rules_version": version,
    }
    reference = HandoffRequested.model_validate(envelope(output, data))
    assert output.type == EventType.HANDOFF_REQUESTED
    assert_output(output, reference)
