"""The batch fast path of /v1/events makes exactly the records and refusals of
the per-item path (build_event + encode_event), item for item."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from schemas.codec import decode_event, encode_event
from schemas.envelope import CloudEvent
from schemas.event_types import INPUT_TYPES, EventType
from services.ingest.batch import _data_model, _text_adapter, _valid_one, build_records
from services.ingest.incoming import Invalid, build_event
from services.ingest.records import Record, utc_text

SOURCE = "/v1/events/crm"
NOW = datetime(2026, 11, 24, 2, 30, 15, 123456, tzinfo=UTC)


def per_item(items: list[Any], received_at: datetime = NOW) -> list[Record | Invalid]:
    out: list[Record | Invalid] = []
    for item in items:
        built = build_event(item, source=SOURCE, received_at=received_at)
        out.append(Record.of(built) if isinstance(built, CloudEvent) else built)
    return out


def assert_same(items: list[Any], received_at: datetime = NOW) -> None:
    fast = build_records(items, source=SOURCE, received_at=received_at)
    slow = per_item(items, received_at)
    assert len(fast) == len(slow) == len(items)
    for got, want in zip(fast, slow, strict=True):
        assert got == want
        if isinstance(got, Record):  # and the bytes are a valid event of that type
            assert encode_event(decode_event(got.value)) == got.value


def test_well_formed_items_of_several_types() -> None:
    items = [
        {"id": "e1", "type": "page.viewed", "lead_id": "lead-1", "data": {"url": "https://a/"}},
        {"type": "page.viewed", "lead_id": "lead-2", "data": {"url": "u", "title": "T"}},
        {
            "id": "e3",
            "type": "hotlead.form.submitted",
            "lead_id": "l:3",
            "time": "2026-01-01T10:00:00.5+02:00",
            "data": {"form_id": "demo", "form_type": "demo_request"},
        },
        {"id": "e4", "type": "email.bounced", "lead_id": "l4", "data": {"email_id": "m"}},
        {"id": "e5", "type": "email.unsubscribed", "lead_id": "l5", "data": {}},
        {"id": "e6", "type": "asset.downloaded", "lead_id": "l6", "data": {"asset_id": "wp"}},
    ]
    fast = build_records(items, source=SOURCE, received_at=NOW)
    assert all(isinstance(r, Record) for r in fast)
    assert_same(items)


def test_refused_items_say_what_they_said_before() -> None:
    items = [
        {"id": "ok", "type": "page.viewed", "lead_id": "lead-1", "data": {"url": "https://a/"}},
        {"id": "x1", "type": "page.viewed", "lead_id": "lead-1", "data": {}},
        {"id": "x2", "type": "page.viewed", "lead_id": "lead-1\n", "data": {"url": "u"}},
        {"id": "x3", "type": "page.viewed", "lead_id": "a@b.c", "data": {"url": "u"}},
        {"id": "x4", "type": "nope", "lead_id": "l", "data": {}},
        {"id": "x5", "type": "lead.updated", "lead_id": "l", "data": {}},
        {"id": "x6", "type": "page.viewed", "lead_id": "l", "time": "yesterday", "data": {}},
        {"id": "x7", "type": "page.viewed", "lead_id": "l", "time": "2026-01-01T10:00:00"},
        {"id": "", "type": "page.viewed", "lead_id": "l", "data": {"url": "u"}},
        {"id": "x" * 257, "type": "page.viewed", "lead_id": "l", "data": {"url": "u"}},
        {"id": "x9", "type": "page.viewed", "lead_id": "l", "data": {"url": "u", "extra": 1}},
        {"id": "x10", "type": "page.viewed", "lead_id": "l", "data": {"url": "u"}, "more": 1},
        {"id": 5, "type": "page.viewed", "lead_id": "l", "data": {"url": "u"}},
        {"id": "x11", "type": "page.viewed", "lead_id": "l", "data": {"url": 7}},
        {"id": "x12", "type": {"a": 1}, "lead_id": "l", "data": {"url": "u"}},
        {"id": "x13", "type": ["page.viewed"], "lead_id": ["l"], "data": {"url": "u"}},
        [1, 2],
        "text",
        None,
        {"id": "ok2", "type": "page.viewed", "lead_id": "l", "data": {"url": "u", "title": None}},
    ]
    fast = build_records(items, source=SOURCE, received_at=NOW)
    assert isinstance(fast[0], Record)
    assert isinstance(fast[-1], Record)
    assert all(isinstance(r, Invalid) for r in fast[1:-1])
    assert_same(items)
    for item in items:  # one event per request takes its own branch
        assert_same([item])


def test_timestamps_are_written_as_pydantic_writes_them() -> None:
    for moment in (
        NOW,
        NOW.replace(microsecond=0),
        NOW.replace(microsecond=500_000),
        NOW.astimezone(timezone(timedelta(hours=-5))),
    ):
        items = [{"id": "t", "type": "page.viewed", "lead_id": "l", "data": {"url": "u"}}]
        assert_same(items, received_at=moment)
        assert utc_text(moment).endswith("Z")


text = st.text(max_size=12)
ids = st.one_of(st.none(), text, st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True))
leads = st.one_of(text, st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,8}\n?", fullmatch=True))
types = st.sampled_from(
    [
        "page.viewed",
        "form.submitted",
        "email.opened",
        "hotlead.email.clicked",
        "email.bounced",
        "email.unsubscribed",
        "asset.downloaded",
        "x",
        "lead.updated",
    ]
)
times = st.one_of(
    st.none(),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(["2026-01-01T10:00:00Z", "2026-01-01", "1700000000", "", "garbage"]),
)
datas = st.dictionaries(
    st.sampled_from(
        [
            "url",
            "title",
            "form_id",
            "email_id",
            "campaign_id",
            "referrer",
            "asset_id",
            "bounce",
            "scope",
            "bad",
        ]
    ),
    st.one_of(
        text,
        st.none(),
        st.integers(-(2**63), 2**63 - 1),
        st.just("x" * 1100),
        st.sampled_from(["hard", "soft", "list", "all"]),
    ),
    max_size=4,
)


@st.composite
def items(draw: st.DrawFn) -> Any:
    item: dict[str, Any] = {"type": draw(types), "lead_id": draw(leads), "data": draw(datas)}
    event_id, time = draw(ids), draw(times)
    if event_id is not None:
        item["id"] = event_id
    if time is not None:
        item["time"] = time
    if draw(st.booleans()) and draw(st.booleans()):
        item[draw(st.sampled_from(["bot", "extra", "id", "time", "type", "lead_id", "data"]))] = (
            draw(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), text))
        )
    return item


@settings(max_examples=300, deadline=None)
@given(st.lists(items(), max_size=12))
def test_any_batch_gives_what_the_per_item_path_gives(batch: list[Any]) -> None:
    assert_same(batch)


@settings(max_examples=300, deadline=None)
@given(items())
def test_any_single_item_gives_what_the_per_item_path_gives(item: Any) -> None:
    assert_same([item])


TEXT_TYPES = [t for t in INPUT_TYPES if _text_adapter(t) is not None]


def test_text_models_are_checked_as_typed_dicts_only_when_all_fields_are_text() -> None:
    assert EventType.PAGE_VIEWED in TEXT_TYPES
    assert EventType.FORM_SUBMITTED in TEXT_TYPES
    assert _text_adapter(EventType.LEAD_UPDATED) is None  # attributes: not plain text
    assert _text_adapter(EventType.CRM_STATUS_CHANGED) is None  # an enum


payload_values = st.one_of(
    st.text(max_size=6),
    st.none(),
    st.integers(-5, 5),
    st.booleans(),
    st.just(""),
    st.just("x" * 257),
    st.just("x" * 1025),
    st.just("x" * 4097),
    st.lists(st.text(max_size=3), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(TEXT_TYPES),
    st.one_of(
        st.dictionaries(
            st.one_of(
                st.sampled_from(["url", "referrer", "title", "anonymous_id", "form_id"]),
                st.sampled_from(["form_type", "email_id", "campaign_id", "asset_id", "extra"]),
                st.sampled_from(["asset_type", "target", "x"]),
            ),
            payload_values,
            max_size=5,
        ),
        st.none(),
        st.lists(st.integers(), max_size=2),
    ),
)
def test_a_typed_dict_accepts_and_dumps_what_the_model_does(
    event_type: EventType, payload: Any
) -> None:
    model = TypeAdapter(list[_data_model(event_type)])  # type: ignore[misc]
    try:
        want: Any = model.dump_python(
            model.validate_python([payload]), mode="json", exclude_none=True
        )[0]
    except ValidationError:
        want = None
    got = _valid_one(event_type, payload)
    assert got == want
    if got is not None:  # same keys in the same order: the same JSON bytes
        assert list(got) == list(want)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))])),
        min_size=1,
        max_size=4,
    )
)
def test_utc_text_is_isoformat_with_a_z_whatever_second_came_before(
    moments: list[datetime],
) -> None:
    for moment in moments:  # (the text of the last second is kept between calls)
        assert utc_text(moment) == moment.astimezone(UTC).isoformat()[:-6] + "Z"
