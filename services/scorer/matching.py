"""Which rules and triggers an event matches: the event's matchable fields."""

from collections.abc import Callable, Hashable
from operator import attrgetter, itemgetter
from typing import Any

from schemas.envelope import CloudEvent
from services.scorer.native import check_fresh

check_fresh(__file__)  # compiled by mypyc: refuse to run a stale build (native.py)

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
_ANY = ("url", "asset", "asset_type", "title")

_BY_MODEL: dict[type, tuple[tuple[str, str], ...]] = {}
"""Per payload model: the (field, attribute) pairs of _FIELDS it has."""


def _pairs(model: type) -> tuple[tuple[str, str], ...]:
    known = getattr(model, "model_fields", None)
    pairs = (
        _FIELDS
        if known is None
        else tuple((name, attribute) for name, attribute in _FIELDS if attribute in known)
    )
    _BY_MODEL[model] = pairs
    return pairs


_KEYS: dict[type, Callable[[Any], Hashable]] = {}
"""Per payload class: what reads its key from the payload (see _key_getter)."""
_DICT_KEYS: dict[type, Callable[[dict[str, Any]], Hashable]] = {}
"""Per pydantic payload model: what reads its key from the model's __dict__."""


def _no_fields(data: Any) -> Hashable:
    return None


def _key_getter(model: type) -> Callable[[Any], Hashable]:
    pairs = _BY_MODEL.get(model) or _pairs(model)
    attributes = [attribute for _, attribute in pairs]
    getter: Callable[[Any], Hashable] = attrgetter(*attributes) if pairs else _no_fields
    if pairs and hasattr(model, "model_fields"):
        # a pydantic model's __dict__ holds every field: read as one dict, its values
        # are the attributes (each attribute read on a model goes through its
        # __getattr__ hook)
        _DICT_KEYS[model] = itemgetter(*attributes)
    _KEYS[model] = getter
    return getter


def match_key(event: CloudEvent) -> Hashable:
    """What `event_fields` reads from the event's payload, as a hashable value: two
    events of one type with equal keys have equal fields (for memoised matching)."""
    return data_key(getattr(event, "data", None))


def data_key(data: Any) -> Hashable:
    """match_key, given the event's payload."""
    if data is None:
        return None
    model = type(data)
    from_dict = _DICT_KEYS.get(model)
    if from_dict is not None:
        return from_dict(data.__dict__)
    getter = _KEYS.get(model) or _key_getter(model)
    if model in _DICT_KEYS:
        return _DICT_KEYS[model](data.__dict__)
    return getter(data)


def event_fields(
    event: CloudEvent, *, with_any: bool = True, with_key: bool = True
) -> dict[str, str]:
    """The fields rules can match on, as strings; `key` identifies the asset
    (asset id, else URL without its query, else email, campaign, form or event type).
    `with_any` / `with_key`: whether to add `any` and `key` (the core skips them
    when no rule or trigger of the event's type uses them)."""
    return data_fields(
        getattr(event, "data", None), event.type, with_any=with_any, with_key=with_key
    )


def data_fields(
    data: Any, event_type: str, *, with_any: bool = True, with_key: bool = True
) -> dict[str, str]:
    """event_fields, given the event's payload and type."""
    fields: dict[str, str] = {}
    if data is not None:
        values = data.__dict__
        pairs = _BY_MODEL.get(type(data)) or _pairs(type(data))
        for name, attribute in pairs:
            value = values.get(attribute)
            if value is not None:
                fields[name] = value if type(value) is str else str(value)
    if with_any:
        fields["any"] = " ".join(fields[name] for name in _ANY if name in fields)
    if with_key:
        url = fields.get("url")
        fields["key"] = (
            fields.get("asset")
            or (url.split("?", 1)[0].split("#", 1)[0] if url else None)
            or fields.get("email")
            or fields.get("campaign")
            or fields.get("form")
            or str(event_type)
        )
    return fields
