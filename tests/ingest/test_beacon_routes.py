"""GET /hotlead.js and POST /b (CORS) on an in-memory publisher."""

import httpx
import orjson

from schemas.topics import EVENTS
from services.common.publisher import MemoryPublisher
from tests.ingest.conftest import ORIGIN

VIEW = {
    "id": "0123456789abcdef",
    "url": "http://127.0.0.1:5555/pricing",
    "referrer": "https://search.example/",
    "title": "Pricing",
    "anonymous_id": "anon-42",
}


async def test_the_snippet_is_served_as_javascript(client: httpx.AsyncClient) -> None:
    response = await client.get("/hotlead.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert b"sendBeacon" in response.content
    assert b"fetch(" in response.content


async def test_a_page_view_from_an_allowed_origin_is_written(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    response = await client.post(
        "/b",
        content=orjson.dumps(VIEW),
        headers={"Origin": ORIGIN, "Content-Type": "text/plain;charset=UTF-8"},
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN
    [event] = memory.on(f"unit.{EVENTS}")
    assert event.type.short == "page.viewed"
    assert event.subject == "anon-42"  # the Kafka key when no lead is known
    assert event.model_dump(exclude_none=True)["data"] == {
        k: VIEW[k] for k in ("url", "referrer", "title", "anonymous_id")
    }
    known = await client.post(
        "/b", content=orjson.dumps({**VIEW, "id": "fedcba9876543210", "lead_id": "lead-3"}),
        headers={"Origin": ORIGIN},
    )  # fmt: skip
    assert known.status_code == 204
    assert memory.on(f"unit.{EVENTS}")[1].subject == "lead-3"


async def test_other_origins_are_refused(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    for headers in ({"Origin": "https://evil.example"}, {}):
        response = await client.post("/b", content=orjson.dumps(VIEW), headers=headers)
        assert response.status_code == 403
        assert "access-control-allow-origin" not in response.headers
    assert memory.published == []


async def test_preflight_answers_allowed_origins(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/b", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-methods"] == "POST, OPTIONS"


async def test_oversized_and_invalid_beacons(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    big = {**VIEW, "title": "x" * 20_000}
    assert (await client.post("/b", json=big, headers={"Origin": ORIGIN})).status_code == 413
    bad = await client.post("/b", json={"url": "x"}, headers={"Origin": ORIGIN})
    assert bad.status_code == 400
    assert memory.on(f"unit.{EVENTS}") == []
