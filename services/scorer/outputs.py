"""The events the core emits (SegmentChanged, HandoffRequested), built without
re-validating values that are valid by construction.

Validating an output (`Model.model_validate`) cost the core about a fifth of its
time: a segment change or a hand-off follows about one event in four. Every
value in an output is already valid: ids and times come from validated events,
segments are `Segment` members, rule and group names and the rules version were
checked when the rules were loaded (`Compiled.plain_outputs`), attributes were
validated when an event set them. So the models are assembled as pydantic's own
`model_construct` does (the fields in declaration order, the set of fields
given, no extra), in a fraction of its time. When a value is not known valid
(rules not loaded by `load_rules`, an odd lead id, a sweep's caller-given time),
the output is validated as before, and fails as before.

tests/scorer/test_outputs.py checks that both ways give equal models and
byte-identical records.
"""

import re
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from pydantic import BaseModel

from schemas.data import (
    BreakdownItem,
    HandoffReason,
    HandoffRequestedData,
    LeadAttributes,
    Segment,
    SegmentChangedData,
)
from schemas.envelope import CloudEvent
from schemas.event_types import EventType
from schemas.events import HandoffRequested, SegmentChanged
from services.scorer.compiled import compiled
from services.scorer.evaluate import Score, segment_of
from services.scorer.native import check_fresh
from services.scorer.rules import Rules
from services.scorer.state import LeadState

check_fresh(__file__)  # compiled by mypyc: refuse to run a stale build (native.py)

SOURCE: Final = "/scorer"
M = TypeVar("M", bound=BaseModel)

# Final: compiled, each is a C static (no lookup in the module's dict)
_new: Final = object.__new__  # what BaseModel.__new__ is
_SLOTS: Final = BaseModel.__dict__
_set_dict: Final = _SLOTS["__dict__"].__set__  # object.__setattr__ without its lookup
_set_fields_set: Final = _SLOTS["__pydantic_fields_set__"].__set__
_set_extra: Final = _SLOTS["__pydantic_extra__"].__set__
_set_private: Final = _SLOTS["__pydantic_private__"].__set__
_SEGMENTS: Final = {segment.value: segment for segment in Segment}
_LEAD_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}").fullmatch
"""schemas.envelope.LeadId's pattern."""
_VALID_LEADS: Final[dict[str, bool]] = {}
"""Lead ids already checked against _LEAD_ID (emptied when large)."""
_ATTRIBUTES: Final = frozenset(LeadAttributes.model_fields)
_NO_ATTRIBUTES: Final = dict.fromkeys(LeadAttributes.model_fields)
"""Every LeadAttributes field, None, in declaration order."""
_HANDOFF_FIELDS: Final = frozenset(HandoffRequestedData.model_fields)
_SEGMENT_CHANGED: Final = EventType.SEGMENT_CHANGED
_HANDOFF_REQUESTED: Final = EventType.HANDOFF_REQUESTED
_UTC: Final = UTC


def _valid_lead(lead_id: str) -> bool:
    """Whether `lead_id` matches schemas.envelope.LeadId (remembered: a lead emits
    many outputs)."""
    known = _VALID_LEADS.get(lead_id)
    if known is not None:
        return known
    valid = _LEAD_ID(lead_id) is not None
    if len(_VALID_LEADS) >= 100_000:
        _VALID_LEADS.clear()
    _VALID_LEADS[lead_id] = valid
    return valid


def _model(
    cls: type[M], values: dict[str, Any], given: set[str], extra: dict[str, Any] | None
) -> M:
    """An instance of `cls` with `values` (every field, in declaration order) as they
    are: what `cls.model_construct` makes, without its per-field default lookups."""
    model = _new(cls)
    _set_dict(model, values)  # the slots' own setters: no name lookup
    _set_fields_set(model, given)
    _set_extra(model, extra)
    _set_private(model, None)
    return model


def _envelope(
    cls: type[M], event_type: EventType, event_id: str, subject: str, time: datetime, data: Any
) -> M:
    return _model(
        cls,
        {
            "specversion": "1.0",
            "id": event_id,
            "source": SOURCE,
            "type": event_type,
            "subject": subject,
            "time": time,
            "datacontenttype": "application/json",
            "bot": None,
            "receivedat": None,
            "data": data,
        },
        {"id", "source", "subject", "time", "data"},
        {},
    )


def segment_changed(
    state: LeadState,
    segment: str,
    score: float,
    rules: Rules,
    event: CloudEvent | None,
    now: datetime | None = None,
) -> SegmentChanged:
    """Move `state` to `segment` and return the event saying so (`event`: the cause;
    None for a sweep at `now`)."""
    previous = state.segment
    state.segment = segment
    state.segment_changes += 1
    lead_id = state.lead_id
    event_id = f"seg-{lead_id}-{state.segment_changes}"
    if event is not None and compiled(rules).plain_outputs and _valid_lead(lead_id):
        values = event.__dict__  # (read once: see core.apply_event)
        when: datetime = values["time"]
        before = _SEGMENTS.get(previous) if previous is not None else None
        after = _SEGMENTS.get(segment)
        if when.tzinfo is _UTC and after is not None and (before is not None or previous is None):
            data = _model(
                SegmentChangedData,
                {
                    "lead_id": lead_id,
                    "previous": before,
                    "segment": after,
                    "score": score,
                    "rules_version": rules.version,
                    "cause_event_id": values["id"],
                },
                {"lead_id", "previous", "segment", "score", "rules_version", "cause_event_id"},
                None,
            )
            return _envelope(SegmentChanged, _SEGMENT_CHANGED, event_id, lead_id, when, data)
    time = event.time if event is not None else (now or datetime.fromtimestamp(0, UTC))
    return SegmentChanged.model_validate(
        {
            "id": event_id,
            "source": SOURCE,
            "subject": lead_id,
            "time": time,
            "data": {
                "lead_id": lead_id,
                "previous": previous,
                "segment": segment,
                "score": score,
                "rules_version": rules.version,
                "cause_event_id": event.id if event is not None else None,
            },
        }
    )


def handoff_reason(rules: Rules, kind: str, name: str, detail: str) -> HandoffReason:
    if compiled(rules).plain_outputs:
        return _model(
            HandoffReason,
            {"kind": kind, "name": name, "detail": detail},
            {"kind", "name", "detail"},
            None,
        )
    return HandoffReason(kind=kind, name=name, detail=detail)


def handoff_requested(
    state: LeadState,
    handoff_id: str,
    reason: HandoffReason,
    score: Score,
    rules: Rules,
    event: CloudEvent,
) -> HandoffRequested:
    """The hand-off of `state`'s current qualification (its sequence: `state.handoffs`)."""
    lead_id = state.lead_id
    attributes = state.attributes
    if (
        event.time.tzinfo is _UTC
        and compiled(rules).plain_outputs
        and _valid_lead(lead_id)
        and _ATTRIBUTES.issuperset(attributes)
    ):
        lead_values: dict[str, Any] = _NO_ATTRIBUTES.copy()
        lead_values.update(attributes)
        custom = lead_values["custom"]
        if custom is not None:
            lead_values["custom"] = dict(custom)
        lead = _model(LeadAttributes, lead_values, set(attributes), None)
        breakdown = [
            _model(
                BreakdownItem,
                {"rule": rule, "group": group, "part": part, "points": points, "events": [*events]},
                {"rule", "group", "part", "points", "events"},
                None,
            )
            # unpacked: compiled, a named tuple's fields are read as tuple items
            for rule, group, points, events, part in score.items
        ]
        data = _model(
            HandoffRequestedData,
            _handoff_data(state, handoff_id, reason, score, rules, event, breakdown, lead),
            set(_HANDOFF_FIELDS),
            None,
        )
        return _envelope(
            HandoffRequested, _HANDOFF_REQUESTED, handoff_id, lead_id, event.time, data
        )
    return HandoffRequested.model_validate(
        {
            "id": handoff_id,
            "source": SOURCE,
            "subject": lead_id,
            "time": event.time,
            "data": _handoff_data(
                state,
                handoff_id,
                reason,
                score,
                rules,
                event,
                [item.to_dict() for item in score.items],
                attributes,
            ),
        }
    )


def _handoff_data(
    state: LeadState,
    handoff_id: str,
    reason: HandoffReason,
    score: Score,
    rules: Rules,
    event: CloudEvent,
    breakdown: object,
    lead: object,
) -> dict[str, Any]:
    """A hand-off's data fields, for the direct build (models) and the validated one
    (plain values): one list of fields, so the two can never differ."""
    return {
        "handoff_id": handoff_id,
        "lead_id": state.lead_id,
        "sequence": state.handoffs,
        "reason": reason,
        "score": score.score,
        "fit": score.fit,
        "engagement": score.engagement,
        "segment": segment_of(score.score, rules),
        "breakdown": breakdown,
        "lead": lead,
        "trigger_event_id": event.id,
        "trigger_event_time": event.time,
        "rules_version": rules.version,
    }
