"""What the sink writes: an event already encoded as its Kafka record.

Routes that build a CloudEvent model turn it into a `Record` with
`Record.of` (schemas.codec's encoding). The hot paths (the pixel, the
click, well-formed `/v1/events` items) build the same bytes without a model
per event (`event_json`); tests check both give identical records.
"""

import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from schemas.codec import decode_event, encode_event, encode_key
from schemas.envelope import CloudEvent
from schemas.events import CrmStatusChanged


class Record(NamedTuple):
    """One record (immutable; a tuple because the hot paths make one per event)."""

    id: str
    type: str
    """The full event type (`hotlead.email.opened`), for the metrics."""
    key: bytes | None
    value: bytes
    bot: str | None = None
    crm_status: str | None = None

    @classmethod
    def of(cls, event: CloudEvent) -> "Record":
        return cls(
            id=event.id,
            type=event.type.value,
            key=encode_key(event),
            value=encode_event(event),
            bot=event.bot,
            crm_status=event.data.status.value if isinstance(event, CrmStatusChanged) else None,
        )

    def event(self) -> CloudEvent:
        """The event model again (for publishers that take models, e.g. in tests)."""
        return decode_event(self.value)


_SECOND: list[tuple[tuple[int, ...], str]] = [((), "")]
"""The last second `utc_text` formatted: its fields and its text (one tuple,
replaced whole: a reader never sees the fields of one second with another's text)."""


def utc_text(moment: datetime) -> str:
    """A UTC timestamp as pydantic writes it in our events (`...Z`, microseconds
    only when there are any). The text of the last second is kept: only the
    microseconds are formatted again (isoformat costs more than the rest)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    second = (moment.second, moment.minute, moment.hour, moment.day, moment.month, moment.year)
    known, text = _SECOND[0]
    if second != known:
        text = moment.replace(microsecond=0).isoformat()[:-6]  # "+00:00" off
        _SECOND[0] = (second, text)
    micro = moment.microsecond
    return f"{text}.{micro:06d}Z" if micro else f"{text}Z"


class UtcNowText:
    """`utc_text` of the current time, cheaply: the text of the current second
    is kept, only the microseconds are formatted (isoformat costs ~3 us)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self) -> str:
        now = time.time()
        second = int(now)
        micro = int((now - second) * 1_000_000)
        if second != self._second:
            self._prefix = datetime.fromtimestamp(second, UTC).isoformat()[:-6]
            self._second = second
        return f"{self._prefix}.{micro:06d}Z" if micro else f"{self._prefix}Z"


def event_json(
    *,
    event_id: str,
    source: str,
    type_name: str,
    subject: str,
    time: str,
    received_at: str,
    data: dict[str, Any],
    bot: str | None = None,
) -> bytes:
    """The record value `encode_event` writes for these already-valid fields:
    same keys, same order, no null attributes (`data` must hold no nulls)."""
    value: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": type_name,
        "subject": subject,
        "time": time,
        "datacontenttype": "application/json",
    }
    if bot is not None:
        value["bot"] = bot  # where the envelope's field order puts it
    value["receivedat"] = received_at
    value["data"] = data
    return orjson.dumps(value)
