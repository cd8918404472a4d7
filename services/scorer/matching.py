"""Which rules and triggers an event matches: the event's matchable fields."""

from typing import Any

from schemas.envelope import CloudEvent

_FIELDS = (
    ("url", "url"),
    ("asset", "asset_id"),
    ("asset_type", "asset_type"),
    ("campaign", "campaign_id"),
    ("form", "form_id"),
    ("form_type", "form_type"),
    ("status", "status"),
    ("title", "title"),
    ("email", "email_id"),
)


def event_fields(event: CloudEvent) -> dict[str, str]:
    """The fields rules can match on, as strings; `key` identifies the asset
    (asset id, else URL without its query, else email, campaign, form or event type)."""
    data: Any = getattr(event, "data", None)
    values = data.__dict__ if data is not None else {}
    fields: dict[str, str] = {}
    for name, attribute in _FIELDS:
        value = values.get(attribute)
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
