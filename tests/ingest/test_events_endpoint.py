"""POST /v1/events served before FastAPI (routes/events.EventsEndpoint) answers
exactly like the FastAPI route it stands in for: same status, headers, body,
records and metrics, for success and for every refusal."""

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.common.publisher import MemoryPublisher
from services.ingest.app import create_app
from services.ingest.routes.events import EventsEndpoint
from tests.ingest.conftest import AUTH, client_for, make_settings
from tests.ingest.test_unavailable import DownPublisher

AT = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
PAGE = {"type": "page.viewed", "lead_id": "lead-1", "data": {"url": "https://a.example/p"}}
COMPARED_HEADERS = ("content-type", "content-length", "retry-after", "www-authenticate")


def pair(publisher: Callable[[], Any], **settings: Any) -> tuple[FastAPI, FastAPI, list[Any]]:
    """The same app twice: with the endpoint, and with FastAPI's route only."""
    publishers = [publisher(), publisher()]
    fast, routed = (create_app(make_settings(**settings), p) for p in publishers)
    assert isinstance(fast.events, EventsEndpoint)  # type: ignore[attr-defined]
    routed.events = None  # type: ignore[attr-defined]
    for app in (fast, routed):
        app.state.ctx.clock = lambda: AT
    return fast, routed, publishers


def shape(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {
        name: response.headers[name] for name in COMPARED_HEADERS if name in response.headers
    }
    return response.status_code, headers, response.content


async def both(fast: FastAPI, routed: FastAPI, **request: Any) -> tuple[int, dict[str, str], bytes]:
    answers = []
    for app in (fast, routed):
        async with client_for(app) as client:
            answers.append(shape(await client.post("/v1/events", **request)))
    assert answers[0] == answers[1]
    return answers[0]


def written(publisher: MemoryPublisher) -> list[tuple[str, dict[str, Any]]]:
    return [(topic, event.model_dump(mode="json")) for topic, event in publisher.published]


BATCH = {
    "events": [
        PAGE,
        {**PAGE, "id": "ev-given-1", "time": "2026-04-30T10:00:00+02:00"},
        {**PAGE, "id": "ev-given-1"},  # a duplicate within the batch
        {"type": "page.viewed", "lead_id": "bad id!", "data": {"url": "https://a.example/"}},
        {"type": "no.such", "lead_id": "lead-2", "data": {}},
        {**PAGE, "extra": 1},
        "not an object",
    ]
}


@pytest.mark.parametrize(
    ("request_kwargs", "status"),
    [
        ({"headers": AUTH, "json": BATCH}, 200),
        ({"headers": AUTH, "json": {"events": []}}, 200),
        ({"headers": AUTH, "content": b"{not json"}, 400),
        ({"headers": AUTH, "json": {"items": []}}, 400),
        ({"headers": AUTH, "json": [PAGE]}, 400),
        ({"json": BATCH}, 401),
        ({"headers": {"Authorization": "Bearer wrong"}, "json": BATCH}, 401),
        ({"headers": {"Authorization": "Basic x"}, "json": BATCH}, 401),
        ({"headers": {**AUTH, "Content-Length": "x"}, "content": b"{}"}, 400),
        ({"headers": AUTH, "json": {"events": [PAGE] * 4}}, 413),
        ({"headers": AUTH, "json": {"events": [{**PAGE, "data": {"url": "x" * 3000}}]}}, 413),
    ],
)
async def test_same_answers_and_records_as_the_fastapi_route(
    request_kwargs: dict[str, Any], status: int
) -> None:
    limit = 10 if request_kwargs.get("json") is BATCH else 3
    fast, routed, publishers = pair(MemoryPublisher, max_batch_events=limit, max_body_bytes=2048)
    code, _, body = await both(fast, routed, **request_kwargs)
    assert code == status
    assert written(publishers[0]) == written(publishers[1])
    if status == 200 and request_kwargs["json"] is BATCH:
        statuses = [r["status"] for r in httpx.Response(200, content=body).json()["results"]]
        assert statuses == [
            "accepted", "accepted", "duplicate", "rejected", "rejected", "rejected", "rejected"
        ]  # fmt: skip
        assert len(publishers[0].published) == 6  # 2 events + 4 pieces of evidence


async def test_a_retried_batch_is_a_duplicate_on_both_paths() -> None:
    fast, routed, _ = pair(MemoryPublisher)
    body = {"events": [{**PAGE, "id": "ev-retry-1"}]}
    await both(fast, routed, headers=AUTH, json=body)
    _, _, again = await both(fast, routed, headers=AUTH, json=body)
    assert b'"status":"duplicate"' in again


async def test_rate_limited_sources_get_the_same_429() -> None:
    fast, routed, publishers = pair(MemoryPublisher, source_rate_per_s=0.01, source_burst=1)
    first = await both(fast, routed, headers=AUTH, json={"events": [PAGE]})
    limited = await both(fast, routed, headers=AUTH, json={"events": [PAGE]})
    assert (first[0], limited[0]) == (200, 429)
    assert int(limited[1]["retry-after"]) >= 1
    assert len(publishers[0].published) == len(publishers[1].published) == 1


async def test_kafka_down_gets_the_same_503_with_retry_after() -> None:
    fast, routed, _ = pair(DownPublisher, publish_timeout_s=0.2, retry_after_s=7)
    code, headers, body = await both(fast, routed, headers=AUTH, json={"events": [PAGE]})
    assert (code, headers["retry-after"]) == (503, "7")
    assert b"Kafka did not acknowledge" in body


async def body_in_chunks(size: int) -> AsyncIterator[bytes]:
    for _ in range(size // 512):
        yield b" " * 512


async def test_a_streamed_body_over_the_limit_is_413_without_content_length() -> None:
    fast, routed, publishers = pair(MemoryPublisher, max_body_bytes=2048)
    for app in (fast, routed):
        async with client_for(app) as client:
            response = await client.post("/v1/events", headers=AUTH, content=body_in_chunks(4096))
            assert response.status_code == 413
            assert "content-length" not in response.request.headers
    assert publishers[0].published == publishers[1].published == []


def counted(metrics: str, status: int) -> float:
    pattern = rf'hotlead_ingest_requests_total{{route="/v1/events",status="{status}"}} (\S+)'
    match = re.search(pattern, metrics)
    return float(match.group(1)) if match else 0.0


async def test_the_endpoint_serves_the_route_and_counts_like_request_metrics() -> None:
    fast, routed, _ = pair(MemoryPublisher)
    served = 0
    endpoint = fast.events  # type: ignore[attr-defined]
    original = endpoint.answer

    async def spy(*args: Any) -> Any:
        nonlocal served
        served += 1
        return await original(*args)

    endpoint.answer = spy
    for app in (fast, routed):
        async with client_for(app) as client:
            await client.post("/v1/events", headers=AUTH, json={"events": [PAGE]})
            await client.post("/v1/events", json={"events": [PAGE]})
            metrics = (await client.get("/metrics")).text
            assert (counted(metrics, 200), counted(metrics, 401)) == (1, 1)
            assert (
                'hotlead_ingest_request_duration_seconds_count{route="/v1/events"} 2.0' in metrics
            )
    assert served == 2
    get = await client_for(fast).get("/v1/events")  # other methods stay FastAPI's
    assert get.status_code == 405
    assert served == 2


def test_hotlead_ingest_parses_http_with_httptools() -> None:
    """The lock installs httptools and `auto` (the default) picks it: h11 costs
    ~250 us of CPU more per request (docs/ingest.md)."""
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    settings = make_settings()
    assert settings.ingest_http == "auto"
    config = uvicorn.Config(create_app(settings, MemoryPublisher()), http=settings.ingest_http)
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
