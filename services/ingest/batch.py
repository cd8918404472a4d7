"""The items of one `/v1/events` batch as records, the common case without a
model per event (pure).

`incoming.build_event` validates an item with the full CloudEvent model and
`encode_event` serializes it: about 15 us per event. Here a plain,
well-formed item (only the public fields, of the right JSON types, a known
input type, a well-formed lead id and id) has its envelope checked by the
same rules in a few comparisons, and the `data` of all items of one type is
validated in one pydantic-core call (for models of text fields, a TypedDict
of the model's fields: no model instance per event); the record value is
then joined from pieces, byte for byte what `encode_event` writes
(tests/ingest/test_batch.py checks both ways agree, on accepted and on
refused items).

Anything else, and every item whose `data` the model refuses, goes through
`build_event` one by one, so the answer and the evidence on
hotlead.rejected.v1 say exactly what they said before.
"""

import functools
import re
from collections.abc import Sequence
from datetime import datetime
from types import UnionType
from typing import Annotated, Any, NotRequired, Union, get_args, get_origin

import orjson
from pydantic import BaseModel, ConfigDict, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from schemas.envelope import CloudEvent, UtcDatetime
from schemas.event_types import INPUT_TYPES, EventType
from schemas.events import event_model
from services.ingest.incoming import ITEM_FIELDS, Invalid, build_event, content_id
from services.ingest.records import Record, utc_text

# LeadId's pattern (schemas.envelope) as a full match: `$` would also match
# before a trailing newline in Python, never in pydantic's regex engine.
_LEAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_MAX_ID_CHARS = 256  # EventId
_MAX_SOURCE_CHARS = 512  # CloudEvent.source
_TYPES: dict[str, EventType] = {
    **{t.short: t for t in INPUT_TYPES},
    **{t.value: t for t in INPUT_TYPES},
}
_TIME: TypeAdapter[datetime] = TypeAdapter(UtcDatetime)
_ITEM_FIELDS = ITEM_FIELDS


@functools.cache
def _data_model(event_type: EventType) -> type[BaseModel]:
    model = event_model(event_type).model_fields["data"].annotation
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{event_type}: data is not a model")
    return model


@functools.cache
def _data_adapter(event_type: EventType) -> TypeAdapter[list[Any]]:
    """Validates a list of `data` payloads of one type (the model's own field)."""
    return TypeAdapter(list[_data_model(event_type)])  # type: ignore[misc,arg-type]


def _is_text(annotation: Any, metadata: Sequence[Any] = ()) -> bool:
    """`str`, maybe constrained, never changed by validation (no strip/case options)."""
    if get_origin(annotation) is Annotated:
        annotation, *more = get_args(annotation)
        metadata = [*metadata, *more]
    return annotation is str and all(
        isinstance(m, StringConstraints) and not (m.strip_whitespace or m.to_upper or m.to_lower)
        for m in metadata
    )


_PLAIN_CONFIG = frozenset({"frozen", "extra", "title"})
"""Model options that change nothing in how a text field validates."""


@functools.cache
def _text_fields(event_type: EventType) -> tuple[str, ...] | None:
    """The data model's fields, in order, when all of them are text that is
    either required or None by default: then the validated payload dumps as
    the input's non-null fields in this order. None for other models."""
    model = _data_model(event_type)
    config = model.model_config
    decorators = model.__pydantic_decorators__
    if (
        not config.keys() <= _PLAIN_CONFIG
        or config.get("extra") != "forbid"
        or decorators.field_validators
        or decorators.model_validators
        or decorators.field_serializers
        or decorators.model_serializers
    ):
        return None
    names = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if get_origin(annotation) in (Union, UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            if len(options) != 1 or info.default is not None:
                return None
            annotation = options[0]
        elif not info.is_required():
            return None
        if info.alias not in (None, name) or not _is_text(annotation, info.metadata):
            return None
        names.append(name)
    return tuple(names)


@functools.cache
def _text_adapter(event_type: EventType) -> TypeAdapter[list[dict[str, Any]]] | None:
    """For a model of text fields (`_text_fields`): the same fields and rules
    as a TypedDict (unknown keys refused). pydantic-core then checks each
    payload without making a model instance per event, and gives back a dict
    of the given fields in the model's order, as the model would dump them
    (with the nulls still in). None for other models."""
    fields = _text_fields(event_type)
    if fields is None:
        return None
    model = _data_model(event_type)
    annotations: dict[str, Any] = {}
    for name in fields:
        info = model.model_fields[name]
        annotation = (
            Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        )
        annotations[name] = annotation if info.is_required() else NotRequired[annotation]
    make_typed_dict: Any = TypedDict  # (mypy wants a literal name)
    typed = make_typed_dict(f"{model.__name__}Fields", annotations)
    typed.__pydantic_config__ = ConfigDict(extra="forbid")
    shape: Any = list.__class_getitem__(typed)  # list[typed]
    adapter: TypeAdapter[list[dict[str, Any]]] = TypeAdapter(shape)
    return adapter


def _without_nulls(payloads: list[Any]) -> list[Any]:
    """What `exclude_none` leaves of validated payloads (in place; nulls are rare)."""
    for index, payload in enumerate(payloads):
        if None in payload.values():
            payloads[index] = {name: value for name, value in payload.items() if value is not None}
    return payloads


def _time_text(value: str) -> bytes | None:
    try:
        return utc_text(_TIME.validate_python(value)).encode()
    except ValidationError:
        return None  # build_event says why


def _one(item: Any, source: str, received_at: datetime) -> Record | Invalid:
    built = build_event(item, source=source, received_at=received_at)
    return Record.of(built) if isinstance(built, CloudEvent) else built


_SUBJECT_PREFIXES: dict[tuple[str, EventType], tuple[str, bytes]] = {}
_MAX_PREFIXES = 4096


def _to_subject(source: str, event_type: EventType) -> tuple[str, bytes]:
    """The type's name, and a record's JSON from the end of its id to its
    subject (the source and the type), remembered: a few sources, a few types."""
    known = _SUBJECT_PREFIXES.get((source, event_type))
    if known is None:
        if len(_SUBJECT_PREFIXES) >= _MAX_PREFIXES:
            _SUBJECT_PREFIXES.clear()  # bounded; the used ones come back at once
        type_name = event_type.value
        prefix = b',"source":' + orjson.dumps(source) + b',"type":"' + type_name.encode()
        known = _SUBJECT_PREFIXES[source, event_type] = (type_name, prefix + b'","subject":"')
    return known


_Plain = tuple[EventType, str, str, bytes, dict[str, Any]]
"""A plain item's type, id, lead id, time (as bytes) and data."""


def _plain(item: Any, source: str, received: bytes) -> _Plain | None:
    """is_plain_item, a known input type, a well-formed lead id, id and time:
    what build_event would accept up to the data; None sends the item the
    per-item way. (type() is isinstance for what orjson makes.)"""
    if type(item) is not dict or not item.keys() <= _ITEM_FIELDS:
        return None
    type_name = item.get("type")
    event_type = _TYPES.get(type_name) if type(type_name) is str else None
    lead_id = item.get("lead_id")
    given_id = item.get("id")
    data = item.get("data")
    if (
        event_type is None
        or type(lead_id) is not str
        or type(data) is not dict
        or not (given_id is None or (type(given_id) is str and 0 < len(given_id) <= _MAX_ID_CHARS))
        or not _LEAD_ID.fullmatch(lead_id)
    ):
        return None
    given_time = item.get("time")
    if given_time is None:
        time: bytes | None = received
    elif type(given_time) is str:
        time = _time_text(given_time)
    else:
        return None
    if time is None:
        return None
    return event_type, given_id or content_id("ev", source, item), lead_id, time, data


_HEAD = b'{"specversion":"1.0","id":'


def _record(
    source: str, received: bytes, event_type: EventType, event_id: str, lead_id: str,
    time: bytes, data: dict[str, Any],
) -> Record:  # fmt: skip
    """The record encode_event writes, from pieces (tests compare the bytes):
    the id and the data go through orjson; a lead id (checked by `_plain`),
    the time texts, the type and the JSON of the source need no escaping."""
    type_name, to_subject = _to_subject(source, event_type)
    key = lead_id.encode()
    value = b"".join(
        (
            _HEAD,
            orjson.dumps(event_id),
            to_subject,
            key,
            b'","time":"',
            time,
            b'","datacontenttype":"application/json","receivedat":"',
            received,
            b'","data":',
            orjson.dumps(data),
            b"}",
        )
    )
    return tuple.__new__(Record, (event_id, type_name, key, value, None, None))  # no checks


def _single(
    item: Any, plain: _Plain | None, source: str, received: bytes, received_at: datetime
) -> Record | Invalid:
    """One item (its `_plain` fields, if any) as build_records makes it."""
    if plain is not None:
        event_type, event_id, lead_id, time, data = plain
        [checked] = _valid_data(event_type, [data])
        if checked is not None:
            return _record(source, received, event_type, event_id, lead_id, time, checked)
    return _one(item, source, received_at)


def build_records(
    items: Sequence[Any], *, source: str, received_at: datetime
) -> list[Record | Invalid]:
    """Each item as the record `build_event` + `encode_event` make of it, or why not."""
    received = utc_text(received_at).encode()
    fast = len(source) <= _MAX_SOURCE_CHARS
    if len(items) == 1:  # one event per request (beacons, webhooks): no grouping
        plain = _plain(items[0], source, received) if fast else None
        return [_single(items[0], plain, source, received, received_at)]
    built: list[Record | Invalid | None] = [None] * len(items)
    # per type: (index, id, lead id, time as bytes) of its items, and their data.
    # The checks are `_plain`'s and the bytes `_record`'s, inlined: a call per
    # item costs ~1 us per event in a batch of 100 (tests compare both ways
    # with build_event).
    by_type: dict[EventType, tuple[list[tuple[int, str, str, bytes]], list[Any]]] = {}
    types, lead_ids, known = _TYPES, _LEAD_ID.fullmatch, _ITEM_FIELDS
    for index, item in enumerate(items):
        if fast and type(item) is dict and item.keys() <= known:
            type_name = item.get("type")
            event_type = types.get(type_name) if type(type_name) is str else None
            lead_id = item.get("lead_id")
            given_id = item.get("id")
            given_time = item.get("time")
            data = item.get("data")
            if (
                event_type is not None
                and type(lead_id) is str
                and type(data) is dict
                and (
                    given_id is None
                    or (type(given_id) is str and 0 < len(given_id) <= _MAX_ID_CHARS)
                )
                and lead_ids(lead_id)
            ):
                if given_time is None:
                    time: bytes | None = received
                elif type(given_time) is str:
                    time = _time_text(given_time)
                else:
                    time = None
                if time is not None:
                    event_id = given_id or content_id("ev", source, item)
                    group = by_type.get(event_type)
                    if group is None:
                        group = by_type[event_type] = ([], [])
                    group[0].append((index, event_id, lead_id, time))
                    group[1].append(data)
                    continue
        built[index] = _one(item, source, received_at)
    dumps, join, new = orjson.dumps, b"".join, tuple.__new__  # new: Record(...) minus its checks
    end = b'","datacontenttype":"application/json","receivedat":"' + received + b'","data":'
    for event_type, (entries, datas) in by_type.items():
        dumped = _valid_data(event_type, datas)
        type_name, to_subject = _to_subject(source, event_type)
        for (index, event_id, lead_id, time), valid in zip(entries, dumped, strict=True):
            if valid is None:
                built[index] = _one(items[index], source, received_at)
                continue
            key = lead_id.encode()
            value = join(
                (_HEAD, dumps(event_id), to_subject, key, b'","time":"', time, end, dumps(valid),
                 b"}")
            )  # fmt: skip
            built[index] = new(Record, (event_id, type_name, key, value, None, None))
    return [entry for entry in built if entry is not None]


def _valid_data(event_type: EventType, datas: list[Any]) -> list[dict[str, Any] | None]:
    """The `data` payloads as the type's model dumps them (mode json, no
    nulls), None for each one the model refuses (build_event says why)."""
    text = _text_adapter(event_type)
    adapter = text or _data_adapter(event_type)
    try:
        valid: list[Any] = adapter.validate_python(datas)
    except ValidationError:  # find the bad ones; the rest stay on the fast path
        return [_valid_one(event_type, data) for data in datas]
    if text is not None:  # the same as dumping the model, without a second pass
        return _without_nulls(valid)
    dumped: list[Any] = adapter.dump_python(valid, mode="json", exclude_none=True)
    return dumped


def _valid_one(event_type: EventType, data: Any) -> dict[str, Any] | None:
    text = _text_adapter(event_type)
    try:
        if text is not None:
            payload: dict[str, Any] = _without_nulls(text.validate_python([data]))[0]
            return payload
        adapter = _data_adapter(event_type)
        dumped: list[dict[str, Any]] = adapter.dump_python(
            adapter.validate_python([data]), mode="json", exclude_none=True
        )
        return dumped[0]
    except ValidationError:
        return None
