"""The items of one `/v1/events` batch as records, the common case without a
model per event (pure).

`incoming.build_event` validates an item with the full CloudEvent model and
`encode_event` serializes it: about 15 us per event. Here a plain,
well-formed item (only the public fields, of the right JSON types, a known
input type, a well-formed lead id and id) has its envelope checked by the
same rules in a few comparisons, and the `data` of all items of one type is
validated with the type's pydantic model in one pydantic-core call; the
record value is then built with orjson, byte for byte what `encode_event`
writes (tests/ingest/test_batch.py checks both ways agree, on accepted and
on refused items).

Anything else, and every item whose `data` the model refuses, goes through
`build_event` one by one, so the answer and the evidence on
hotlead.rejected.v1 say exactly what they said before.
"""

import functools
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from schemas.envelope import CloudEvent, UtcDatetime
from schemas.event_types import INPUT_TYPES, EventType
from schemas.events import event_model
from services.ingest.incoming import Invalid, build_event, content_id, is_plain_item
from services.ingest.records import Record, event_json, utc_text

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


@functools.cache
def _data_adapter(event_type: EventType) -> TypeAdapter[list[Any]]:
    """Validates a list of `data` payloads of one type (the model's own field)."""
    annotation = event_model(event_type).model_fields["data"].annotation
    return TypeAdapter(list[annotation])  # type: ignore[valid-type]


def _time_text(value: str) -> str | None:
    try:
        return utc_text(_TIME.validate_python(value))
    except ValidationError:
        return None  # build_event says why


def _one(item: Any, source: str, received_at: datetime) -> Record | Invalid:
    built = build_event(item, source=source, received_at=received_at)
    return Record.of(built) if isinstance(built, CloudEvent) else built


def build_records(
    items: Sequence[Any], *, source: str, received_at: datetime
) -> list[Record | Invalid]:
    """Each item as the record `build_event` + `encode_event` make of it, or why not."""
    received = utc_text(received_at)
    built: list[Record | Invalid | None] = [None] * len(items)
    by_type: dict[EventType, list[tuple[int, str, str, str]]] = {}
    fast = len(source) <= _MAX_SOURCE_CHARS
    for index, item in enumerate(items):
        if fast and isinstance(item, dict) and is_plain_item(item):
            event_type = _TYPES.get(item["type"])
            lead_id: str = item["lead_id"]
            given_id: str | None = item.get("id")
            given_time: str | None = item.get("time")
            time = received if given_time is None else _time_text(given_time)
            if (
                event_type is not None
                and time is not None
                and _LEAD_ID.fullmatch(lead_id)
                and (given_id is None or len(given_id) <= _MAX_ID_CHARS)
            ):
                event_id = given_id or content_id("ev", source, item)
                by_type.setdefault(event_type, []).append((index, event_id, lead_id, time))
                continue
        built[index] = _one(item, source, received_at)
    for event_type, entries in by_type.items():
        adapter = _data_adapter(event_type)
        datas = [items[index]["data"] for index, *_ in entries]
        try:
            dumped = adapter.dump_python(
                adapter.validate_python(datas), mode="json", exclude_none=True
            )
        except ValidationError:  # find the bad ones; the rest stay on the fast path
            dumped = []
            for data in datas:
                try:
                    dumped.append(
                        adapter.dump_python(
                            adapter.validate_python([data]), mode="json", exclude_none=True
                        )[0]
                    )
                except ValidationError:
                    dumped.append(None)
        type_name = event_type.value
        for (index, event_id, lead_id, time), data in zip(entries, dumped, strict=True):
            if data is None:
                built[index] = _one(items[index], source, received_at)
                continue
            value = event_json(
                event_id=event_id,
                source=source,
                type_name=type_name,
                subject=lead_id,
                time=time,
                received_at=received,
                data=data,
            )
            built[index] = Record(id=event_id, type=type_name, key=lead_id.encode(), value=value)
    return [entry for entry in built if entry is not None]
