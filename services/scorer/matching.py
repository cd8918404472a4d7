"""Which rules and triggers an event matches: the event's matchable fields."""

from typing import Any

from schemas.envelope import CloudEvent
from services.scorer.rules import EventMatch, regex


def event_fields(event: CloudEvent) -> dict[str, str]:
    """The fields rules can match on, as strings; `key` identifies the asset
    (asset id, else URL without its query, else campaign, form or event type)."""
    data: Any = getattr(event, "data", None)
    fields: dict[str, str] = {}
    for name, attribute in (
        ("url", "url"),
        ("asset", "asset_id"),
        ("asset_type", "asset_type"),
        ("campaign", "campaign_id"),
        ("form", "form_id"),
        ("form_type", "form_type"),
        ("status", "status"),
        ("title", "title"),
        ("email", "email_id"),
    ):
        value = getattr(data, attribute, None)
        if value is not None:
            fields[name] = str(value)
    fields["any"] = " ".join(
        fields[name] for name in ("url", "asset", "asset_type", "title") if name in fields
    )
    url = fields.get("url")
    fields["key"] = (
        fields.get("asset")
        or (url.split("?", 1)[0].split("#", 1)[0] if url else None)
        or fields.get("email")
        or fields.get("campaign")
        or fields.get("form")
        or str(event.type)
    )
    return fields


def matches(spec: EventMatch, event_type: str, fields: dict[str, str]) -> bool:
    if event_type not in spec.event:
        return False
    for name, pattern in spec.field_patterns():
        value = fields.get(name)
        if not value or regex(pattern).search(value) is None:
            return False
    return True
