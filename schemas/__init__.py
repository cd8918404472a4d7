"""The event vocabulary of hotlead: topic names, event types, models, codec.

Everything that crosses a process boundary is named here and nowhere else.
This package does no I/O.
"""

from schemas.codec import decode_event, encode_event
from schemas.envelope import CloudEvent
from schemas.event_types import EventType
from schemas.events import AnyEvent, event_model

__all__ = [
    "AnyEvent",
    "CloudEvent",
    "EventType",
    "decode_event",
    "encode_event",
    "event_model",
]
