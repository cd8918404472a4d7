"""decode_event calls the union's schema validator directly (caching only keys'
strings), and `_to_utc` skips values already in UTC and converts pydantic's
zero-offset times without astimezone: both must decode exactly as
`ANY_EVENT.validate_json` with the original `value.astimezone(UTC)` did (same
models, values and their types, fields set, extra, errors, bytes written back)."""

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, TypeAdapter, ValidationError
from pydantic_core import TzInfo

from schemas.codec import EventDecodeError, decode_event, describe_errors, encode_event
from schemas.envelope import _to_utc
from schemas.events import AnyEvent
from services.scorer.core import apply_event
from services.scorer.rules import load_rules
from services.scorer.state import LeadState
from tests.scorer.corpus import build_corpus

REFERENCE: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)
"""A TypeAdapter of its own, called through its public validate_json."""
EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"


def _outcome(decode: Any, value: bytes | str) -> tuple[Any, ...]:
    try:
        event = decode(value)
    except ValidationError as exc:
        return ("invalid", describe_errors(exc))
    except EventDecodeError as exc:
        return ("invalid", exc.errors)
    except Exception as exc:  # noqa: BLE001  # e.g. OverflowError out of _to_utc
        return ("raised", type(exc), str(exc))
    return ("event", event)


def _same(value: bytes | str) -> None:
    """decode_event gives what the reference gives, or fails as it fails."""
    outcome, expected_outcome = (
        _outcome(decode_event, value),
        _outcome(REFERENCE.validate_json, value),
    )
    if expected_outcome[0] != "event":
        assert outcome == expected_outcome
        return
    expected = expected_outcome[1]
    event = decode_event(value)
    assert type(event) is type(expected)
    assert event == expected
    assert event.model_fields_set == expected.model_fields_set
    assert event.model_extra == expected.model_extra
    assert list(event.__dict__) == list(expected.__dict__)
    for name, field in expected.__dict__.items():
        assert type(getattr(event, name)) is type(field)
    assert event.time.tzinfo is UTC
    assert encode_event(event) == encode_event(expected)


def test_the_corpus_and_the_scorer_outputs_decode_as_before() -> None:
    rules, states = load_rules(), dict[str, LeadState]()
    for position, event in enumerate(build_corpus(300, 10)):
        record = encode_event(event)
        _same(record)
        assert decode_event(record) == event
        state = states.setdefault(event.subject or "", LeadState(lead_id=event.subject or ""))
        for output in apply_event(state, event, rules, position=position).outputs:
            _same(output.encode())


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_every_example_decodes_as_before(path: Path) -> None:
    _same(path.read_bytes())
    _same(path.read_text(encoding="utf-8"))


BASE: dict[str, Any] = {
    "specversion": "1.0",
    "id": "e-1",
    "source": "/t",
    "type": "hotlead.handoff.outcome",
    "subject": "lead-1",
    "time": "2026-01-16T18:30:00+09:00",
    "data": {"handoff_id": "h-1", "lead_id": "lead-1", "step": "notified", "duration_ms": 5.5},
}


def _record(**changes: Any) -> bytes:
    record = {**BASE, "data": dict(BASE["data"])}
    for key, value in changes.items():
        target, name = (record["data"], key[5:]) if key.startswith("data_") else (record, key)
        if value is ...:
            target.pop(name, None)
        else:
            target[name] = value
    return json.dumps(record, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"time": "2026-01-16T09:30:00Z"},
        {"time": "2026-01-16T09:30:00.123456Z"},
        {"time": "2026-01-16T09:30:00.5-05:30"},
        {"time": "2026-01-16T09:30:00+00:00"},
        {"time": "2026-01-16T09:30:00-00:00"},
        {"time": "2026-01-16t09:30:00z"},
        {"time": "2026-01-16 09:30:00+0900"},
        {"time": "2026-01-16T09:30:00.1234567Z"},
        {"time": "1768555800"},
        {"time": "2026-01-16T09:30:00"},  # no offset: refused
        {"time": "0001-01-01T00:00:00+01:00"},  # OverflowError out of _to_utc
        {"receivedat": "2026-01-16T09:30:01.25+01:00"},
        {"receivedat": None, "bot": None},
        {"specversion": ...},
        {"datacontenttype": ...},
        {"traceparent": "00-abc-01", "n": 3, "flag": True, "none": None, "f": 1.5},
        {"nested": {"a": [1, 2]}},
        {"subject": "lead-1\n"},
        {"subject": "taro@example.co.jp"},
        {"id": ""},
        {"id": "é" * 256},
        {"id": "😀" * 257},
        {"data_duration_ms": 5},
        {"data_duration_ms": True},
        {"data_duration_ms": -0.0},
        {"data_duration_ms": -1},
        {"data_duration_ms": 12345678901234567890123},
        {"data_attempt": 2.0},
        {"data_attempt": 2.5},
        {"data_attempt": True},
        {"data_attempt": 0},
        {"data_step": "NOTIFIED"},
        {"data_step": None},
        {"data_detail": None},
        {"data_detail": "詳細" * 512},
        {"data_detail": "詳細" * 513},
        {"data_unknown": 1},
        {"data_since_trigger_ms": 0},
        {"data": None},
        {"type": "hotlead.handoff.unknown"},
        {"type": None},
    ],
)
def test_edge_cases_decode_or_fail_as_before(changes: dict[str, Any]) -> None:
    _same(_record(**changes))


def test_not_json_fails_as_before() -> None:
    for value in (b"", b"[]", b"null", b"{", b'{"type": "hotlead.page.viewed"}', b"\xff"):
        _same(value)


def test_offsets_are_converted_to_utc() -> None:
    event = decode_event(_record(time="2026-01-16T18:30:00.25+09:00"))
    assert event.time == datetime(2026, 1, 16, 9, 30, 0, 250000, tzinfo=UTC)
    assert event.time.tzinfo is UTC


def _same_as_astimezone(moment: datetime) -> None:
    """`_to_utc(moment)` is what `moment.astimezone(UTC)` gives: the same fields
    (fold too), type and time zone (`datetime.UTC` itself)."""
    converted, expected = _to_utc(moment), moment.astimezone(UTC)
    assert converted == expected
    assert converted.tzinfo is UTC
    assert type(converted) is type(expected)
    assert converted.replace(tzinfo=None) == expected.replace(tzinfo=None)
    assert converted.fold == expected.fold
    assert converted.isoformat() == expected.isoformat()


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1),  # noqa: DTZ001  # naive bounds, aware values
        max_value=datetime(2200, 1, 1),  # noqa: DTZ001
        timezones=st.sampled_from(
            [
                UTC,
                timezone(timedelta(hours=9)),
                timezone(timedelta(hours=-5, minutes=-30)),
                # pydantic-core's own fixed offsets, what it parses times into
                TzInfo(0),
                TzInfo(9 * 3600),
                TzInfo(-(5 * 3600 + 1800)),
                ZoneInfo("Asia/Tokyo"),
                ZoneInfo("Europe/London"),  # zero offset in winter, not a fixed one
            ]
        ),
    )
)
def test_to_utc_gives_what_astimezone_gives(moment: datetime) -> None:
    _same_as_astimezone(moment)
    _same_as_astimezone(moment.replace(fold=1))


class _Moment(datetime):
    """A datetime subclass (astimezone keeps the class? _to_utc must give the same)."""


def test_to_utc_of_unusual_datetimes_gives_what_astimezone_gives() -> None:
    moment = datetime(2026, 1, 16, 9, 30, 0, 250000, tzinfo=TzInfo(0))
    _same_as_astimezone(moment)
    _same_as_astimezone(moment.replace(fold=1))
    _same_as_astimezone(_Moment(2026, 1, 16, 9, 30, tzinfo=TzInfo(0)))
    _same_as_astimezone(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=TzInfo(0)))
    _same_as_astimezone(datetime(1, 1, 1, tzinfo=TzInfo(0)))
    # London's zero offset on a Sunday in October 2026, ambiguous: fold picks the hour
    _same_as_astimezone(datetime(2026, 10, 25, 1, 30, fold=1, tzinfo=ZoneInfo("Europe/London")))


PARSED: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)
"""pydantic's parsing alone (no conversion): the values `_to_utc` gets."""


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-16T09:30:00Z",
        "2026-01-16T09:30:00.123456Z",
        "2026-01-16T09:30:00+00:00",
        "2026-01-16T09:30:00-00:00",
        "2026-01-16t09:30:00z",
        "2026-01-16 09:30:00+0000",
        "2026-01-16T09:30:00.1234567Z",
        "2026-01-16T18:30:00+09:00",
        "2026-01-16T09:30:00.5-05:30",
        "1768555800",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
    ],
)
def test_parsed_times_convert_as_astimezone_did(text: str) -> None:
    parsed = PARSED.validate_json(json.dumps(text))
    _same_as_astimezone(parsed)
    event = decode_event(_record(time=text, receivedat=text))
    assert event.time == event.receivedat == parsed.astimezone(UTC)
    assert event.time.tzinfo is UTC
    assert event.receivedat is not None
    assert event.receivedat.tzinfo is UTC


TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", "lead-1", "x" * 300]
)
JSON_VALUES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT


@settings(max_examples=300, deadline=None)
@given(
    event_type=st.sampled_from(
        ["hotlead.page.viewed", "hotlead.lead.updated", "hotlead.handoff.outcome", "hotlead.x"]
    ),
    envelope=st.dictionaries(
        st.sampled_from(["id", "source", "subject", "time", "bot", "receivedat", "ext"]),
        JSON_VALUES | st.sampled_from(["2026-01-16T09:30:00Z", "2026-01-16T18:30:00+09:00"]),
    ),
    data=st.dictionaries(
        st.sampled_from(["url", "title", "attributes", "step", "duration_ms", "attempt", "x"]),
        JSON_VALUES | st.dictionaries(st.sampled_from(["company_size", "email"]), JSON_VALUES),
    ),
)
def test_generated_records_decode_or_fail_as_before(
    event_type: str, envelope: dict[str, Any], data: dict[str, Any]
) -> None:
    record = {
        "id": "e-1",
        "source": "/t",
        "subject": "lead-1",
        "time": "2026-01-16T09:30:00Z",
        **envelope,
        "type": event_type,
        "data": data,
    }
    _same(json.dumps(record, ensure_ascii=False).encode())
