"""Kafka record bytes <-> event models (CloudEvents structured JSON, UTF-8)."""

from typing import Final

from pydantic import ValidationError
from pydantic_core import CoreConfig, SchemaValidator

from schemas.envelope import CloudEvent
from schemas.events import ANY_EVENT, AnyEvent


class EventDecodeError(ValueError):
    """A record's bytes are not a valid hotlead event; `errors` says why."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _schema_validator() -> SchemaValidator:
    validator = ANY_EVENT.validator
    if not isinstance(validator, SchemaValidator):  # not built: a model not fully defined
        raise TypeError(f"ANY_EVENT has no schema validator: {validator!r}")
    # The same core schema, with JSON strings cached only for keys: pydantic caches
    # every short string by default (`cache_strings="all"`), and an event's values
    # (ids, lead ids, times, urls) are mostly new ones, so each was hashed, looked up
    # and inserted for nothing (~4 % of decode_event on the bench corpus); the keys
    # (field names) come back in every record.
    return SchemaValidator(ANY_EVENT.core_schema, CoreConfig(cache_strings="keys"))


_VALIDATE_JSON: Final = _schema_validator().validate_json
"""`ANY_EVENT.validate_json` without TypeAdapter's Python wrapper (which only
passes its default arguments on; ~0.5 us less per event), caching only keys."""


def encode_event(event: CloudEvent) -> bytes:
    """The record value for `event`: compact JSON without null attributes.

    The bytes of `event.model_dump_json(exclude_none=True).encode()`, straight from
    pydantic's serializer (model_dump_json decodes its bytes to a str, which was
    encoded again here)."""
    encoded: bytes = event.__pydantic_serializer__.to_json(event, exclude_none=True)
    return encoded


def decode_event(value: bytes | str) -> AnyEvent:
    """Parse a record value into its typed event model.

    Most of its time (~5.5-6.5 us/event on the shared dev machine, orjson.loads
    alone ~1.6 us) is CPython's own object work (allocating and filling two model
    instances, their dicts and sets, the strings; freeing them): perf puts ~50-60 %
    of it in libpython, the rest in pydantic-core; the envelope's `_to_utc` is the
    only Python frame. A pure-Python fast path (orjson, exact checks derived from
    the core schemas, models assembled as model_construct does) was built and
    measured no faster; see commit f756ec8."""
    try:
        event: AnyEvent = _VALIDATE_JSON(value)
        return event
    except ValidationError as exc:
        raise EventDecodeError(describe_errors(exc)) from exc


def encode_key(event: CloudEvent) -> bytes | None:
    """The record key: the lead id (subject), UTF-8."""
    return event.subject.encode() if event.subject is not None else None


def describe_errors(exc: ValidationError) -> list[str]:
    """Validation errors as short, readable lines: `data.url: Field required`."""
    lines = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(part) for part in err["loc"]) or "(event)"
        lines.append(f"{where}: {err['msg']}")
    return lines
