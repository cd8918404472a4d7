"""The events the core emits (SegmentChanged, HandoffRequested), as plain values.

An output is a small native object holding its values, not a pydantic model:
building the ~13 models of a hand-off (envelope, data, reason, lead, one
BreakdownItem per rule) took a third of the core's time, and the worker only
needs the record bytes. `encode()` writes those bytes straight from the values
with orjson: the bytes `schemas.codec.encode_event` gives for the model
(fields in declaration order, no null attributes, times as `...Z`, the same
float and string formatting; what orjson cannot write, such as an integer
beyond 64 bits, is written by pydantic). `model()` builds the pydantic model
on demand (tests, anything reading `.data`), as `model_construct` does.

Every value of an output is valid as it is: ids and times come from validated
events, segments are `Segment` values, rule and group names and the rules
version were checked when the rules were loaded (`Compiled.plain_outputs`),
attributes were validated when an event set them. When a value is not known
valid (rules not loaded by `load_rules`, an odd lead id, a time outside UTC, a
sweep's caller-given time), the output is validated when it is made, fails as
before, and its model and bytes are those of the validated model.

tests/scorer/test_outputs.py checks that both ways give equal models and
byte-identical records.
"""

import re
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import orjson
from pydantic import BaseModel

from schemas.codec import encode_event
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
from services.scorer.evaluate import Item, Score, segment_of
from services.scorer.native import check_fresh
from services.scorer.rules import Rules
from services.scorer.state import LeadState

check_fresh(__file__)  # compiled by mypyc: refuse to run a stale build (native.py)

SOURCE: Final = "/scorer"
Reason = tuple[str, str, str]
"""A hand-off's reason: (kind, name, detail), the fields of HandoffReason."""
M = TypeVar("M", bound=BaseModel)

# Final: compiled, each is a C static (no lookup in the module's dict)
_dumps: Final = orjson.dumps
_UTC_Z: Final = orjson.OPT_UTC_Z
_EncodeError: Final = orjson.JSONEncodeError
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
_ATTRIBUTE_NAMES: Final = tuple(LeadAttributes.model_fields)
_ATTRIBUTES: Final = frozenset(_ATTRIBUTE_NAMES)
_NO_ATTRIBUTES: Final = dict.fromkeys(_ATTRIBUTE_NAMES)
"""Every LeadAttributes field, None, in declaration order."""
_HANDOFF_FIELDS: Final = frozenset(HandoffRequestedData.model_fields)
_SEGMENT_FIELDS: Final = frozenset(SegmentChangedData.model_fields)
_ENVELOPE_FIELDS: Final = frozenset({"id", "source", "subject", "time", "data"})
_SEGMENT_CHANGED: Final = EventType.SEGMENT_CHANGED
_HANDOFF_REQUESTED: Final = EventType.HANDOFF_REQUESTED
_SEGMENT_CHANGED_TYPE: Final = EventType.SEGMENT_CHANGED.value
_HANDOFF_REQUESTED_TYPE: Final = EventType.HANDOFF_REQUESTED.value
_UTC: Final = UTC


class Output:
    """An event the core emits: its envelope's values, its record (`encode`), its
    key (`key`) and, on demand, its pydantic model (`model`)."""

    def __init__(self, event_id: str, event_type: EventType, subject: str, time: datetime) -> None:
        self.id = event_id
        self.type = event_type
        self.subject = subject
        """The lead id: the record's key."""
        self.time = time

    def model(self) -> CloudEvent:
        raise NotImplementedError

    def encode(self) -> bytes:
        raise NotImplementedError

    def key(self) -> bytes:
        """The record key (what `schemas.codec.encode_key` gives for the model)."""
        return self.subject.encode()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"


class SegmentOutput(Output):
    """A SegmentChanged event."""

    def __init__(
        self,
        event_id: str,
        lead_id: str,
        time: datetime,
        previous: str | None,
        segment: str,
        score: float,
        rules_version: str,
        cause_event_id: str | None,
        validated: SegmentChanged | None = None,
    ) -> None:
        super().__init__(event_id, _SEGMENT_CHANGED, lead_id, time)
        self.previous = previous
        self.segment = segment
        self.score = score
        self.rules_version = rules_version
        self.cause_event_id = cause_event_id
        self.validated = validated
        """The model, when the values were validated (then it is the record's source)."""

    def model(self) -> SegmentChanged:
        if self.validated is not None:
            return self.validated
        previous = self.previous
        data = _model(
            SegmentChangedData,
            {
                "lead_id": self.subject,
                "previous": _SEGMENTS[previous] if previous is not None else None,
                "segment": _SEGMENTS[self.segment],
                "score": self.score,
                "rules_version": self.rules_version,
                "cause_event_id": self.cause_event_id,
            },
            set(_SEGMENT_FIELDS),
            None,
        )
        return _envelope(SegmentChanged, _SEGMENT_CHANGED, self.id, self.subject, self.time, data)

    def encode(self) -> bytes:
        if self.validated is not None:
            return encode_event(self.validated)
        data: dict[str, object] = {"lead_id": self.subject}
        if self.previous is not None:
            data["previous"] = self.previous
        data["segment"] = self.segment
        data["score"] = self.score
        data["rules_version"] = self.rules_version
        if self.cause_event_id is not None:
            data["cause_event_id"] = self.cause_event_id
        return _record(self, _SEGMENT_CHANGED_TYPE, data)


class HandoffOutput(Output):
    """A HandoffRequested event."""

    def __init__(
        self,
        handoff_id: str,
        lead_id: str,
        time: datetime,
        sequence: int,
        reason: Reason,
        score: Score,
        segment: Segment,
        attributes: dict[str, Any],
        trigger_event_id: str,
        rules_version: str,
        validated: HandoffRequested | None = None,
    ) -> None:
        super().__init__(handoff_id, _HANDOFF_REQUESTED, lead_id, time)
        self.sequence = sequence
        self.reason = reason
        self.score = score
        """The score with its breakdown (immutable)."""
        self.segment = segment
        self.attributes = attributes
        """The lead's attributes when it qualified (a copy)."""
        self.trigger_event_id = trigger_event_id
        self.rules_version = rules_version
        self.validated = validated
        """The model, when the values were validated (then it is the record's source)."""

    def model(self) -> HandoffRequested:
        if self.validated is not None:
            return self.validated
        attributes = self.attributes
        lead_values: dict[str, Any] = _NO_ATTRIBUTES.copy()
        lead_values.update(attributes)
        custom = lead_values["custom"]
        if custom is not None:
            lead_values["custom"] = dict(custom)
        lead = _model(LeadAttributes, lead_values, set(attributes), None)
        kind, name, detail = self.reason
        reason = _model(
            HandoffReason,
            {"kind": kind, "name": name, "detail": detail},
            {"kind", "name", "detail"},
            None,
        )
        breakdown = [
            _model(
                BreakdownItem,
                {
                    "rule": item.rule,
                    "group": item.group,
                    "part": item.part,
                    "points": item.points,
                    "events": [*item.events],
                },
                {"rule", "group", "part", "points", "events"},
                None,
            )
            for item in self.score.items
        ]
        data = _model(
            HandoffRequestedData, self._data(reason, breakdown, lead), set(_HANDOFF_FIELDS), None
        )
        return _envelope(
            HandoffRequested, _HANDOFF_REQUESTED, self.id, self.subject, self.time, data
        )

    def encode(self) -> bytes:
        if self.validated is not None:
            return encode_event(self.validated)
        kind, name, detail = self.reason
        attributes = self.attributes
        lead: dict[str, Any] = {}
        for field in _ATTRIBUTE_NAMES:  # declaration order, as the model writes them
            value = attributes.get(field)
            if value is not None:
                lead[field] = value
        data = self._data(
            {"kind": kind, "name": name, "detail": detail},
            [_breakdown_item(item) for item in self.score.items],
            lead,
        )
        return _record(self, _HANDOFF_REQUESTED_TYPE, data)

    def _data(self, reason: object, breakdown: object, lead: object) -> dict[str, Any]:
        """The data fields, for the model and the record: one list of fields, in
        declaration order, so the two can never differ."""
        score = self.score
        return {
            "handoff_id": self.id,
            "lead_id": self.subject,
            "sequence": self.sequence,
            "reason": reason,
            "score": score.score,
            "fit": score.fit,
            "engagement": score.engagement,
            "segment": self.segment,
            "breakdown": breakdown,
            "lead": lead,
            "trigger_event_id": self.trigger_event_id,
            "trigger_event_time": self.time,
            "rules_version": self.rules_version,
        }


def _breakdown_item(item: Item) -> dict[str, object]:
    group = item.group
    if group is None:
        return {"rule": item.rule, "part": item.part, "points": item.points, "events": item.events}
    return {
        "rule": item.rule,
        "group": group,
        "part": item.part,
        "points": item.points,
        "events": item.events,
    }


def _record(output: Output, event_type: str, data: dict[str, Any]) -> bytes:
    """The record of `output` (the envelope's fields in declaration order, the null
    ones left out); what orjson cannot write, pydantic writes from the model."""
    try:
        return _dumps(
            {
                "specversion": "1.0",
                "id": output.id,
                "source": SOURCE,
                "type": event_type,
                "subject": output.subject,
                "time": output.time,
                "datacontenttype": "application/json",
                "data": data,
            },
            option=_UTC_Z,
        )
    except _EncodeError:
        return encode_event(output.model())


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
        set(_ENVELOPE_FIELDS),
        {},
    )


def segment_changed(
    state: LeadState,
    segment: str,
    score: float,
    rules: Rules,
    event: CloudEvent | None,
    now: datetime | None = None,
) -> SegmentOutput:
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
        if (
            when.tzinfo is _UTC
            and segment in _SEGMENTS
            and (previous is None or previous in _SEGMENTS)
        ):
            return SegmentOutput(
                event_id, lead_id, when, previous, segment, score, rules.version, values["id"]
            )
    time = event.time if event is not None else (now or datetime.fromtimestamp(0, UTC))
    model = SegmentChanged.model_validate(
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
    data = model.data
    return SegmentOutput(
        event_id,
        lead_id,
        model.time,
        data.previous.value if data.previous is not None else None,
        data.segment.value,
        data.score,
        data.rules_version,
        data.cause_event_id,
        model,
    )


def handoff_reason(rules: Rules, kind: str, name: str, detail: str) -> Reason:
    if not compiled(rules).plain_outputs:
        HandoffReason(kind=kind, name=name, detail=detail)  # validated: fails as before
    return (kind, name, detail)


def handoff_requested(
    state: LeadState,
    handoff_id: str,
    reason: Reason,
    score: Score,
    rules: Rules,
    event: CloudEvent,
) -> HandoffOutput:
    """The hand-off of `state`'s current qualification (its sequence: `state.handoffs`)."""
    lead_id = state.lead_id
    attributes = state.attributes
    values = event.__dict__  # (read once: see core.apply_event)
    when: datetime = values["time"]
    event_id: str = values["id"]
    segment = segment_of(score.score, rules)
    if (
        when.tzinfo is _UTC
        and compiled(rules).plain_outputs
        and _valid_lead(lead_id)
        and _ATTRIBUTES.issuperset(attributes)
    ):
        return HandoffOutput(
            handoff_id,
            lead_id,
            when,
            state.handoffs,
            reason,
            score,
            segment,
            dict(attributes),
            event_id,
            rules.version,
        )
    kind, name, detail = reason
    model = HandoffRequested.model_validate(
        {
            "id": handoff_id,
            "source": SOURCE,
            "subject": lead_id,
            "time": when,
            "data": {
                "handoff_id": handoff_id,
                "lead_id": lead_id,
                "sequence": state.handoffs,
                "reason": {"kind": kind, "name": name, "detail": detail},
                "score": score.score,
                "fit": score.fit,
                "engagement": score.engagement,
                "segment": segment,
                "breakdown": [item.to_dict() for item in score.items],
                "lead": attributes,
                "trigger_event_id": event_id,
                "trigger_event_time": when,
                "rules_version": rules.version,
            },
        }
    )
    return HandoffOutput(
        handoff_id,
        lead_id,
        model.time,
        state.handoffs,
        reason,
        score,
        segment,
        dict(attributes),
        event_id,
        rules.version,
        model,
    )
