"""The CloudEvents 1.0 envelope (structured JSON mode) that every Kafka record carries."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import TzInfo

from schemas.event_types import EventType

_combine = datetime.combine


def _to_utc(value: datetime) -> datetime:
    """`value.astimezone(UTC)`, the same datetime, without its arithmetic for a time
    pydantic parsed with a zero offset (`...Z`, `+00:00`: every event hotlead writes).

    pydantic-core gives a parsed time its own fixed-offset `TzInfo`, never
    `datetime.UTC`, so astimezone ran for every event (utcoffset through the
    TzInfo, a subtraction, fromutc: ~0.7 us a time on the dev machine). With a zero
    offset the UTC time has the same fields: `combine` with `UTC` builds it (~0.5 us
    less). Other offsets and time zones still go through astimezone."""
    tz = value.tzinfo
    if tz is UTC:
        return value  # astimezone(UTC) would return it as it is
    if type(tz) is TzInfo and not tz.utcoffset(None) and type(value) is datetime and not value.fold:
        # (a TzInfo is a fixed offset: utcoffset(None) is that offset; pydantic parses fold 0)
        return _combine(value, value.time(), UTC)
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""An RFC 3339 timestamp with an offset, stored and written in UTC (`...Z`)."""

LeadId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"),
]
"""A lead id: 1-128 of letters, digits, `.`, `_`, `:`, `-`. Not an email address."""

EventId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
ShortText = Annotated[str, StringConstraints(max_length=1024)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class Model(BaseModel):
    """Base of every payload model: immutable, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event in structured JSON mode.

    Subclasses pin `type` to one `EventType` and `data` to its payload model.
    Unknown extension attributes are kept, so a newer producer's extensions
    survive a pass through an older consumer.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: EventId = Field(description="Unique event id; the dedupe key.")
    source: Annotated[str, StringConstraints(min_length=1, max_length=512)] = Field(
        description="Where the event came from, e.g. /pixel, /v1/events, /webhooks/sendgrid."
    )
    type: EventType
    subject: LeadId | None = Field(
        default=None, description="The lead id (the anonymous id for anonymous visitors)."
    )
    time: UtcDatetime = Field(description="When it happened; scoring uses this.")
    datacontenttype: Literal["application/json"] = "application/json"
    bot: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None,
        description="Extension: set when the event was made by a machine, with the reason "
        "(e.g. apple_mpp, link_scanner, prefetch). Such events are kept but never scored.",
    )
    receivedat: UtcDatetime | None = Field(
        default=None, description="Extension: when hotlead received the event."
    )
