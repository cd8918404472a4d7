"""The public input formats and how they become hotlead events (pure).

Every function here returns either a CloudEvent or an `Invalid` saying why,
so a route can answer per item and keep the refused input as evidence.
"""

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from schemas.codec import describe_errors
from schemas.data import CrmStatus, LeadAttributes
from schemas.envelope import CloudEvent, EventId, LeadId, ShortText, Url, UtcDatetime
from schemas.event_types import INPUT_TYPES, EventType
from schemas.events import EventRejected, event_model

_LEAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")
MAX_ERROR_CHARS = 1024


class PublicModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IncomingEvent(PublicModel):
    """One event of POST /v1/events (and of /webhooks/generic)."""

    id: EventId | None = Field(
        default=None,
        description="Your id for the event: a retry with the same id is not written twice. "
        "Without one, an id is derived from the event's content.",
    )
    type: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="Event type, e.g. `page.viewed`, `form.submitted`, `asset.downloaded`."
    )
    lead_id: LeadId
    time: UtcDatetime | None = Field(
        default=None, description="When it happened (RFC 3339 with offset); default: now."
    )
    data: dict[str, Any] = Field(description="The type's fields (see docs/events.md).")


class EventBatch(PublicModel):
    events: list[IncomingEvent]


class CrmFeedback(PublicModel):
    """A sales status from the CRM: POST /v1/crm/feedback."""

    id: EventId | None = None
    lead_id: LeadId
    status: CrmStatus
    crm: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    record_id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    owner_id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    handoff_id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    reason: ShortText | None = None
    time: UtcDatetime | None = None


class BeaconPageView(PublicModel):
    """What hotlead.js sends to POST /b."""

    id: Annotated[str, StringConstraints(min_length=8, max_length=64)] | None = None
    url: Url
    referrer: Url | None = None
    title: ShortText | None = None
    anonymous_id: LeadId
    lead_id: LeadId | None = None


@dataclass(frozen=True, slots=True)
class Invalid:
    reason: str
    errors: list[str]
    lead_id: str | None = None


def lead_id_of(item: Any, field: str = "lead_id") -> str | None:
    """The item's lead id when it has a well-formed one (to key its rejection)."""
    if isinstance(item, dict):
        value = item.get(field)
        if isinstance(value, str) and _LEAD_ID.match(value):
            return value
    return None


def content_id(prefix: str, *parts: Any) -> str:
    """A deterministic event id from content: the same input gives the same id."""
    digest = hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{prefix}-{digest[:32]}"


def _errors(exc: ValidationError) -> list[str]:
    return [line[:MAX_ERROR_CHARS] for line in describe_errors(exc)]


ITEM_FIELDS = frozenset(IncomingEvent.model_fields)


def is_plain_item(item: dict[str, Any]) -> bool:
    """Only known keys, of the right JSON types: then one validation (of the
    CloudEvent model) checks everything IncomingEvent would, and more."""
    return (
        item.keys() <= ITEM_FIELDS
        and isinstance(item.get("type"), str)
        and isinstance(item.get("lead_id"), str)
        and isinstance(item.get("data"), dict)
        and isinstance(item.get("id"), str | None)
        and isinstance(item.get("time"), str | None)
        and item.get("id") != ""
        and item.get("time") != ""
    )


def _as_item_errors(exc: ValidationError) -> list[str]:
    """Errors of the CloudEvent model, named as the public format names them."""
    return [
        line.replace("subject:", "lead_id:", 1) if line.startswith("subject:") else line
        for line in _errors(exc)
    ]


def build_event(
    item: Any, *, source: str, received_at: datetime, default_id: str | None = None
) -> CloudEvent | Invalid:
    """An item of the public event format as a hotlead event."""
    lead = lead_id_of(item)
    if not isinstance(item, dict):
        return Invalid("not a JSON object", ["(event): expected an object"])
    if is_plain_item(item):
        type_name, lead_id, event_time = item["type"], item["lead_id"], item.get("time")
        given_id, data = item.get("id"), item["data"]
    else:  # the full check, for messages that name the public fields
        try:
            incoming = IncomingEvent.model_validate(item)
        except ValidationError as exc:
            return Invalid("invalid event", _errors(exc), lead)
        type_name, lead_id, event_time = incoming.type, incoming.lead_id, incoming.time
        given_id, data = incoming.id, incoming.data
    try:
        event_type = EventType.from_name(type_name)
    except ValueError as exc:
        return Invalid("unknown event type", [f"type: {exc}"[:MAX_ERROR_CHARS]], lead)
    if event_type not in INPUT_TYPES:
        return Invalid("not an input event type", [f"type: {type_name} is not accepted"], lead)
    event_id = given_id or default_id or content_id("ev", source, item)
    try:
        return event_model(event_type).model_validate(
            {
                "id": event_id,
                "source": source,
                "type": event_type,
                "subject": lead_id,
                "time": event_time or received_at,
                "receivedat": received_at,
                "data": data,
            }
        )
    except ValidationError as exc:
        return Invalid(f"invalid {event_type.short} event", _as_item_errors(exc), lead)


def build_lead_update(
    lead_id: str, body: Any, *, source: str, received_at: datetime, event_id: str
) -> CloudEvent | Invalid:
    if not _LEAD_ID.match(lead_id):
        return Invalid("invalid lead id", ["lead_id: 1-128 of letters, digits, . _ : -"])
    try:
        attributes = LeadAttributes.model_validate(body)
        return event_model(EventType.LEAD_UPDATED).model_validate(
            {
                "id": event_id,
                "source": source,
                "subject": lead_id,
                "time": received_at,
                "receivedat": received_at,
                "data": {"attributes": attributes},
            }
        )
    except ValidationError as exc:
        return Invalid("invalid lead attributes", _errors(exc), lead_id)


def build_crm_feedback(
    body: Any, *, source: str, received_at: datetime, event_id: str
) -> CloudEvent | Invalid:
    lead = lead_id_of(body)
    try:
        feedback = CrmFeedback.model_validate(body)
    except ValidationError as exc:
        return Invalid("invalid CRM feedback", _errors(exc), lead)
    data = feedback.model_dump(exclude={"id", "lead_id", "time"}, exclude_none=True)
    return event_model(EventType.CRM_STATUS_CHANGED).model_validate(
        {
            "id": feedback.id or event_id,
            "source": source,
            "subject": feedback.lead_id,
            "time": feedback.time or received_at,
            "receivedat": received_at,
            "data": data,
        }
    )


def build_page_view(
    body: Any, *, source: str, received_at: datetime, event_id: str
) -> CloudEvent | Invalid:
    lead = lead_id_of(body) or lead_id_of(body, "anonymous_id")
    try:
        view = BeaconPageView.model_validate(body)
        return event_model(EventType.PAGE_VIEWED).model_validate(
            {
                "id": f"pv-{view.id}" if view.id else event_id,
                "source": source,
                "subject": view.lead_id or view.anonymous_id,
                "time": received_at,
                "receivedat": received_at,
                "data": view.model_dump(include={"url", "referrer", "title", "anonymous_id"}),
            }
        )
    except ValidationError as exc:
        return Invalid("invalid page view", _errors(exc), lead)


def rejected_event(
    invalid: Invalid, *, route: str, source: str, payload: str, received_at: datetime
) -> EventRejected:
    """The evidence record for hotlead.rejected.v1."""
    return EventRejected.model_validate(
        {
            "id": content_id("rej", route, payload, received_at.isoformat()),
            "source": source,
            "subject": invalid.lead_id,
            "time": received_at,
            "receivedat": received_at,
            "data": {
                "reason": invalid.reason[:MAX_ERROR_CHARS],
                "errors": [e[:MAX_ERROR_CHARS] for e in invalid.errors[:50]],
                "route": route,
                "payload": payload,
            },
        }
    )


def as_text(payload: bytes | Any) -> str:
    """The original input as text for the evidence record."""
    if isinstance(payload, bytes):
        return payload.decode("utf-8", errors="replace")
    return orjson.dumps(payload).decode()
